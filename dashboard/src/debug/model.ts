/**
 * The admin API's answers (CONTRACT §10) as the Debug view uses them, and
 * their parsing. The answers come from another process (possibly another
 * version of it), so every field is read defensively: a missing or
 * mistyped field becomes a neutral value instead of a crash.
 */
import { num, obj, str, type Obj } from '../state/coerce';

/** `"partial": true` and the nodes that did not answer in time. */
export interface Completeness {
  partial: boolean;
  missingNodes: string[];
}

export interface NodeInfo {
  nodeId: string;
  host: string;
  pid: number | null;
  startedAt: number | null;
  lastSeen: number | null;
  connections: number;
  version: string;
}

export interface ConnectionSubscription {
  subscriptionId: string;
  events: string[];
  /** Resource key (agentId, taskId, workflowId, repository) -> the values it is limited to. */
  filters: Record<string, string[]>;
}

export interface ConnectionInfo {
  connectionId: string;
  nodeId: string;
  sessionId: string;
  subject: string | null;
  remoteAddress: string;
  connectedAt: number | null;
  subscriptions: ConnectionSubscription[];
  state: string;
  authKind: string | null;
  compression: string;
  queueBytes: number;
  bytesIn: number;
  bytesOut: number;
}

export interface ErrorGroup {
  code: string;
  messageType: string;
  count: number;
  firstAt: number | null;
  lastAt: number | null;
  lastMessage: string;
  ratePerMin: number;
  alerting: boolean;
  nodes: string[];
}

export interface SubscriptionCounts {
  resources: { resource: string; subscribers: number }[];
  types: { type: string; subscribers: number }[];
}

export type Listing<T> = Completeness & { items: T[] };

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.map(str).filter((s): s is string => s !== undefined) : [];
}

function objects(v: unknown): Obj[] {
  return Array.isArray(v) ? v.map(obj).filter((o): o is Obj => o !== undefined) : [];
}

export function completeness(body: unknown): Completeness {
  const o = obj(body) ?? {};
  const missingNodes = strings(o.missingNodes);
  return { partial: o.partial === true || missingNodes.length > 0, missingNodes };
}

export function parseNodes(body: unknown): Listing<NodeInfo> {
  const items = objects(obj(body)?.nodes).map((n) => ({
    nodeId: str(n.nodeId) ?? '?',
    host: str(n.host) ?? '',
    pid: num(n.pid) ?? null,
    startedAt: num(n.startedAt) ?? null,
    lastSeen: num(n.lastSeen) ?? null,
    connections: num(n.connections) ?? 0,
    version: str(n.version) ?? '',
  }));
  return { ...completeness(body), items };
}

function parseSubscription(s: Obj): ConnectionSubscription {
  const filters: Record<string, string[]> = {};
  for (const [key, value] of Object.entries(obj(s.filters) ?? {})) {
    filters[key] = Array.isArray(value) ? strings(value) : str(value) !== undefined ? [str(value)!] : [];
  }
  return { subscriptionId: str(s.subscriptionId) ?? '', events: strings(s.events), filters };
}

export function parseConnection(value: unknown): ConnectionInfo {
  const c = obj(value) ?? {};
  return {
    connectionId: str(c.connectionId) ?? '?',
    nodeId: str(c.nodeId) ?? '',
    sessionId: str(c.sessionId) ?? '',
    subject: str(c.subject) ?? null,
    remoteAddress: str(c.remoteAddress) ?? '',
    connectedAt: num(c.connectedAt) ?? null,
    subscriptions: objects(c.subscriptions).map(parseSubscription),
    state: str(c.state) ?? 'open',
    authKind: str(c.authKind) ?? null,
    compression: str(c.compression) ?? 'none',
    queueBytes: num(c.queueBytes) ?? 0,
    bytesIn: num(c.bytesIn) ?? 0,
    bytesOut: num(c.bytesOut) ?? 0,
  };
}

export function parseConnections(body: unknown): Listing<ConnectionInfo> {
  return { ...completeness(body), items: objects(obj(body)?.connections).map(parseConnection) };
}

export function parseErrors(body: unknown): Listing<ErrorGroup> {
  const items = objects(obj(body)?.groups).map((g) => ({
    code: str(g.code) ?? '?',
    messageType: str(g.messageType) ?? '',
    count: num(g.count) ?? 0,
    firstAt: num(g.firstAt) ?? null,
    lastAt: num(g.lastAt) ?? null,
    lastMessage: str(g.lastMessage) ?? '',
    ratePerMin: num(g.ratePerMin) ?? 0,
    alerting: g.alerting === true,
    nodes: strings(g.nodes),
  }));
  return { ...completeness(body), items };
}

export function parseSubscriptionCounts(body: unknown): SubscriptionCounts & Completeness {
  const o = obj(body) ?? {};
  return {
    ...completeness(body),
    resources: objects(o.resources).map((r) => ({ resource: str(r.resource) ?? '?', subscribers: num(r.subscribers) ?? 0 })),
    types: objects(o.types).map((t) => ({ type: str(t.type) ?? '?', subscribers: num(t.subscribers) ?? 0 })),
  };
}

/** An error answer of the gateway (`{"error": {"code", "message", "path"?}}`), or what the status says. */
export interface ApiError {
  status: number;
  code: string;
  message: string;
  /** The failing field's JSON path (`data.status`), when the gateway named one; "" means the whole body. */
  path?: string;
}

export function parseApiError(status: number, body: unknown): ApiError {
  const e = obj(obj(body)?.error);
  const path = str(e?.path);
  return {
    status,
    code: str(e?.code) ?? (status === 401 ? 'unauthorized' : status === 403 ? 'forbidden' : status === 404 ? 'not_found' : `http_${status}`),
    message: str(e?.message) ?? `HTTP ${status}`,
    ...(path !== undefined ? { path } : {}),
  };
}
