/**
 * Wire types of the AutoSDLC WebSocket protocol (contract §3).
 *
 * Hand-written for now from the contract's list of message types. They will
 * later be generated from the JSON Schemas served at `/schemas/<type>.json`
 * (draft 2020-12); until then keep this file in step with the schemas by hand.
 * Every `data` type allows extra properties: the gateway passes unknown fields
 * through unchanged (forward compatibility), and so does this client.
 */

/** Frame types the client and the gateway use to run the connection itself. */
export const CONTROL_TYPES = [
  'connect',
  'disconnect',
  'ping',
  'pong',
  'error',
  'auth_request',
  'auth_success',
  'auth_failure',
  'subscribe',
  'unsubscribe',
  'subscription_update',
] as const;

/** Event types: everything the application subscribes to and receives. */
export const EVENT_TYPES = [
  'agent_status',
  'agent_task_update',
  'agent_log',
  'agent_metric',
  'agent_error',
  'tdd_phase_change',
  'test_result',
  'coverage_update',
  'workflow_started',
  'workflow_step_complete',
  'workflow_complete',
  'workflow_failed',
  'system_notification',
  'system_alert',
  'deployment_status',
  'github_issue_update',
  'github_pr_update',
  'github_workflow_update',
] as const;

export type ControlType = (typeof CONTROL_TYPES)[number];
export type EventType = (typeof EVENT_TYPES)[number];
export type MessageType = ControlType | EventType;

/** Pseudo-type emitted by the client (never on the wire) when history was lost. */
export const RESET_TYPE = '$reset' as const;
export type ResetType = typeof RESET_TYPE;

const CONTROL_SET: ReadonlySet<string> = new Set(CONTROL_TYPES);

/** True for every type that is not a control type, including unknown future event types. */
export function isEventType(type: string): boolean {
  return !CONTROL_SET.has(type) && !type.startsWith('$');
}

export interface Metadata {
  /** Protocol version of the envelope, `"1.0"`. */
  version?: string;
  source?: string;
  /** On a reply: the `id` of the request it answers. */
  correlationId?: string;
  /** True when the frame travelled gzip-compressed (informational). */
  compressed?: boolean;
  [key: string]: unknown;
}

/** Every frame, in both directions. */
export interface Envelope<T extends string = string, D = Record<string, unknown>> {
  id: string;
  type: T;
  /** Milliseconds since the epoch. */
  timestamp: number;
  data: D;
  metadata?: Metadata;
  [key: string]: unknown;
}

/** Values of a resource filter: one value or a list of values. */
export type FilterValue = string | string[];

export interface SubscriptionFilters {
  agentId?: FilterValue;
  taskId?: FilterValue;
  workflowId?: FilterValue;
  /** `owner/name` */
  repository?: FilterValue;
}

type Open = { [key: string]: unknown };

// ---- control data ------------------------------------------------------------

export interface ConnectionLimits extends Open {
  /** A frame of exactly this many bytes is accepted. */
  maxFrameBytes: number;
}

export interface ConnectData extends Open {
  connectionId: string;
  sessionId: string;
  /** Milliseconds. */
  heartbeatInterval: number;
  protocolVersion: string;
  resumed: boolean;
  limits: ConnectionLimits;
}

export interface DisconnectData extends Open {
  reason: string;
  reconnect: boolean;
}

export type ServerErrorCode =
  | 'invalid_json'
  | 'invalid_message'
  | 'unknown_type'
  | 'unauthorized'
  | 'forbidden'
  | 'rate_limited'
  | 'too_large'
  | 'not_found'
  | 'internal';

export interface ErrorData extends Open {
  code: ServerErrorCode | (string & {});
  message: string;
  /** For `invalid_message`: the failing field. */
  path?: string;
  /** For `rate_limited`. */
  retryAfterMs?: number;
}

export interface AuthRequestData extends Open {
  token?: string;
  apiKey?: string;
  sessionId?: string;
  lastEventId?: string;
  compression?: 'gzip';
}

export interface AuthSuccessData extends Open {
  subject: string;
  permissions: string[];
  /** Epoch milliseconds; null when the credential never expires. */
  expiresAt: number | null;
}

export interface AuthFailureData extends Open {
  code: string;
  message: string;
}

export interface SubscribeData extends Open {
  events: string[];
  filters?: SubscriptionFilters;
}

export interface UnsubscribeData extends Open {
  subscriptionId: string;
}

export type SubscriptionStatus = 'active' | 'removed' | 'resumed' | 'reset';

export interface SubscriptionUpdateData extends Open {
  subscriptionId: string;
  status: SubscriptionStatus | (string & {});
  events?: string[];
  filters?: SubscriptionFilters;
}

// ---- event data ----------------------------------------------------------------

export interface AgentStatusData extends Open {
  agentId: string;
  agentType?: string;
  status: 'idle' | 'busy' | 'error' | 'offline';
  currentTask?: { id: string; type?: string; progress?: number } & Open;
  metrics?: { cpuUsage?: number; memoryUsage?: number; tasksCompleted?: number } & Open;
}

export interface TddPhaseChangeData extends Open {
  agentId: string;
  taskId?: string;
  previousPhase?: 'red' | 'green' | 'refactor';
  currentPhase: 'red' | 'green' | 'refactor';
  testResults?: { total: number; passing: number; failing: number } & Open;
  coverage?: { lines: number; branches: number; functions: number } & Open;
}

/** Agent events other than agent_status (schemas not finalised yet). */
export interface AgentEventData extends Open {
  agentId: string;
  taskId?: string;
}

/** TDD events other than tdd_phase_change. */
export interface TddEventData extends Open {
  agentId?: string;
  taskId?: string;
}

export interface WorkflowEventData extends Open {
  workflowId: string;
}

export interface SystemEventData extends Open {}

export interface DeploymentStatusData extends Open {
  repository?: string;
}

export interface GitHubEventData extends Open {
  /** `owner/name` */
  repository: string;
}

/** `data` type of every known message type. */
export interface DataByType {
  connect: ConnectData;
  disconnect: DisconnectData;
  ping: Open;
  pong: Open;
  error: ErrorData;
  auth_request: AuthRequestData;
  auth_success: AuthSuccessData;
  auth_failure: AuthFailureData;
  subscribe: SubscribeData;
  unsubscribe: UnsubscribeData;
  subscription_update: SubscriptionUpdateData;
  agent_status: AgentStatusData;
  agent_task_update: AgentEventData;
  agent_log: AgentEventData;
  agent_metric: AgentEventData;
  agent_error: AgentEventData;
  tdd_phase_change: TddPhaseChangeData;
  test_result: TddEventData;
  coverage_update: TddEventData;
  workflow_started: WorkflowEventData;
  workflow_step_complete: WorkflowEventData;
  workflow_complete: WorkflowEventData;
  workflow_failed: WorkflowEventData;
  system_notification: SystemEventData;
  system_alert: SystemEventData;
  deployment_status: DeploymentStatusData;
  github_issue_update: GitHubEventData;
  github_pr_update: GitHubEventData;
  github_workflow_update: GitHubEventData;
}

/** The envelope of one known message type. */
export type EnvelopeOf<T extends MessageType> = Envelope<T, DataByType[T]>;

/** Union of the envelopes of all known event types (discriminated by `type`). */
export type AnyEventEnvelope = { [K in EventType]: EnvelopeOf<K> }[EventType];

// ---- reset notification ----------------------------------------------------------

export type ResetReason =
  /** The server no longer knew the session (`connect.resumed: false`). */
  | 'session_not_resumed'
  /** The server resumed, but missed events are past retention or the history was lost. */
  | 'history_lost';

export interface ResetData extends Open {
  reason: ResetReason;
  sessionId: string | null;
  previousSessionId: string | null;
  /** Caller-facing ids of the affected subscriptions. */
  subscriptionIds: string[];
}

/** Delivered to `on('$reset')` handlers and `onReset` callbacks. */
export type ResetEnvelope = Envelope<ResetType, ResetData>;

// ---- handler typing for on() -------------------------------------------------------

/** Event types a handler pattern matches: exact type, `prefix*` glob or `*`. */
export type MatchingTypes<P extends string> = P extends '*'
  ? EventType
  : P extends `${infer Prefix}*`
    ? Extract<EventType, `${Prefix}${string}`>
    : P extends MessageType
      ? P
      : never;

/** What a handler registered with pattern `P` receives. */
export type HandlerEnvelope<P extends string> = P extends ResetType
  ? ResetEnvelope
  : [MatchingTypes<P>] extends [never]
    ? Envelope
    : { [K in MatchingTypes<P>]: EnvelopeOf<K> }[MatchingTypes<P>];

/** A message the application hands to `send()`: id and timestamp are filled in. */
export interface OutgoingMessage<T extends string = string, D = Record<string, unknown>> {
  type: T;
  data?: D;
  id?: string;
  timestamp?: number;
  metadata?: Metadata;
  [key: string]: unknown;
}

/** Returned by every registration; calling it again is harmless. */
export type Unsubscribe = () => void;

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';
