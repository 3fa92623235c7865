/**
 * The dashboard's model of the world, built only from the events it receives.
 *
 * Pure: `reduce(state, action)` returns a new state and never mutates the old
 * one, so React can compare by identity and the unit tests need no browser.
 * Event payloads are untrusted input: every field is read through the
 * coercing helpers below, and all text ends up in React text nodes (never
 * as HTML).
 */
import type { Envelope } from '@autosdlc/ws-client';

export type AgentStatus = 'idle' | 'busy' | 'error' | 'offline' | 'unknown';
export type TddPhase = 'red' | 'green' | 'refactor';

export interface TaskView {
  id: string;
  type?: string;
  progress: number;
  status?: string;
  message?: string;
}

export interface AgentView {
  id: string;
  type?: string;
  status: AgentStatus;
  task: TaskView | null;
  /** The last task that ended (completed, failed or cancelled). */
  lastTask: TaskView | null;
  cpu?: number;
  /** Bytes. */
  memory?: number;
  tasksCompleted?: number;
  lastLog?: { level: string; message: string; at: number };
  updatedAt: number;
}

export interface TestCounts {
  total: number;
  passing: number;
  failing: number;
  skipped?: number;
}

export interface Coverage {
  lines?: number;
  branches?: number;
  functions?: number;
}

export interface TddView {
  agentId: string;
  taskId?: string;
  phase?: TddPhase;
  tests?: TestCounts;
  coverage?: Coverage;
  updatedAt: number;
}

export interface PhaseChange {
  id: string;
  at: number;
  agentId: string;
  taskId?: string;
  from?: TddPhase;
  to: TddPhase;
  tests?: TestCounts;
}

export type StepStatus = 'pending' | 'running' | 'success' | 'failure' | 'skipped';

export interface WorkflowView {
  id: string;
  name?: string;
  steps: { name: string; status: StepStatus; durationMs?: number }[];
  state: 'running' | 'complete' | 'failed';
  startedAt: number;
  endedAt?: number;
  durationMs?: number;
  error?: string;
  failedStep?: string;
}

export type Severity = 'critical' | 'error' | 'warning' | 'info';

export interface SystemItem {
  key: string;
  kind: 'alert' | 'notification' | 'deployment';
  severity: Severity;
  title?: string;
  message: string;
  source?: string;
  resolved: boolean;
  at: number;
}

export interface GithubItem {
  id: string;
  kind: 'pr' | 'issue' | 'workflow';
  repository: string;
  number?: number;
  title: string;
  action: string;
  state?: string;
  merged?: boolean;
  /** Only http(s) URLs survive; anything else is null and rendered as plain text. */
  url: string | null;
  actor?: string;
  at: number;
}

export interface FeedItem {
  /** Local arrival order (strictly increasing). */
  seq: number;
  id: string;
  /** An event type, or `marker` / `gap` for lines the dashboard adds itself. */
  type: string;
  at: number;
  agentId?: string;
  summary: string;
  severity?: Severity;
}

export interface DashboardState {
  agents: Record<string, AgentView>;
  agentOrder: string[];
  tdd: Record<string, TddView>;
  phaseChanges: PhaseChange[];
  workflows: Record<string, WorkflowView>;
  workflowOrder: string[];
  system: SystemItem[];
  github: GithubItem[];
  feed: FeedItem[];
  /** Every agent id seen so far (the agent filter offers these); survives filter changes. */
  knownAgents: string[];
  seq: number;
  total: number;
  gaps: number;
}

export const LIMITS = {
  feed: 150,
  phaseChanges: 12,
  system: 40,
  github: 30,
  finishedWorkflows: 12,
} as const;

export type Action =
  | { kind: 'event'; env: Envelope }
  | { kind: 'reset'; reason: string; at: number }
  | { kind: 'marker'; text: string; at: number }
  | { kind: 'clear' };

export function initialState(): DashboardState {
  return {
    agents: {},
    agentOrder: [],
    tdd: {},
    phaseChanges: [],
    workflows: {},
    workflowOrder: [],
    system: [],
    github: [],
    feed: [],
    knownAgents: [],
    seq: 0,
    total: 0,
    gaps: 0,
  };
}

// ---- coercion of untrusted payloads ------------------------------------------------

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
}

function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function pct(v: unknown): number | undefined {
  const n = num(v);
  return n === undefined ? undefined : Math.max(0, Math.min(100, n));
}

function phase(v: unknown): TddPhase | undefined {
  return v === 'red' || v === 'green' || v === 'refactor' ? v : undefined;
}

function agentStatus(v: unknown): AgentStatus {
  return v === 'idle' || v === 'busy' || v === 'error' || v === 'offline' ? v : 'unknown';
}

function severity(v: unknown): Severity {
  return v === 'critical' || v === 'error' || v === 'warning' ? v : 'info';
}

/** An absolute http(s) URL, or null: `javascript:` and friends never become links. */
export function safeUrl(v: unknown): string | null {
  if (typeof v !== 'string' || v.length > 2048) return null;
  try {
    const u = new URL(v);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch {
    return null;
  }
}

function counts(v: unknown): TestCounts | undefined {
  const o = obj(v);
  if (!o) return undefined;
  const total = num(o.total);
  const passing = num(o.passing);
  const failing = num(o.failing);
  if (total === undefined || passing === undefined || failing === undefined) return undefined;
  const skipped = num(o.skipped);
  return skipped === undefined ? { total, passing, failing } : { total, passing, failing, skipped };
}

function coverage(v: unknown): Coverage | undefined {
  const o = obj(v);
  if (!o) return undefined;
  const out: Coverage = {};
  const lines = pct(o.lines);
  const branches = pct(o.branches);
  const functions = pct(o.functions);
  if (lines !== undefined) out.lines = lines;
  if (branches !== undefined) out.branches = branches;
  if (functions !== undefined) out.functions = functions;
  return Object.keys(out).length ? out : undefined;
}

function clip(s: string, max = 300): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

// ---- formatting shared with the components ------------------------------------------

export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return '—';
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
  return `${Math.round(bytes / 1024 ** 2)} MiB`;
}

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

// ---- the reducer ----------------------------------------------------------------------

export function reduce(state: DashboardState, action: Action): DashboardState {
  switch (action.kind) {
    case 'clear':
      return { ...initialState(), knownAgents: state.knownAgents, seq: state.seq };
    case 'reset':
      return pushFeed({ ...state, gaps: state.gaps + 1 }, {
        id: `gap-${state.seq + 1}`,
        type: 'gap',
        at: action.at,
        summary: `Events may have been missed (${action.reason.replace(/_/g, ' ')}); the views catch up as new events arrive.`,
        severity: 'warning',
      });
    case 'marker':
      return pushFeed(state, { id: `marker-${state.seq + 1}`, type: 'marker', at: action.at, summary: action.text });
    case 'event':
      return applyEvent(state, action.env);
    default:
      return state;
  }
}

function pushFeed(state: DashboardState, item: Omit<FeedItem, 'seq'>): DashboardState {
  const seq = state.seq + 1;
  const feed = [{ ...item, seq }, ...state.feed];
  if (feed.length > LIMITS.feed) feed.length = LIMITS.feed;
  return { ...state, seq, feed };
}

function withAgent(state: DashboardState, id: string, at: number, change: (a: AgentView) => AgentView): DashboardState {
  const prev = state.agents[id] ?? { id, status: 'unknown' as AgentStatus, task: null, lastTask: null, updatedAt: at };
  const next = change(prev);
  const known = state.knownAgents.includes(id) ? state.knownAgents : [...state.knownAgents, id].sort();
  const order = state.agentOrder.includes(id) ? state.agentOrder : [...state.agentOrder, id].sort();
  return { ...state, agents: { ...state.agents, [id]: { ...next, updatedAt: at } }, agentOrder: order, knownAgents: known };
}

function withTdd(state: DashboardState, id: string, at: number, change: (t: TddView) => TddView): DashboardState {
  const prev = state.tdd[id] ?? { agentId: id, updatedAt: at };
  const known = state.knownAgents.includes(id) ? state.knownAgents : [...state.knownAgents, id].sort();
  return { ...state, tdd: { ...state.tdd, [id]: { ...change(prev), updatedAt: at } }, knownAgents: known };
}

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

function applyEvent(state0: DashboardState, env: Envelope): DashboardState {
  const data = obj(env.data) ?? {};
  const at = num(env.timestamp) ?? Date.now();
  const agentId = str(data.agentId);
  let state: DashboardState = { ...state0, total: state0.total + 1 };
  let summary: string | undefined;
  let sev: Severity | undefined;

  switch (env.type) {
    case 'agent_status': {
      if (!agentId) break;
      const status = agentStatus(data.status);
      const m = obj(data.metrics) ?? {};
      const t = obj(data.currentTask);
      state = withAgent(state, agentId, at, (a) => {
        let task: TaskView | null = a.task;
        if (t && str(t.id)) {
          const id = str(t.id)!;
          const progress = pct(t.progress) ?? (a.task?.id === id ? a.task.progress : 0);
          task = { ...(a.task?.id === id ? a.task : {}), id, type: str(t.type) ?? a.task?.type, progress };
        } else if (status !== 'busy') {
          task = null;
        }
        return {
          ...a,
          type: str(data.agentType) ?? a.type,
          status,
          task,
          cpu: num(m.cpuUsage) ?? a.cpu,
          memory: num(m.memoryUsage) ?? a.memory,
          tasksCompleted: num(m.tasksCompleted) ?? a.tasksCompleted,
        };
      });
      const task = state.agents[agentId]?.task;
      summary = `${agentId} is ${status}${task ? ` on ${task.id} (${Math.round(task.progress)}%)` : ''}`;
      if (status === 'error') sev = 'error';
      break;
    }
    case 'agent_task_update': {
      const taskId = str(data.taskId);
      if (!agentId || !taskId) break;
      const status = str(data.status) ?? 'running';
      const progress = pct(data.progress);
      const message = str(data.message);
      state = withAgent(state, agentId, at, (a) => {
        const same = a.task?.id === taskId ? a.task : null;
        const task: TaskView = {
          id: taskId,
          type: str(data.taskType) ?? same?.type,
          progress: progress ?? same?.progress ?? 0,
          status,
          message: message ? clip(message, 160) : same?.message,
        };
        if (status === 'completed' || status === 'failed' || status === 'cancelled') {
          if (status === 'completed') task.progress = 100;
          return { ...a, task: a.task?.id === taskId ? null : a.task, lastTask: task };
        }
        return { ...a, task, status: a.status === 'idle' || a.status === 'unknown' ? 'busy' : a.status };
      });
      summary = `${taskId} ${status}${progress !== undefined ? ` ${Math.round(progress)}%` : ''}${message ? `: ${message}` : ''}`;
      if (status === 'failed') sev = 'error';
      break;
    }
    case 'agent_metric': {
      if (!agentId) break;
      state = withAgent(state, agentId, at, (a) => ({
        ...a,
        cpu: num(data.cpuUsage) ?? a.cpu,
        memory: num(data.memoryUsage) ?? a.memory,
        tasksCompleted: num(data.tasksCompleted) ?? a.tasksCompleted,
      }));
      const a = state.agents[agentId]!;
      summary = `CPU ${a.cpu !== undefined ? `${a.cpu.toFixed(0)}%` : '—'} · memory ${formatBytes(a.memory)} · ${a.tasksCompleted ?? 0} tasks done`;
      break;
    }
    case 'agent_log': {
      if (!agentId) break;
      const level = str(data.level) ?? 'info';
      const message = clip(str(data.message) ?? '');
      state = withAgent(state, agentId, at, (a) => ({ ...a, lastLog: { level, message, at } }));
      summary = `[${level}] ${message}`;
      if (level === 'error') sev = 'error';
      else if (level === 'warning') sev = 'warning';
      break;
    }
    case 'agent_error': {
      if (!agentId) break;
      const message = clip(str(data.message) ?? 'error');
      state = withAgent(state, agentId, at, (a) => ({ ...a, lastLog: { level: 'error', message, at } }));
      summary = `error: ${message}`;
      sev = 'error';
      break;
    }
    case 'tdd_phase_change': {
      const to = phase(data.currentPhase);
      if (!agentId || !to) break;
      const from = phase(data.previousPhase);
      const tests = counts(data.testResults);
      const cov = coverage(data.coverage);
      const taskId = str(data.taskId);
      state = withTdd(state, agentId, at, (t) => ({
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
      state = { ...state, phaseChanges };
      summary = `${from ?? 'start'} → ${to}${tests ? ` (${tests.passing}/${tests.total} passing)` : ''}`;
      break;
    }
    case 'test_result': {
      if (!agentId) break;
      const tests = counts(data);
      state = withTdd(state, agentId, at, (t) => ({ ...t, tests: tests ?? t.tests, taskId: str(data.taskId) ?? t.taskId }));
      summary = tests
        ? `tests: ${tests.passing}/${tests.total} passing, ${tests.failing} failing${tests.skipped ? `, ${tests.skipped} skipped` : ''}`
        : 'test result';
      if (tests && tests.failing > 0) sev = 'warning';
      break;
    }
    case 'coverage_update': {
      if (!agentId) break;
      const cov = coverage(data);
      state = withTdd(state, agentId, at, (t) => ({ ...t, coverage: cov ? { ...t.coverage, ...cov } : t.coverage }));
      summary = `coverage: lines ${cov?.lines ?? '—'}%, branches ${cov?.branches ?? '—'}%, functions ${cov?.functions ?? '—'}%`;
      break;
    }
    case 'workflow_started': {
      const id = str(data.workflowId);
      if (!id) break;
      const name = str(data.name);
      const steps = Array.isArray(data.steps) ? data.steps.map(str).filter((s): s is string => Boolean(s)) : [];
      state = withWorkflow(state, id, at, (w) => ({
        ...w,
        name: name ?? w.name,
        state: 'running',
        startedAt: at,
        steps: steps.length
          ? steps.map((s, i) => ({ name: s, status: (i === 0 ? 'running' : 'pending') as StepStatus }))
          : w.steps,
      }));
      summary = `${name ?? 'workflow'} started (${id})`;
      break;
    }
    case 'workflow_step_complete': {
      const id = str(data.workflowId);
      const step = str(data.step);
      if (!id || !step) break;
      const status: StepStatus = data.status === 'failure' ? 'failure' : data.status === 'skipped' ? 'skipped' : 'success';
      const durationMs = num(data.durationMs);
      const index = num(data.stepIndex);
      state = withWorkflow(state, id, at, (w) => {
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
      summary = `${id} step ${step}: ${status}${durationMs !== undefined ? ` (${formatDuration(durationMs)})` : ''}`;
      if (status === 'failure') sev = 'error';
      break;
    }
    case 'workflow_complete': {
      const id = str(data.workflowId);
      if (!id) break;
      const durationMs = num(data.durationMs);
      state = withWorkflow(state, id, at, (w) => ({
        ...w,
        name: str(data.name) ?? w.name,
        state: 'complete',
        endedAt: at,
        durationMs: durationMs ?? w.durationMs,
        steps: w.steps.map((s) => (s.status === 'running' || s.status === 'pending' ? { ...s, status: 'success' } : s)),
      }));
      summary = `${state.workflows[id]?.name ?? id} complete${durationMs !== undefined ? ` in ${formatDuration(durationMs)}` : ''}`;
      break;
    }
    case 'workflow_failed': {
      const id = str(data.workflowId);
      if (!id) break;
      const error = clip(str(data.error) ?? 'failed');
      const step = str(data.step);
      state = withWorkflow(state, id, at, (w) => ({
        ...w,
        state: 'failed',
        endedAt: at,
        error,
        failedStep: step ?? w.failedStep,
        steps: w.steps.map((s) =>
          s.name === step ? { ...s, status: 'failure' } : s.status === 'running' ? { ...s, status: 'pending' } : s,
        ),
      }));
      summary = `${id} failed: ${error}`;
      sev = 'error';
      break;
    }
    case 'system_notification':
    case 'system_alert':
    case 'deployment_status': {
      const item = systemItem(env, data, at);
      const others = state.system.filter((s) => s.key !== item.key);
      state = { ...state, system: [item, ...others].slice(0, LIMITS.system) };
      sev = item.resolved ? 'info' : item.severity;
      summary = `${item.title ? `${item.title}: ` : ''}${item.message}`;
      break;
    }
    case 'github_issue_update':
    case 'github_pr_update':
    case 'github_workflow_update': {
      const item = githubItem(env, data, at);
      state = { ...state, github: [item, ...state.github].slice(0, LIMITS.github) };
      summary = `${item.repository}${item.number !== undefined ? `#${item.number}` : ''} ${item.action}: ${item.title}`;
      break;
    }
    default:
      break;
  }
  summary ??= defaultSummary(env.type, data);
  return pushFeed(state, {
    id: env.id,
    type: env.type,
    at,
    ...(agentId ? { agentId } : {}),
    summary: clip(summary),
    ...(sev ? { severity: sev } : {}),
  });
}

function defaultSummary(type: string, data: Obj): string {
  let text: string;
  try {
    text = JSON.stringify(data);
  } catch {
    text = '';
  }
  return `${type.replace(/_/g, ' ')} ${clip(text, 160)}`;
}

function systemItem(env: Envelope, data: Obj, at: number): SystemItem {
  if (env.type === 'system_alert') {
    const alertId = str(data.alertId);
    return {
      key: alertId ? `alert:${alertId}` : `alert:${env.id}`,
      kind: 'alert',
      severity: severity(data.severity),
      title: str(data.title),
      message: clip(str(data.message) ?? ''),
      source: str(data.source),
      resolved: data.resolved === true,
      at,
    };
  }
  if (env.type === 'deployment_status') {
    const status = str(data.status) ?? '';
    const bad = status === 'failure' || status === 'error';
    return {
      key: `deploy:${str(data.environment) ?? ''}:${str(data.repository) ?? ''}`,
      kind: 'deployment',
      severity: bad ? 'error' : 'info',
      title: `Deployment to ${str(data.environment) ?? '?'}`,
      message: clip(`${status}${str(data.description) ? `: ${str(data.description)}` : ''}`),
      source: str(data.repository),
      resolved: status === 'success' || status === 'inactive',
      at,
    };
  }
  return {
    key: `note:${env.id}`,
    kind: 'notification',
    severity: data.level === 'warning' ? 'warning' : 'info',
    title: str(data.title),
    message: clip(str(data.message) ?? ''),
    resolved: false,
    at,
  };
}

function githubItem(env: Envelope, data: Obj, at: number): GithubItem {
  const kind = env.type === 'github_pr_update' ? 'pr' : env.type === 'github_issue_update' ? 'issue' : 'workflow';
  const item: GithubItem = {
    id: env.id,
    kind,
    repository: str(data.repository) ?? '?',
    title: clip(str(kind === 'workflow' ? data.name : data.title) ?? '', 200),
    action: str(data.action) ?? 'updated',
    url: safeUrl(data.url),
    at,
  };
  const number = num(data.number);
  if (number !== undefined) item.number = number;
  const state = kind === 'workflow' ? (str(data.conclusion) ?? str(data.status)) : str(data.state);
  if (state) item.state = state;
  if (typeof data.merged === 'boolean') item.merged = data.merged;
  const actor = str(data.actor);
  if (actor) item.actor = actor;
  return item;
}

// ---- derived views ------------------------------------------------------------------------

const SEVERITY_RANK: Record<Severity, number> = { critical: 0, error: 1, warning: 2, info: 3 };

/** Unresolved alerts first, by severity then recency; then everything else by recency. */
export function sortSystem(items: SystemItem[]): SystemItem[] {
  return [...items].sort((a, b) => {
    const activeA = a.kind === 'alert' && !a.resolved ? 0 : 1;
    const activeB = b.kind === 'alert' && !b.resolved ? 0 : 1;
    if (activeA !== activeB) return activeA - activeB;
    if (activeA === 0 && a.severity !== b.severity) return SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity];
    return b.at - a.at;
  });
}

export function severityCounts(items: SystemItem[]): Record<Severity, number> {
  const out: Record<Severity, number> = { critical: 0, error: 0, warning: 0, info: 0 };
  for (const i of items) if (!i.resolved) out[i.severity] += 1;
  return out;
}
