import { backoffDelay } from './backoff.js';
import { closeAction } from './close-codes.js';
import { binaryFrameToText, byteLength, isTextFrame, parseEnvelope, type RawFrame } from './codec.js';
import { RecentIds } from './dedup.js';
import {
  AuthError,
  AutoSDLCError,
  ClientClosedError,
  ConnectError,
  ConnectionClosedError,
  FrameTooLargeError,
  InvalidArgumentError,
  ProtocolError,
  QueueFullError,
  ReconnectFailedError,
  RequestTimeoutError,
  ServerError,
} from './errors.js';
import { globMatches, isGlob } from './glob.js';
import { newId } from './ids.js';
import {
  isEventType,
  RESET_TYPE,
  type AuthSuccessData,
  type ConnectData,
  type ConnectionLimits,
  type ConnectionState,
  type DisconnectData,
  type Envelope,
  type HandlerEnvelope,
  type OutgoingMessage,
  type ResetData,
  type ResetEnvelope,
  type ResetReason,
  type SubscriptionFilters,
  type SubscriptionUpdateData,
  type Unsubscribe,
} from './types.js';

// ---- the socket the client drives ------------------------------------------------

/**
 * The part of the WebSocket API the client uses: the browser's `WebSocket`,
 * Node's `ws` package and the tests' fake all fit it.
 */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

const OPEN = 1;

// ---- configuration --------------------------------------------------------------

export interface ReconnectOptions {
  /** Upper bound of the first retry delay (full jitter: the delay is uniform in [0, cap)). */
  baseMs: number;
  /** Upper bound of any retry delay. */
  maxMs: number;
  /** Consecutive failed attempts after which the client stops (state `closed`). */
  maxAttempts: number;
  /** The attempt counter resets only once a connection stayed open this long. */
  stableAfterMs: number;
}

export interface ResetInfo extends ResetData {}

export interface ClientConfig {
  /** `ws://host:port/ws` (`http(s)://` is accepted and mapped to `ws(s)://`). */
  url: string;
  /** JWT. Sent in-band in `auth_request` unless `authInUrl`. */
  token?: string;
  /** API key, used when there is no token. */
  apiKey?: string;
  /**
   * Called before every connection attempt (and before the token expires, to
   * refresh it in-band); wins over `token`. Required to recover from 4003.
   */
  getToken?: () => string | Promise<string>;
  /** Constructor for runtimes without a global WebSocket (Node 20: the `ws` package). */
  WebSocket?: WebSocketConstructor;
  /** Subprotocols for the upgrade, e.g. `autosdlc.v1`. */
  protocols?: string | string[];
  /** Ask the server for gzip binary frames (large messages only). */
  compression?: 'gzip';
  reconnect?: Partial<ReconnectOptions>;
  /** Messages kept while disconnected; `send()` throws QueueFullError beyond it. */
  queueLimit?: number;
  /**
   * Put token/api_key (and session_id, last_event_id, compression) in the
   * upgrade URL instead of an in-band auth_request. For Node scripts: URLs end
   * up in proxy and server logs, so browsers should keep the default.
   */
  authInUrl?: boolean;
  /** Silence tolerated beyond the heartbeat interval before the connection is declared dead. */
  pongTimeoutMs?: number;
  /** How long subscribe/unsubscribe wait for the server's reply once sent. */
  requestTimeoutMs?: number;
  /** Event ids remembered to drop duplicates. */
  dedupSize?: number;
  /** Cap on one decompressed gzip frame. */
  maxDecompressedBytes?: number;
  /** With getToken: refresh the token in-band this long before it expires. */
  tokenRefreshMarginMs?: number;
  /** Same as calling `onReset(cb)` right after construction. */
  onReset?: (info: ResetInfo) => void;
  /** Same as calling `onError(cb)` right after construction. */
  onError?: (error: AutoSDLCError) => void;
}

export const DEFAULTS = Object.freeze({
  reconnect: Object.freeze({
    baseMs: 500,
    maxMs: 30_000,
    maxAttempts: Number.POSITIVE_INFINITY,
    stableAfterMs: 5_000,
  }) as Readonly<ReconnectOptions>,
  queueLimit: 1000,
  authInUrl: false,
  pongTimeoutMs: 10_000,
  /** Used until the server's `connect` frame says otherwise. */
  heartbeatIntervalMs: 25_000,
  requestTimeoutMs: 10_000,
  dedupSize: 2000,
  maxDecompressedBytes: 8 * 1024 * 1024,
  tokenRefreshMarginMs: 30_000,
});

export interface SubscribeConfig {
  /** Exact types or prefix globs (`agent_*`, `*`). */
  events: string[];
  filters?: SubscriptionFilters;
}

export interface SubscriptionInfo {
  /** The id `subscribe()` resolved with; stable across reconnects. */
  id: string;
  /** The server's current id for it (changes when a session could not be resumed). */
  serverId: string | null;
  events: string[];
  filters: SubscriptionFilters | undefined;
}

export type StateListener = (state: ConnectionState, previous: ConnectionState) => void;

// ---- internals --------------------------------------------------------------------

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

type Timer = ReturnType<typeof setTimeout>;

/** One subscription as the application sees it; outlives connections. */
interface SubEntry {
  /** Caller-facing id: the server id of the first successful subscribe. */
  id: string | null;
  events: string[];
  filters: SubscriptionFilters | undefined;
  serverId: string | null;
  /** id of the subscribe request in flight, if any. */
  requestId: string | null;
  /** The subscribe() promise, until it settles. */
  waiter: Deferred<string> | null;
  /** unsubscribe() was called while the subscribe was in flight. */
  removed: boolean;
}

interface PendingRequest {
  kind: 'subscribe' | 'unsubscribe';
  entry?: SubEntry;
  done?: Deferred<void>;
  timer: Timer;
}

interface Credentials {
  token?: string;
  apiKey?: string;
}

/** State of one socket; a reconnect makes a new one, so stale callbacks are easy to spot. */
interface Connection {
  ws: WebSocketLike;
  credentials: Credentials;
  /** Credentials travel in an auth_request (not the URL). */
  inBand: boolean;
  /** The sessionId we asked to resume, if any. */
  resumeFrom: string | null;
  opened: boolean;
  handshakeDone: boolean;
  /** The last `connect` frame seen; authoritative once auth_success arrives. */
  lastConnect: ConnectData | null;
  disconnect: DisconnectData | null;
  httpStatus?: number;
  httpBody?: string;
  errorMessage?: string;
  dead: boolean;
}

const noop = (): void => undefined;

function cloneFilters(filters: SubscriptionFilters | undefined): SubscriptionFilters | undefined {
  if (!filters) return undefined;
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(filters)) {
    if (v !== undefined) out[k] = Array.isArray(v) ? [...v] : v;
  }
  return out as SubscriptionFilters;
}

/** Timers beyond 2^31-1 ms fire immediately in browsers and Node. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Reconnecting client of the AutoSDLC WebSocket gateway.
 *
 * Framework-free: the React hooks in `./react` are a thin adapter over it.
 */
export class AutoSDLCWebSocketClient {
  private readonly config: ClientConfig;
  private readonly reconnectOptions: ReconnectOptions;
  private readonly WS: WebSocketConstructor | undefined;

  private _state: ConnectionState = 'idle';
  private _nextRetryAt: number | null = null;
  private _lastError: AutoSDLCError | null = null;
  private conn: Connection | null = null;
  private attempts = 0;
  private connectCall: Deferred<void> | null = null;
  /** Bumped by every attempt and by close()/stop(), to ignore stale async results. */
  private attemptSeq = 0;

  // Session state that survives reconnects.
  private _sessionId: string | null = null;
  private _lastEventId: string | null = null;
  private _connectionId: string | null = null;
  private _limits: ConnectionLimits | null = null;
  private _auth: AuthSuccessData | null = null;
  private heartbeatMs: number = DEFAULTS.heartbeatIntervalMs;
  private readonly seen: RecentIds;

  private readonly queue: Envelope[] = [];
  private readonly entries = new Set<SubEntry>();
  private readonly byId = new Map<string, SubEntry>();
  private readonly byServerId = new Map<string, SubEntry>();
  private readonly pending = new Map<string, PendingRequest>();
  /** Subscribe requests given up (timed out) whose late reply must be undone. */
  private readonly abandoned = new Set<string>();

  private readonly exact = new Map<string, Set<(env: any) => void>>();
  private readonly globs = new Set<{ pattern: string; handler: (env: any) => void }>();
  private readonly stateListeners = new Set<StateListener>();
  private readonly resetListeners = new Set<(info: ResetInfo) => void>();
  private readonly errorListeners = new Set<(error: AutoSDLCError) => void>();

  private retryTimer: Timer | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private watchdogTimer: Timer | null = null;
  private stableTimer: Timer | null = null;
  private refreshTimer: Timer | null = null;

  /** Serializes inbound work: gzip decoding is async but frames must stay in order. */
  private inboundTail: Promise<void> = Promise.resolve();
  private inboundPending = 0;

  constructor(config: ClientConfig) {
    if (!config || typeof config.url !== 'string' || config.url === '') {
      throw new InvalidArgumentError('config.url is required', 'config');
    }
    this.config = { ...config };
    this.reconnectOptions = { ...DEFAULTS.reconnect, ...stripUndefined(config.reconnect ?? {}) };
    this.WS = config.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    this.seen = new RecentIds(config.dedupSize ?? DEFAULTS.dedupSize);
    if (config.onReset) this.resetListeners.add(config.onReset);
    if (config.onError) this.errorListeners.add(config.onError);
  }

  // ---- public read-only state -----------------------------------------------------

  get state(): ConnectionState {
    return this._state;
  }

  /** When the next reconnect attempt starts (ms since the epoch), while waiting for one. */
  get nextRetryAt(): number | null {
    return this._nextRetryAt;
  }

  /** True when messages go out immediately (authenticated, socket open). */
  get isConnected(): boolean {
    return this._state === 'open' && this.conn !== null && this.conn.ws.readyState === OPEN;
  }

  get sessionId(): string | null {
    return this._sessionId;
  }

  get connectionId(): string | null {
    return this._connectionId;
  }

  /** Id of the last event delivered to the application (sent on reconnect to resume). */
  get lastEventId(): string | null {
    return this._lastEventId;
  }

  get limits(): ConnectionLimits | null {
    return this._limits;
  }

  /** The last `auth_success` data (subject, permissions, expiresAt). */
  get auth(): AuthSuccessData | null {
    return this._auth;
  }

  /** The error that last stopped the client or was reported to onError. */
  get lastError(): AutoSDLCError | null {
    return this._lastError;
  }

  get queuedCount(): number {
    return this.queue.length;
  }

  get subscriptions(): SubscriptionInfo[] {
    const out: SubscriptionInfo[] = [];
    for (const e of this.entries) {
      if (e.id !== null) out.push({ id: e.id, serverId: e.serverId, events: [...e.events], filters: cloneFilters(e.filters) });
    }
    return out;
  }

  // ---- lifecycle --------------------------------------------------------------------

  /**
   * Opens the connection. Resolves once authenticated (`auth_success`), or on
   * `connect` when the client has no credentials. Rejects, without retrying,
   * when the first attempt never opens (HTTP 401/403 at the upgrade, server
   * unreachable), on `auth_failure`, or on a close code that means "stop".
   * Drops after that are retried in the background.
   */
  connect(): Promise<void> {
    if (this._state === 'open') return Promise.resolve();
    if (this.connectCall) return this.connectCall.promise;
    const call = deferred<void>();
    this.connectCall = call;
    if (this._state === 'idle' || this._state === 'closed') {
      if (!this.WS) {
        this.connectCall = null;
        return Promise.reject(
          new InvalidArgumentError(
            'no WebSocket implementation: pass config.WebSocket (e.g. the `ws` package in Node.js)',
            'config',
          ),
        );
      }
      this._lastError = null;
      this.attempts = 0;
      this.setState('connecting');
      this.openSocket();
    }
    return call.promise;
  }

  /**
   * Closes the connection for good: no reconnect, the offline queue and the
   * subscriptions are dropped, pending calls reject with ClientClosedError.
   * `connect()` may be called again afterwards for a fresh session.
   */
  close(code = 1000, reason = ''): void {
    const conn = this.conn;
    this.teardown();
    if (conn) this.abandonSocket(conn, code, reason);
    this.clearTimer('retry');
    this._nextRetryAt = null;
    const err = new ClientClosedError();
    for (const entry of this.entries) entry.waiter?.reject(err);
    this.entries.clear();
    this.byId.clear();
    this.byServerId.clear();
    this.abandoned.clear();
    this.queue.length = 0;
    this._sessionId = null;
    this._lastEventId = null;
    this.attempts = 0;
    const call = this.connectCall;
    this.connectCall = null;
    call?.reject(err);
    this.setState('closed');
  }

  // ---- handlers ----------------------------------------------------------------------

  /**
   * Registers a handler for an exact type (`agent_status`, or a control type
   * such as `error`), a prefix glob of event types (`agent_*`), every event
   * (`*`), or the client's `$reset` notification. Handlers receive the whole
   * envelope.
   */
  on<P extends string>(pattern: P, handler: (envelope: HandlerEnvelope<P>) => void): Unsubscribe {
    if (typeof handler !== 'function') throw new InvalidArgumentError('handler must be a function');
    if (isGlob(pattern)) {
      const reg = { pattern, handler };
      this.globs.add(reg);
      return () => {
        this.globs.delete(reg);
      };
    }
    let set = this.exact.get(pattern);
    if (!set) {
      set = new Set();
      this.exact.set(pattern, set);
    }
    set.add(handler);
    return () => {
      const current = this.exact.get(pattern);
      if (!current) return;
      current.delete(handler);
      if (current.size === 0) this.exact.delete(pattern);
    };
  }

  /** Called on every state change and whenever `nextRetryAt` changes. */
  onStateChange(listener: StateListener): Unsubscribe {
    this.stateListeners.add(listener);
    return () => {
      this.stateListeners.delete(listener);
    };
  }

  /** Called when events may have been missed: the app should refetch its state. */
  onReset(listener: (info: ResetInfo) => void): Unsubscribe {
    this.resetListeners.add(listener);
    return () => {
      this.resetListeners.delete(listener);
    };
  }

  /** Errors that belong to no call: the client stopping, failed re-subscribes, bad frames. */
  onError(listener: (error: AutoSDLCError) => void): Unsubscribe {
    this.errorListeners.add(listener);
    return () => {
      this.errorListeners.delete(listener);
    };
  }

  // ---- messages ------------------------------------------------------------------------

  /**
   * Sends a frame, filling `id`, `timestamp` and `data`. While not connected it
   * is queued (up to `queueLimit`, then QueueFullError) and flushed in order
   * after the next authentication. Returns the envelope as sent.
   */
  send<T extends string, D = Record<string, unknown>>(message: OutgoingMessage<T, D>): Envelope<T, D> {
    if (!message || typeof message.type !== 'string' || message.type === '') {
      throw new InvalidArgumentError('message.type is required');
    }
    const env = {
      ...message,
      id: message.id ?? newId(),
      timestamp: message.timestamp ?? Date.now(),
      data: (message.data ?? {}) as D,
    } as Envelope<T, D>;
    if (this.isConnected) {
      this.write(env as Envelope, true);
    } else {
      const limit = this.config.queueLimit ?? DEFAULTS.queueLimit;
      if (this.queue.length >= limit) throw new QueueFullError(limit);
      if (this._limits) this.checkSize(JSON.stringify(env));
      this.queue.push(env as Envelope);
    }
    return env;
  }

  /** Publishes an event (needs publish permission on the server). */
  publish<T extends string>(type: T, data: Record<string, unknown>): Envelope<T> {
    return this.send({ type, data });
  }

  /**
   * Subscribes; resolves with the subscription id once the server confirms
   * (`subscription_update` active), rejects with ServerError (`code`
   * `forbidden`, `invalid_message`, ...) when refused. Made while disconnected,
   * it is sent after the next authentication. The id stays valid across
   * reconnects even when the server had to issue a new one.
   */
  subscribe(config: SubscribeConfig): Promise<string> {
    if (!config || !Array.isArray(config.events) || config.events.length === 0) {
      return Promise.reject(new InvalidArgumentError('subscribe needs a non-empty events array'));
    }
    if (config.events.some((e) => typeof e !== 'string' || e === '')) {
      return Promise.reject(new InvalidArgumentError('events must be non-empty strings'));
    }
    const entry: SubEntry = {
      id: null,
      events: [...config.events],
      filters: cloneFilters(config.filters),
      serverId: null,
      requestId: null,
      waiter: deferred<string>(),
      removed: false,
    };
    this.entries.add(entry);
    const promise = entry.waiter!.promise;
    if (this.isConnected) this.sendSubscribe(entry);
    return promise;
  }

  /** Ends a subscription. Unknown ids resolve (idempotent). */
  unsubscribe(id: string): Promise<void> {
    const entry = this.byId.get(id);
    if (!entry) return Promise.resolve();
    this.forget(entry);
    if (entry.serverId !== null && this.isConnected) {
      const req = this.send({ type: 'unsubscribe', data: { subscriptionId: entry.serverId } });
      const done = deferred<void>();
      this.track(req.id, { kind: 'unsubscribe', done }, 'unsubscribe');
      return done.promise;
    }
    if (entry.requestId !== null) entry.removed = true;
    return Promise.resolve();
  }

  /**
   * Sends a new credential on the open connection (contract §4.6). Without an
   * argument, asks `getToken`. The server answers auth_success with the new
   * expiry; the next reconnects use the new token too.
   */
  async reauthenticate(token?: string): Promise<void> {
    const fresh = token ?? (this.config.getToken ? await this.config.getToken() : undefined);
    if (!fresh) throw new InvalidArgumentError('reauthenticate needs a token or config.getToken');
    this.config.token = fresh;
    const conn = this.conn;
    if (conn && conn.handshakeDone && this.isConnected) {
      conn.credentials = { token: fresh };
      this.write({ id: newId(), type: 'auth_request', timestamp: Date.now(), data: { token: fresh } }, false);
    }
  }

  // ---- connection attempts ---------------------------------------------------------------

  private credentials(): Credentials | Promise<Credentials> {
    const { getToken, token, apiKey } = this.config;
    if (getToken) {
      const value = getToken();
      if (value && typeof (value as Promise<string>).then === 'function') {
        return Promise.resolve(value).then((t) => ({ token: t }));
      }
      return { token: value as string };
    }
    if (token) return { token };
    if (apiKey) return { apiKey };
    return {};
  }

  private openSocket(): void {
    this.attemptSeq += 1;
    let creds: Credentials | Promise<Credentials>;
    try {
      creds = this.credentials();
    } catch (err) {
      this.onCredentialsFailed(err);
      return;
    }
    if (creds instanceof Promise) {
      const seq = this.attemptSeq;
      creds.then(
        (c) => {
          // close() or a stop happened while we waited.
          if (seq !== this.attemptSeq) return;
          this.createSocket(c);
        },
        (err) => {
          if (seq !== this.attemptSeq) return;
          this.onCredentialsFailed(err);
        },
      );
      return;
    }
    this.createSocket(creds);
  }

  private onCredentialsFailed(err: unknown): void {
    const error = new AuthError('token_provider_failed', 'getToken failed', { cause: err });
    if (this._state === 'connecting') this.stop(error);
    else {
      this.report(error);
      this.scheduleReconnect();
    }
  }

  private buildUrl(creds: Credentials, inBand: boolean): string {
    const url = new URL(this.config.url.replace(/^http(s?):/i, 'ws$1:'));
    const params = url.searchParams;
    if (!inBand) {
      const authInUrl = this.config.authInUrl ?? DEFAULTS.authInUrl;
      if (authInUrl && creds.token) params.set('token', creds.token);
      else if (authInUrl && creds.apiKey) params.set('api_key', creds.apiKey);
      if (this._sessionId) params.set('session_id', this._sessionId);
      if (this._sessionId && this._lastEventId) params.set('last_event_id', this._lastEventId);
      if (this.config.compression === 'gzip') params.set('compression', 'gzip');
    }
    return url.toString();
  }

  private createSocket(creds: Credentials): void {
    const hasCreds = Boolean(creds.token || creds.apiKey);
    const inBand = hasCreds && !(this.config.authInUrl ?? DEFAULTS.authInUrl);
    const url = this.buildUrl(creds, inBand);
    let ws: WebSocketLike;
    try {
      ws = new this.WS!(url, this.config.protocols);
    } catch (err) {
      // A malformed URL: retrying cannot help.
      this.stop(new ConnectError('connect_failed', `cannot open ${this.config.url}`, { cause: err }));
      return;
    }
    const conn: Connection = {
      ws,
      credentials: creds,
      inBand,
      resumeFrom: this._sessionId,
      opened: false,
      handshakeDone: false,
      lastConnect: null,
      disconnect: null,
      dead: false,
    };
    this.conn = conn;
    try {
      ws.binaryType = 'arraybuffer';
    } catch {
      // Some implementations do not allow it; Blob frames are decoded too.
    }
    ws.onopen = () => {
      if (this.isCurrent(conn)) this.handleOpen(conn);
    };
    ws.onmessage = (event: { data: RawFrame }) => {
      if (!this.isCurrent(conn)) return;
      // Anything at all proves the connection alive; reset before decoding.
      this.armWatchdog(conn);
      this.inbound(conn, event.data);
    };
    ws.onerror = (event: { message?: string; error?: { message?: string } }) => {
      const msg = event?.error?.message ?? event?.message;
      if (typeof msg === 'string') conn.errorMessage = msg;
    };
    ws.onclose = (event: { code?: number; reason?: string }) => {
      const code = typeof event?.code === 'number' ? event.code : 1006;
      const reason = typeof event?.reason === 'string' ? event.reason : '';
      // Queued behind frames still being decoded, so they are handled first.
      this.serial(() => this.handleClose(conn, code, reason));
    };
    this.watchUpgradeResponse(conn);
    // Covers a connect that hangs as well as a silent open connection.
    this.armWatchdog(conn);
  }

  /**
   * Node's `ws` reports a refused upgrade as 'unexpected-response' (status
   * and body); browsers hide it behind a 1006 close. Listening means we must
   * abort the handshake ourselves: `terminate()` while CONNECTING makes `ws`
   * emit error + close as usual. (Destroying the request is not enough once
   * its response has ended on a keep-alive connection: no error, no close.)
   */
  private watchUpgradeResponse(conn: Connection): void {
    const emitter = conn.ws as unknown as {
      on?: (event: string, listener: (...args: any[]) => void) => void;
      terminate?: () => void;
    };
    if (typeof emitter.on !== 'function') return;
    emitter.on('unexpected-response', (req: any, res: any) => {
      conn.httpStatus = res?.statusCode;
      let body = '';
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        conn.httpBody = body;
        conn.errorMessage = `Unexpected server response: ${conn.httpStatus}`;
        if (typeof emitter.terminate === 'function') {
          try {
            emitter.terminate.call(conn.ws);
            return;
          } catch {
            // fall through to destroying the request
          }
        }
        req?.destroy?.(new Error(conn.errorMessage));
      };
      if (typeof res?.on !== 'function') return finish();
      res.setEncoding?.('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 4096) body += chunk;
      });
      res.on('end', finish);
      res.on('error', finish);
      res.on('close', finish);
    });
  }

  private isCurrent(conn: Connection): boolean {
    return this.conn === conn && !conn.dead;
  }

  private handleOpen(conn: Connection): void {
    conn.opened = true;
    this.armWatchdog(conn);
    if (conn.inBand) {
      // First frame on the socket, before anything queued.
      const data: Record<string, unknown> = conn.credentials.token
        ? { token: conn.credentials.token }
        : { apiKey: conn.credentials.apiKey };
      if (conn.resumeFrom) {
        data.sessionId = conn.resumeFrom;
        if (this._lastEventId) data.lastEventId = this._lastEventId;
      }
      if (this.config.compression === 'gzip') data.compression = 'gzip';
      this.write({ id: newId(), type: 'auth_request', timestamp: Date.now(), data }, false);
    }
  }

  // ---- inbound -------------------------------------------------------------------------

  private serial(task: () => void | Promise<void>): void {
    const run = () => {
      try {
        return task();
      } catch (err) {
        this.report(asClientError(err));
        return undefined;
      }
    };
    const done = () => {
      this.inboundPending -= 1;
    };
    if (this.inboundPending === 0) {
      // Fast path: nothing is being decoded, so handle synchronously.
      const result = run();
      if (result && typeof (result as Promise<void>).then === 'function') {
        this.inboundPending += 1;
        this.inboundTail = (result as Promise<void>).then(done, (err) => {
          done();
          this.report(asClientError(err));
        });
      }
      return;
    }
    this.inboundPending += 1;
    this.inboundTail = this.inboundTail.then(run).then(done, (err) => {
      done();
      this.report(asClientError(err));
    });
  }

  private inbound(conn: Connection, raw: RawFrame): void {
    this.serial(() => {
      if (isTextFrame(raw)) {
        this.handleText(conn, raw);
        return undefined;
      }
      const max = this.config.maxDecompressedBytes ?? DEFAULTS.maxDecompressedBytes;
      return binaryFrameToText(raw, max).then(
        (text) => this.handleText(conn, text),
        (err) => this.report(asClientError(err)),
      );
    });
  }

  private handleText(conn: Connection, text: string): void {
    if (!this.isCurrent(conn)) return;
    let env: Envelope;
    try {
      env = parseEnvelope(text);
    } catch (err) {
      this.report(asClientError(err));
      return;
    }
    this.handleFrame(conn, env);
  }

  private handleFrame(conn: Connection, env: Envelope): void {
    const correlationId = typeof env.metadata?.correlationId === 'string' ? env.metadata.correlationId : undefined;
    switch (env.type) {
      case 'connect': {
        conn.lastConnect = env.data as unknown as ConnectData;
        const hb = conn.lastConnect.heartbeatInterval;
        if (typeof hb === 'number' && hb > 0) this.heartbeatMs = hb;
        this.armWatchdog(conn);
        const hasCreds = Boolean(conn.credentials.token || conn.credentials.apiKey);
        if (!hasCreds && !conn.handshakeDone) this.completeHandshake(conn, null);
        break;
      }
      case 'auth_success': {
        const data = env.data as unknown as AuthSuccessData;
        if (!conn.handshakeDone) this.completeHandshake(conn, data);
        else {
          // Answer to an in-band token refresh.
          this._auth = data;
          this.scheduleTokenRefresh(conn);
        }
        break;
      }
      case 'auth_failure': {
        const data = env.data as { code?: unknown; message?: unknown };
        const error = new AuthError(
          typeof data.code === 'string' ? data.code : 'auth_failed',
          typeof data.message === 'string' ? data.message : 'authentication failed',
        );
        if (!conn.handshakeDone) {
          // A bad credential will not get better by retrying it.
          this.abandonSocket(conn, 1000, 'authentication failed');
          this.teardown();
          this.stop(error);
        } else {
          this.report(error);
        }
        break;
      }
      case 'subscription_update':
        this.handleSubscriptionUpdate(env.data as unknown as SubscriptionUpdateData, correlationId);
        break;
      case 'error':
        this.handleError(env, correlationId);
        break;
      case 'ping':
        if (this.isConnected) {
          this.write({ id: newId(), type: 'pong', timestamp: Date.now(), data: {}, metadata: { correlationId: env.id } }, false);
        }
        break;
      case 'disconnect':
        conn.disconnect = env.data as unknown as DisconnectData;
        break;
      default:
        if (isEventType(env.type)) {
          this.deliverEvent(env);
          return;
        }
    }
    this.dispatch(env);
  }

  private deliverEvent(env: Envelope): void {
    if (typeof env.id === 'string' && env.id !== '') {
      if (!this.seen.add(env.id)) return;
      this._lastEventId = env.id;
    }
    this.dispatch(env);
  }

  private dispatch(env: Envelope): void {
    const exact = this.exact.get(env.type);
    if (exact) for (const handler of [...exact]) this.callHandler(handler, env);
    if (this.globs.size > 0 && isEventType(env.type)) {
      for (const reg of [...this.globs]) {
        if (globMatches(reg.pattern, env.type)) this.callHandler(reg.handler, env);
      }
    }
  }

  private callHandler(handler: (env: any) => void, env: Envelope): void {
    try {
      handler(env);
    } catch (err) {
      // One broken handler must not starve the others or kill the connection.
      this.report(new AutoSDLCError('handler_error', `handler for ${env.type} threw`, { cause: err }));
    }
  }

  private handleSubscriptionUpdate(data: SubscriptionUpdateData, correlationId: string | undefined): void {
    const pending = correlationId !== undefined ? this.pending.get(correlationId) : undefined;
    if (pending && correlationId !== undefined) {
      this.untrack(correlationId);
      if (pending.kind === 'subscribe' && pending.entry) {
        this.onSubscribed(pending.entry, data.subscriptionId);
      } else {
        pending.done?.resolve();
      }
      return;
    }
    if (correlationId !== undefined && this.abandoned.delete(correlationId) && data.status === 'active') {
      this.sendUnsubscribe(data.subscriptionId);
      return;
    }
    const entry = this.byServerId.get(data.subscriptionId);
    switch (data.status) {
      case 'resumed':
      case 'reset':
        if (!entry) {
          // A subscription the server kept but we no longer want (unsubscribed
          // while offline, or a subscribe whose reply was lost and was re-sent).
          this.sendUnsubscribe(data.subscriptionId);
          return;
        }
        if (data.status === 'reset') this.emitReset('history_lost', entry.id ? [entry.id] : [], this._sessionId);
        break;
      case 'removed':
        if (entry) this.forget(entry);
        break;
      default:
        break;
    }
  }

  private onSubscribed(entry: SubEntry, serverId: string): void {
    entry.requestId = null;
    if (entry.removed || !this.entries.has(entry)) {
      // unsubscribe() came while the request was in flight.
      this.sendUnsubscribe(serverId);
      return;
    }
    entry.serverId = serverId;
    this.byServerId.set(serverId, entry);
    if (entry.id === null) {
      entry.id = serverId;
      this.byId.set(serverId, entry);
    }
    const waiter = entry.waiter;
    entry.waiter = null;
    waiter?.resolve(entry.id);
  }

  private handleError(env: Envelope, correlationId: string | undefined): void {
    const error = new ServerError(env);
    const pending = correlationId !== undefined ? this.pending.get(correlationId) : undefined;
    if (!pending || correlationId === undefined) {
      // Belongs to no call we track (e.g. a refused publish): onError and
      // on('error') handlers both see it.
      this.report(error);
      return;
    }
    this.untrack(correlationId);
    if (pending.kind === 'subscribe' && pending.entry) {
      const entry = pending.entry;
      this.forget(entry);
      if (entry.waiter) {
        entry.waiter.reject(error);
        entry.waiter = null;
      } else {
        // A re-subscribe after reconnect was refused (permissions changed).
        this.report(error);
      }
    } else if (error.code === 'not_found') {
      pending.done?.resolve();
    } else {
      pending.done?.reject(error);
    }
  }

  // ---- handshake and reconnect ---------------------------------------------------------

  private completeHandshake(conn: Connection, auth: AuthSuccessData | null): void {
    conn.handshakeDone = true;
    const info = conn.lastConnect;
    const previousSession = conn.resumeFrom;
    const resumed = Boolean(info?.resumed) && previousSession !== null;
    if (info) {
      if (typeof info.sessionId === 'string') this._sessionId = info.sessionId;
      if (typeof info.connectionId === 'string') this._connectionId = info.connectionId;
      this._limits = info.limits && typeof info.limits === 'object' ? info.limits : null;
    }
    this._auth = auth;

    const lostIds: string[] = [];
    if (!resumed) {
      // The server forgot our subscriptions: every one gets re-sent and a new server id.
      for (const entry of this.entries) {
        if (entry.serverId !== null) {
          this.byServerId.delete(entry.serverId);
          entry.serverId = null;
          if (entry.id !== null) lostIds.push(entry.id);
        }
      }
    }

    this._nextRetryAt = null;
    this.setState('open');
    this.startPing(conn);
    this.setTimer('stable', () => {
      this.attempts = 0;
    }, this.reconnectOptions.stableAfterMs);
    this.scheduleTokenRefresh(conn);

    for (const entry of this.entries) {
      if (entry.serverId === null) this.sendSubscribe(entry);
    }
    this.flushQueue();

    if (!resumed && previousSession !== null) {
      this.emitReset('session_not_resumed', lostIds, previousSession);
    }
    const call = this.connectCall;
    this.connectCall = null;
    call?.resolve();
  }

  private handleClose(conn: Connection, code: number, reason: string): void {
    if (!this.isCurrent(conn)) return;
    const wasInitial = this._state === 'connecting';
    this.teardown();

    if (!conn.opened) {
      const status = conn.httpStatus ?? parseStatus(conn.errorMessage);
      if (status === 401 || status === 403) {
        this.stop(
          new ConnectError(status === 401 ? 'unauthorized' : 'forbidden', `upgrade refused with HTTP ${status}`, {
            statusCode: status,
            closeCode: code,
            serverCode: parseServerCode(conn.httpBody),
          }),
        );
        return;
      }
      if (wasInitial) {
        // Browsers cannot tell "401" from "unreachable": either way the first
        // connect() fails instead of retrying in the background.
        this.stop(
          new ConnectError('connect_failed', `could not connect to ${this.config.url} (close ${code})`, {
            statusCode: status,
            closeCode: code,
          }),
        );
        return;
      }
      this.scheduleReconnect();
      return;
    }

    if (conn.disconnect && conn.disconnect.reconnect === false) {
      this.stop(new ConnectionClosedError(code, conn.disconnect.reason ?? reason, 'server_disconnect'));
      return;
    }
    const action = closeAction(code);
    if (action === 'stop' || (action === 'refresh' && !this.config.getToken)) {
      this.stop(new ConnectionClosedError(code, reason));
      return;
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const { maxAttempts } = this.reconnectOptions;
    if (this.attempts >= maxAttempts) {
      this.stop(new ReconnectFailedError(this.attempts));
      return;
    }
    const delay = backoffDelay(this.attempts, this.reconnectOptions);
    this.attempts += 1;
    this._nextRetryAt = Date.now() + delay;
    this.setState('reconnecting', true);
    this.setTimer('retry', () => {
      this._nextRetryAt = null;
      this.emitState(this._state);
      this.openSocket();
    }, delay);
  }

  /** Ends the connection attempts: state `closed`, reported, pending calls settled. */
  private stop(error: AutoSDLCError | null): void {
    const conn = this.conn;
    this.teardown();
    if (conn) this.abandonSocket(conn, 1000, '');
    this.clearTimer('retry');
    this._nextRetryAt = null;
    // Subscriptions that never got an id reject; established ones are kept and
    // restored if the app calls connect() again (say, with a new token).
    const err = error ?? new ClientClosedError();
    for (const entry of [...this.entries]) {
      if (entry.id === null) {
        this.forget(entry);
        entry.waiter?.reject(err);
        entry.waiter = null;
      }
    }
    if (error) this.report(error);
    const call = this.connectCall;
    this.connectCall = null;
    call?.reject(err);
    this.setState('closed');
  }

  /** Drops everything tied to the current socket. */
  private teardown(): void {
    this.attemptSeq += 1;
    const conn = this.conn;
    this.conn = null;
    if (conn) conn.dead = true;
    this.clearTimer('ping');
    this.clearTimer('watchdog');
    this.clearTimer('stable');
    this.clearTimer('refresh');
    for (const [id, req] of this.pending) {
      clearTimeout(req.timer);
      this.pending.delete(id);
      if (req.kind === 'subscribe' && req.entry) req.entry.requestId = null;
      // The subscription is gone from our side; whatever the server kept is
      // unsubscribed when it reports it as resumed.
      req.done?.resolve();
    }
  }

  /** Stops listening to a socket and closes it, without waiting for its close event. */
  private abandonSocket(conn: Connection, code: number, reason: string): void {
    const ws = conn.ws;
    // No-ops, not null: Node's `ws` throws on an 'error' nobody listens to.
    ws.onopen = noop;
    ws.onmessage = noop;
    ws.onclose = noop;
    ws.onerror = noop;
    try {
      const terminate = (ws as unknown as { terminate?: () => void }).terminate;
      if (code === 4000 && typeof terminate === 'function') terminate.call(ws);
      else ws.close(code, reason);
    } catch {
      // Already closed, or an implementation that refuses the code.
    }
  }

  // ---- heartbeat and token refresh -------------------------------------------------------

  private armWatchdog(conn: Connection): void {
    const timeout = this.heartbeatMs + (this.config.pongTimeoutMs ?? DEFAULTS.pongTimeoutMs);
    this.setTimer('watchdog', () => {
      // Nothing arrived (not even our pongs): the network dropped without a
      // close. Do not wait for the closing handshake of a dead link: detach,
      // close, and handle it as an abnormal close (1006) right away.
      this.serial(() => {
        if (!this.isCurrent(conn)) return;
        this.abandonSocket(conn, 4000, 'heartbeat timeout');
        this.handleClose(conn, 1006, 'heartbeat timeout');
      });
    }, timeout);
  }

  private startPing(conn: Connection): void {
    this.clearTimer('ping');
    // Browsers cannot see WebSocket ping frames, so liveness is checked with
    // application pings that the server answers with pong.
    this.pingTimer = setInterval(() => {
      if (!this.isCurrent(conn) || !this.isConnected) return;
      this.write({ id: newId(), type: 'ping', timestamp: Date.now(), data: {} }, false);
    }, this.heartbeatMs);
  }

  private scheduleTokenRefresh(conn: Connection): void {
    this.clearTimer('refresh');
    const expiresAt = this._auth?.expiresAt;
    if (!this.config.getToken || typeof expiresAt !== 'number' || !conn.credentials.token) return;
    const left = expiresAt - Date.now();
    const margin = this.config.tokenRefreshMarginMs ?? DEFAULTS.tokenRefreshMarginMs;
    // Never refresh in a tight loop when the server grants short-lived tokens.
    const delay = Math.min(MAX_TIMER_MS, Math.max(1000, left - margin, left / 2));
    this.setTimer('refresh', () => {
      if (!this.isCurrent(conn)) return;
      this.reauthenticate().catch((err) =>
        this.report(new AuthError('token_provider_failed', 'token refresh failed', { cause: err })),
      );
    }, delay);
  }

  // ---- outbound ---------------------------------------------------------------------------

  private sendSubscribe(entry: SubEntry): void {
    const data: Record<string, unknown> = { events: [...entry.events] };
    if (entry.filters) data.filters = cloneFilters(entry.filters);
    const env: Envelope = { id: newId(), type: 'subscribe', timestamp: Date.now(), data };
    entry.requestId = env.id;
    this.track(env.id, { kind: 'subscribe', entry }, 'subscribe');
    this.write(env, false);
  }

  private sendUnsubscribe(serverId: string): void {
    if (!this.isConnected) return;
    this.write({ id: newId(), type: 'unsubscribe', timestamp: Date.now(), data: { subscriptionId: serverId } }, false);
  }

  private track(id: string, req: Omit<PendingRequest, 'timer'>, what: string): void {
    const ms = this.config.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs;
    const timer = setTimeout(() => {
      const current = this.pending.get(id);
      if (!current) return;
      this.pending.delete(id);
      const error = new RequestTimeoutError(what, ms);
      if (current.kind === 'subscribe' && current.entry) {
        const entry = current.entry;
        this.forget(entry);
        // Undo the subscription if the reply turns up after all.
        this.abandoned.add(id);
        if (this.abandoned.size > 100) this.abandoned.delete(this.abandoned.values().next().value as string);
        if (entry.waiter) entry.waiter.reject(error);
        else this.report(error);
        entry.waiter = null;
      } else {
        current.done?.reject(error);
      }
    }, ms);
    this.pending.set(id, { ...req, timer });
  }

  private untrack(id: string): void {
    const req = this.pending.get(id);
    if (!req) return;
    clearTimeout(req.timer);
    this.pending.delete(id);
  }

  /** Removes a subscription from the registry (not from the server). */
  private forget(entry: SubEntry): void {
    this.entries.delete(entry);
    if (entry.id !== null) this.byId.delete(entry.id);
    if (entry.serverId !== null) this.byServerId.delete(entry.serverId);
  }

  private checkSize(text: string): void {
    const max = this._limits?.maxFrameBytes;
    if (typeof max !== 'number') return;
    const size = byteLength(text);
    // Sending it would get us closed with 1009, which stops the client.
    if (size > max) throw new FrameTooLargeError(size, max);
  }

  private write(env: Envelope, throwOnTooLarge: boolean): void {
    const conn = this.conn;
    if (!conn) return;
    const text = JSON.stringify(env);
    try {
      this.checkSize(text);
    } catch (err) {
      if (throwOnTooLarge) throw err;
      this.report(asClientError(err));
      return;
    }
    conn.ws.send(text);
  }

  private flushQueue(): void {
    while (this.queue.length > 0 && this.isConnected) {
      const env = this.queue.shift()!;
      this.write(env, false);
    }
  }

  // ---- notifications ---------------------------------------------------------------------

  private emitReset(reason: ResetReason, subscriptionIds: string[], previousSessionId: string | null): void {
    const data: ResetData = {
      reason,
      sessionId: this._sessionId,
      previousSessionId,
      subscriptionIds,
    };
    const env: ResetEnvelope = { id: newId(), type: RESET_TYPE, timestamp: Date.now(), data };
    for (const listener of [...this.resetListeners]) {
      try {
        listener({ ...data });
      } catch (err) {
        this.report(new AutoSDLCError('handler_error', 'onReset listener threw', { cause: err }));
      }
    }
    this.dispatch(env as unknown as Envelope);
  }

  private report(error: AutoSDLCError): void {
    this._lastError = error;
    if (this.errorListeners.size === 0) {
      if (error.code === 'handler_error') console.error(error, error.cause);
      return;
    }
    for (const listener of [...this.errorListeners]) {
      try {
        listener(error);
      } catch (err) {
        console.error(err);
      }
    }
  }

  private setState(next: ConnectionState, force = false): void {
    const previous = this._state;
    if (previous === next && !force) return;
    this._state = next;
    this.emitState(previous);
  }

  private emitState(previous: ConnectionState): void {
    for (const listener of [...this.stateListeners]) {
      try {
        listener(this._state, previous);
      } catch (err) {
        this.report(new AutoSDLCError('handler_error', 'onStateChange listener threw', { cause: err }));
      }
    }
  }

  // ---- timers ------------------------------------------------------------------------------

  private setTimer(name: 'retry' | 'watchdog' | 'stable' | 'refresh', fn: () => void, ms: number): void {
    this.clearTimer(name);
    const timer = setTimeout(() => {
      this.assignTimer(name, null);
      fn();
    }, Math.min(ms, MAX_TIMER_MS));
    this.assignTimer(name, timer);
  }

  private assignTimer(name: 'retry' | 'watchdog' | 'stable' | 'refresh', timer: Timer | null): void {
    if (name === 'retry') this.retryTimer = timer;
    else if (name === 'watchdog') this.watchdogTimer = timer;
    else if (name === 'stable') this.stableTimer = timer;
    else this.refreshTimer = timer;
  }

  private clearTimer(name: 'retry' | 'watchdog' | 'stable' | 'refresh' | 'ping'): void {
    if (name === 'ping') {
      if (this.pingTimer !== null) clearInterval(this.pingTimer);
      this.pingTimer = null;
      return;
    }
    const timer =
      name === 'retry'
        ? this.retryTimer
        : name === 'watchdog'
          ? this.watchdogTimer
          : name === 'stable'
            ? this.stableTimer
            : this.refreshTimer;
    if (timer !== null) clearTimeout(timer);
    this.assignTimer(name, null);
  }
}

function stripUndefined<T extends object>(obj: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

function asClientError(err: unknown): AutoSDLCError {
  if (err instanceof AutoSDLCError) return err;
  return new ProtocolError('internal', err instanceof Error ? err.message : String(err), { cause: err });
}

function parseStatus(message: string | undefined): number | undefined {
  const match = message ? /Unexpected server response: (\d{3})/.exec(message) : null;
  return match ? Number(match[1]) : undefined;
}

function parseServerCode(body: string | undefined): string | undefined {
  if (!body) return undefined;
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown } };
    return typeof parsed.error?.code === 'string' ? parsed.error.code : undefined;
  } catch {
    return undefined;
  }
}
