/**
 * The shape of the dashboard's model: one slice per domain (agents, TDD,
 * workflows, system, GitHub) plus the feed and counters, and the actions
 * the root reducer takes.
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
  /** The whole envelope as received (events only), for the Debug view's inspector. */
  envelope?: Envelope;
  /** Sent as part of a subscription's snapshot (the state when subscribing), not live. */
  snapshot?: true;
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

/** What a domain reducer is handed for one event: the payload already coerced to an object. */
export interface EventInput {
  env: Envelope;
  data: Record<string, unknown>;
  /** The event's timestamp (or the arrival time when it has none). */
  at: number;
  agentId: string | undefined;
}

/** A domain reducer's answer: the new state, and how the feed line reads (default: generic). */
export interface EventOutcome {
  state: DashboardState;
  summary?: string;
  severity?: Severity;
}

/** Handles one event type of its domain; null when the payload is unusable (the feed still shows it). */
export type EventReducer = (state: DashboardState, input: EventInput) => EventOutcome | null;
