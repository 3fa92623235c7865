/** The TDD slice: phase, tests and coverage per agent, and the recent phase changes. */
import { counts, coverage, phase, str } from './coerce';
import { withKnownAgent } from './known-agents';
import { LIMITS, type DashboardState, type EventReducer, type PhaseChange, type TddView } from './types';

function withTdd(state: DashboardState, id: string, at: number, change: (t: TddView) => TddView): DashboardState {
  const prev = state.tdd[id] ?? { agentId: id, updatedAt: at };
  return { ...state, tdd: { ...state.tdd, [id]: { ...change(prev), updatedAt: at } }, knownAgents: withKnownAgent(state, id) };
}

const phaseChange: EventReducer = (state0, { env, data, at, agentId }) => {
  const to = phase(data.currentPhase);
  if (!agentId || !to) return null;
  const from = phase(data.previousPhase);
  const tests = counts(data.testResults);
  const cov = coverage(data.coverage);
  const taskId = str(data.taskId);
  const state = withTdd(state0, agentId, at, (t) => ({
    ...t,
    phase: to,
    taskId: taskId ?? t.taskId,
    tests: tests ?? t.tests,
    coverage: cov ? { ...t.coverage, ...cov } : t.coverage,
  }));
  const change: PhaseChange = { id: env.id, at, agentId, to };
  if (from) change.from = from;
  if (taskId) change.taskId = taskId;
  if (tests) change.tests = tests;
  const phaseChanges = [change, ...state.phaseChanges].slice(0, LIMITS.phaseChanges);
  return {
    state: { ...state, phaseChanges },
    summary: `${from ?? 'start'} → ${to}${tests ? ` (${tests.passing}/${tests.total} passing)` : ''}`,
  };
};

const testResult: EventReducer = (state0, { data, at, agentId }) => {
  if (!agentId) return null;
  const tests = counts(data);
  const state = withTdd(state0, agentId, at, (t) => ({ ...t, tests: tests ?? t.tests, taskId: str(data.taskId) ?? t.taskId }));
  if (!tests) return { state, summary: 'test result' };
  const summary = `tests: ${tests.passing}/${tests.total} passing, ${tests.failing} failing${tests.skipped ? `, ${tests.skipped} skipped` : ''}`;
  return tests.failing > 0 ? { state, summary, severity: 'warning' } : { state, summary };
};

const coverageUpdate: EventReducer = (state0, { data, at, agentId }) => {
  if (!agentId) return null;
  const cov = coverage(data);
  const state = withTdd(state0, agentId, at, (t) => ({ ...t, coverage: cov ? { ...t.coverage, ...cov } : t.coverage }));
  return {
    state,
    summary: `coverage: lines ${cov?.lines ?? '—'}%, branches ${cov?.branches ?? '—'}%, functions ${cov?.functions ?? '—'}%`,
  };
};

export const tddReducers: Record<string, EventReducer> = {
  tdd_phase_change: phaseChange,
  test_result: testResult,
  coverage_update: coverageUpdate,
};
