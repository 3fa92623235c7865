/**
 * Wire types of the AutoSDLC WebSocket protocol (contract §3).
 *
 * The `data` types come from `./generated/messages.ts`, which
 * `npm run gen:types` generates from the gateway's JSON Schemas
 * (`src/autosdlc_ws/schemas/*.json`, also served at `/schemas/<type>.json`);
 * a test fails when that file and the schemas drift apart. This file adds the
 * envelope, the split into control and event types, and the client's own
 * types. Every `data` type allows extra properties: the gateway passes unknown
 * fields through unchanged (forward compatibility), and so does this client.
 */
import type {
  AgentErrorData,
  AgentLogData,
  AgentMetricData,
  AgentTaskUpdateData,
  CoverageUpdateData,
  ErrorData,
  GithubIssueUpdateData,
  GithubPrUpdateData,
  GithubWorkflowUpdateData,
  Limits,
  MessageDataMap,
  Metadata,
  SubscriptionUpdateData,
  SystemAlertData,
  SystemNotificationData,
  TestResultData,
  WorkflowCompleteData,
  WorkflowFailedData,
  WorkflowStartedData,
  WorkflowStepCompleteData,
} from './generated/messages.js';

export * from './generated/messages.js';

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

// Compile-time check that the two lists above name exactly the types that have
// a schema (npm run typecheck fails otherwise; test/generated-types.test.ts
// checks the same at run time).
type SameKeys<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type AssertTrue<T extends true> = T;
type _MessageTypesMatchSchemas = AssertTrue<SameKeys<MessageType, keyof MessageDataMap>>;

/** Pseudo-type emitted by the client (never on the wire) when history was lost. */
export const RESET_TYPE = '$reset' as const;
export type ResetType = typeof RESET_TYPE;

const CONTROL_SET: ReadonlySet<string> = new Set(CONTROL_TYPES);

/** True for every type that is not a control type, including unknown future event types. */
export function isEventType(type: string): boolean {
  return !CONTROL_SET.has(type) && !type.startsWith('$');
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

type Open = { [key: string]: unknown };

// ---- data types, generated from the JSON Schemas ------------------------------------
// src/generated/messages.ts holds one open interface per schema `$defs` entry
// (AgentStatusData, ConnectData, SubscriptionFilters, Metadata, ...) and
// MessageDataMap (type -> data). The names below are this package's older
// public names for some of them, kept as aliases.

/** `limits` in the `connect` frame (schema name `Limits`). */
export type ConnectionLimits = Limits;

/** `code` of an `error` frame. */
export type ServerErrorCode = ErrorData['code'];

/** `status` of a `subscription_update` frame. */
export type SubscriptionStatus = SubscriptionUpdateData['status'];

/** Data of the agent events other than `agent_status`. */
export type AgentEventData = AgentTaskUpdateData | AgentLogData | AgentMetricData | AgentErrorData;

/** Data of the TDD events other than `tdd_phase_change`. */
export type TddEventData = TestResultData | CoverageUpdateData;

/** Data of the `workflow_*` events. */
export type WorkflowEventData =
  | WorkflowStartedData
  | WorkflowStepCompleteData
  | WorkflowCompleteData
  | WorkflowFailedData;

/** Data of `system_notification` and `system_alert`. */
export type SystemEventData = SystemNotificationData | SystemAlertData;

/** Data of the `github_*` events. */
export type GitHubEventData = GithubIssueUpdateData | GithubPrUpdateData | GithubWorkflowUpdateData;

/** `data` type of every known message type (the generated MessageDataMap). */
export interface DataByType extends MessageDataMap {}

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

/** A handler for `on(pattern, handler)` (the design document's `EventHandler`). */
export type EventHandler<P extends string = string> = (envelope: HandlerEnvelope<P>) => void;

/** The design document's name for the envelope (`id`, `type`, `timestamp`, `data`, `metadata`). */
export type WebSocketMessage<T extends string = string, D = Record<string, unknown>> = Envelope<T, D>;

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
