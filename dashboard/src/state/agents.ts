/** The agents slice: status, current and last task, metrics and last log line per agent. */
import { agentStatus, clip, num, obj, pct, str } from './coerce';
import { formatBytes } from './format';
import { withKnownAgent } from './known-agents';
import type { AgentStatus, AgentView, DashboardState, EventReducer, Severity, TaskView } from './types';

function withAgent(state: DashboardState, id: string, at: number, change: (a: AgentView) => AgentView): DashboardState {
  const prev = state.agents[id] ?? { id, status: 'unknown' as AgentStatus, task: null, lastTask: null, updatedAt: at };
  const next = change(prev);
  const order = state.agentOrder.includes(id) ? state.agentOrder : [...state.agentOrder, id].sort();
  return {
    ...state,
    agents: { ...state.agents, [id]: { ...next, updatedAt: at } },
    agentOrder: order,
    knownAgents: withKnownAgent(state, id),
  };
}

const agentStatusEvent: EventReducer = (state0, { data, at, agentId }) => {
  if (!agentId) return null;
  const status = agentStatus(data.status);
  const m = obj(data.metrics) ?? {};
  const t = obj(data.currentTask);
  const state = withAgent(state0, agentId, at, (a) => {
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
  const summary = `${agentId} is ${status}${task ? ` on ${task.id} (${Math.round(task.progress)}%)` : ''}`;
  return status === 'error' ? { state, summary, severity: 'error' } : { state, summary };
};

const agentTaskUpdate: EventReducer = (state0, { data, at, agentId }) => {
  const taskId = str(data.taskId);
  if (!agentId || !taskId) return null;
  const status = str(data.status) ?? 'running';
  const progress = pct(data.progress);
  const message = str(data.message);
  const state = withAgent(state0, agentId, at, (a) => {
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
  const summary = `${taskId} ${status}${progress !== undefined ? ` ${Math.round(progress)}%` : ''}${message ? `: ${message}` : ''}`;
  return status === 'failed' ? { state, summary, severity: 'error' } : { state, summary };
};

const agentMetric: EventReducer = (state0, { data, at, agentId }) => {
  if (!agentId) return null;
  const state = withAgent(state0, agentId, at, (a) => ({
    ...a,
    cpu: num(data.cpuUsage) ?? a.cpu,
    memory: num(data.memoryUsage) ?? a.memory,
    tasksCompleted: num(data.tasksCompleted) ?? a.tasksCompleted,
  }));
  const a = state.agents[agentId]!;
  const cpu = a.cpu !== undefined ? `${a.cpu.toFixed(0)}%` : '—';
  return { state, summary: `CPU ${cpu} · memory ${formatBytes(a.memory)} · ${a.tasksCompleted ?? 0} tasks done` };
};

const agentLog: EventReducer = (state0, { data, at, agentId }) => {
  if (!agentId) return null;
  const level = str(data.level) ?? 'info';
  const message = clip(str(data.message) ?? '');
  const state = withAgent(state0, agentId, at, (a) => ({ ...a, lastLog: { level, message, at } }));
  const severity: Severity | undefined = level === 'error' ? 'error' : level === 'warning' ? 'warning' : undefined;
  const summary = `[${level}] ${message}`;
  return severity ? { state, summary, severity } : { state, summary };
};

const agentError: EventReducer = (state0, { data, at, agentId }) => {
  if (!agentId) return null;
  const message = clip(str(data.message) ?? 'error');
  const state = withAgent(state0, agentId, at, (a) => ({ ...a, lastLog: { level: 'error', message, at } }));
  return { state, summary: `error: ${message}`, severity: 'error' };
};

export const agentReducers: Record<string, EventReducer> = {
  agent_status: agentStatusEvent,
  agent_task_update: agentTaskUpdate,
  agent_metric: agentMetric,
  agent_log: agentLog,
  agent_error: agentError,
};
