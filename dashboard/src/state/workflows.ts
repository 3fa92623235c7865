/** The workflows slice: every running workflow and the most recent finished ones, with their steps. */
import { clip, num, str } from './coerce';
import { formatDuration } from './format';
import { LIMITS, type DashboardState, type EventReducer, type StepStatus, type WorkflowView } from './types';

function withWorkflow(
  state: DashboardState,
  id: string,
  at: number,
  change: (w: WorkflowView) => WorkflowView,
): DashboardState {
  const prev = state.workflows[id] ?? { id, steps: [], state: 'running' as const, startedAt: at };
  const workflows = { ...state.workflows, [id]: change(prev) };
  let order = state.workflowOrder.includes(id) ? state.workflowOrder : [id, ...state.workflowOrder];
  // Keep every running workflow and the most recent finished ones.
  const finished = order.filter((w) => workflows[w]?.state !== 'running');
  if (finished.length > LIMITS.finishedWorkflows) {
    const drop = new Set(finished.slice(LIMITS.finishedWorkflows));
    order = order.filter((w) => !drop.has(w));
    for (const w of drop) delete workflows[w];
  }
  return { ...state, workflows, workflowOrder: order };
}

const started: EventReducer = (state0, { data, at }) => {
  const id = str(data.workflowId);
  if (!id) return null;
  const name = str(data.name);
  const steps = Array.isArray(data.steps) ? data.steps.map(str).filter((s): s is string => Boolean(s)) : [];
  const state = withWorkflow(state0, id, at, (w) => ({
    ...w,
    name: name ?? w.name,
    state: 'running',
    startedAt: at,
    steps: steps.length ? steps.map((s, i) => ({ name: s, status: (i === 0 ? 'running' : 'pending') as StepStatus })) : w.steps,
  }));
  return { state, summary: `${name ?? 'workflow'} started (${id})` };
};

const stepComplete: EventReducer = (state0, { data, at }) => {
  const id = str(data.workflowId);
  const step = str(data.step);
  if (!id || !step) return null;
  const status: StepStatus = data.status === 'failure' ? 'failure' : data.status === 'skipped' ? 'skipped' : 'success';
  const durationMs = num(data.durationMs);
  const index = num(data.stepIndex);
  const state = withWorkflow(state0, id, at, (w) => {
    const steps = [...w.steps];
    let i = index !== undefined && steps[index]?.name === step ? index : steps.findIndex((s) => s.name === step);
    if (i < 0) {
      steps.push({ name: step, status });
      i = steps.length - 1;
    }
    steps[i] = durationMs === undefined ? { name: step, status } : { name: step, status, durationMs };
    const next = steps[i + 1];
    if (status !== 'failure' && next && next.status === 'pending') steps[i + 1] = { ...next, status: 'running' };
    return { ...w, steps };
  });
  const summary = `${id} step ${step}: ${status}${durationMs !== undefined ? ` (${formatDuration(durationMs)})` : ''}`;
  return status === 'failure' ? { state, summary, severity: 'error' } : { state, summary };
};

const complete: EventReducer = (state0, { data, at }) => {
  const id = str(data.workflowId);
  if (!id) return null;
  const durationMs = num(data.durationMs);
  const state = withWorkflow(state0, id, at, (w) => ({
    ...w,
    name: str(data.name) ?? w.name,
    state: 'complete',
    endedAt: at,
    durationMs: durationMs ?? w.durationMs,
    steps: w.steps.map((s) => (s.status === 'running' || s.status === 'pending' ? { ...s, status: 'success' } : s)),
  }));
  const took = durationMs !== undefined ? ` in ${formatDuration(durationMs)}` : '';
  return { state, summary: `${state.workflows[id]?.name ?? id} complete${took}` };
};

const failed: EventReducer = (state0, { data, at }) => {
  const id = str(data.workflowId);
  if (!id) return null;
  const error = clip(str(data.error) ?? 'failed');
  const step = str(data.step);
  const state = withWorkflow(state0, id, at, (w) => ({
    ...w,
    state: 'failed',
    endedAt: at,
    error,
    failedStep: step ?? w.failedStep,
    steps: w.steps.map((s) =>
      s.name === step ? { ...s, status: 'failure' } : s.status === 'running' ? { ...s, status: 'pending' } : s,
    ),
  }));
  return { state, summary: `${id} failed: ${error}`, severity: 'error' };
};

export const workflowReducers: Record<string, EventReducer> = {
  workflow_started: started,
  workflow_step_complete: stepComplete,
  workflow_complete: complete,
  workflow_failed: failed,
};
