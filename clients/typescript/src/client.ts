/**
 * The reconnecting client: it composes the parts (subscription registry,
 * request tracker, handler registry, offline queue, named timers, transport
 * helpers) and holds the connection's lifecycle. Each part has one job and
 * its own file; this class decides what happens when a frame, a close or a
 * timer arrives.
 */
import { backoffDelay } from './backoff.js';
import { closeOutcome } from './close-codes.js';
import {
  DEFAULTS,
  reconnectOptions,
  type ClientConfig,
  type ReconnectOptions,
  type ResetInfo,
  type StateListener,
  type SubscribeConfig,
  type SubscriptionInfo,
} from './config.js';
import { startAttempt, type Connection } from './connection.js';
import { deferred, type Deferred } from './deferred.js';
import {
  AuthError,
  AutoSDLCError,
  ClientClosedError,
  ConnectError,
  InvalidArgumentError,
  ReconnectFailedError,
  ServerError,
} from './errors.js';
import { HandlerRegistry } from './handlers.js';
import { authRequestData, hasCredentials } from './handshake.js';
import { newId } from './ids.js';
import { Keepalive } from './keepalive.js';
import { asClientError, InboundSerializer } from './inbound.js';
import { ClientNotifier } from './notifier.js';
import { Outbox } from './outbox.js';
import { ClientSession } from './session.js';
import { SubscriptionManager, subscribeConfigProblem, type SubscriptionHandle } from './subscription-manager.js';
import { NamedTimers } from './timers.js';
import { detachSocket, serverCodeFromBody, SOCKET_OPEN, statusFromMessage } from './transport.js';
import type { SocketEnding, WebSocketConstructor, WebSocketLike } from './transport.js';
import {
  isEventType,
  RESET_TYPE,
  type AuthSuccessData,
  type ConnectData,
  type ConnectionLimits,
  type ConnectionState,
  type DisconnectData,
  type Envelope,
  type EventHandler,
  type OutgoingMessage,
  type ResetData,
  type ResetEnvelope,
  type ResetReason,
  type SubscriptionUpdateData,
  type Unsubscribe,
} from './types.js';

export { DEFAULTS, type ClientConfig, type ReconnectOptions, type ResetInfo, type StateListener };
export type { SubscribeConfig, SubscriptionHandle, SubscriptionInfo, WebSocketConstructor, WebSocketLike };

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
  private conn: Connection | null = null;
  private attempts = 0;
  private connectCall: Deferred<void> | null = null;
  /** Bumped by every attempt and by close()/stop(), to ignore stale async results. */
  private attemptSeq = 0;

  private readonly session: ClientSession;
  private readonly outbox: Outbox;
  private readonly subs: SubscriptionManager;
  private readonly notifier = new ClientNotifier();
  private readonly handlers = new HandlerRegistry((error) => this.report(error));
  private readonly timers = new NamedTimers();
  private readonly keepalive: Keepalive;
  private readonly inboundOrder = new InboundSerializer((error) => this.report(error));

  constructor(config: ClientConfig) {
    if (!config || typeof config.url !== 'string' || config.url === '') {
      throw new InvalidArgumentError('config.url is required', 'config');
    }
    this.config = { ...config };
    this.reconnectOptions = reconnectOptions(config.reconnect);
    this.WS = config.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    this.session = new ClientSession(config.dedupSize ?? DEFAULTS.dedupSize);
    this.outbox = new Outbox(config.queueLimit ?? DEFAULTS.queueLimit, {
      socket: () => this.conn?.ws ?? null,
      isConnected: () => this.isConnected,
      maxFrameBytes: () => this.session.limits?.maxFrameBytes,
      report: (error) => this.report(error),
    });
    this.subs = new SubscriptionManager(config.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs, {
      isConnected: () => this.isConnected,
      writeControl: (type, data) => this.outbox.control(type, data),
      report: (error) => this.report(error),
      historyLost: (ids) => this.emitReset('history_lost', ids, this.session.sessionId),
    });
    this.keepalive = new Keepalive(
      this.timers,
      config.pongTimeoutMs ?? DEFAULTS.pongTimeoutMs,
      config.tokenRefreshMarginMs ?? DEFAULTS.tokenRefreshMarginMs,
    );
    if (config.onReset) this.notifier.onReset(config.onReset);
    if (config.onError) this.notifier.onError(config.onError);
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
    return this._state === 'open' && this.conn !== null && this.conn.ws.readyState === SOCKET_OPEN;
  }

  get sessionId(): string | null {
    return this.session.sessionId;
  }

  get connectionId(): string | null {
    return this.session.connectionId;
  }

  /** Id of the last event delivered to the application (sent on reconnect to resume). */
  get lastEventId(): string | null {
    return this.session.lastEventId;
  }

  get limits(): ConnectionLimits | null {
    return this.session.limits;
  }

  /** The last `auth_success` data (subject, permissions, expiresAt). */
  get auth(): AuthSuccessData | null {
    return this.session.auth;
  }

  /** The error that last stopped the client or was reported to onError. */
  get lastError(): AutoSDLCError | null {
    return this.notifier.lastError;
  }

  get queuedCount(): number {
    return this.outbox.queued;
  }

  get subscriptions(): SubscriptionInfo[] {
    return this.subs.infos();
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
      this.notifier.lastError = null;
      this.attempts = 0;
      this.setState('connecting');
      this.openSocket();
    }
    return call.promise;
  }

  /**
   * Closes the connection for good: no reconnect, the offline queue and the
   * subscriptions are dropped, pending calls reject with ClientClosedError.
   * `code` and `reason` go to the server as they are, whatever the code.
   * `connect()` may be called again afterwards for a fresh session.
   */
  close(code = 1000, reason = ''): void {
    this.endSocket({ kind: 'close', code, reason });
    this.timers.clear('retry');
    this._nextRetryAt = null;
    const err = new ClientClosedError();
    this.subs.clear(err);
    this.outbox.clear();
    this.session.forget();
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
  on<P extends string>(pattern: P, handler: EventHandler<P>): Unsubscribe {
    if (typeof handler !== 'function') throw new InvalidArgumentError('handler must be a function');
    return this.handlers.add(pattern, handler);
  }

  /** Called on every state change and whenever `nextRetryAt` changes. */
  onStateChange(listener: StateListener): Unsubscribe {
    return this.notifier.onStateChange(listener);
  }

  /** Called when events may have been missed: the app should refetch its state. */
  onReset(listener: (info: ResetInfo) => void): Unsubscribe {
    return this.notifier.onReset(listener);
  }

  /** Errors that belong to no call: the client stopping, failed re-subscribes, bad frames. */
  onError(listener: (error: AutoSDLCError) => void): Unsubscribe {
    return this.notifier.onError(listener);
  }

  // ---- messages ------------------------------------------------------------------------

  /**
   * The design document's `send(message): Promise<void>`: fills `id`,
   * `timestamp` and `data`; resolves once handed to the socket, or queued
   * while not connected (flushed in order after the next authentication).
   * Rejects, sending and queueing nothing, with what `Outbox.sendMessage`
   * throws. The server's later answer (say, `forbidden`) goes to onError.
   */
  send<T extends string, D = Record<string, unknown>>(message: OutgoingMessage<T, D>): Promise<void> {
    try {
      this.outbox.sendMessage(message);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(asClientError(err));
    }
  }

  /** Publishes an event and returns the envelope as sent; synchronous: throws what `send()` rejects with. */
  publish<T extends string>(type: T, data: Record<string, unknown>): Envelope<T> {
    return this.outbox.sendMessage({ type, data });
  }

  /**
   * Subscribes; resolves with the subscription id once the server confirms
   * (`subscription_update` active), rejects with ServerError (`code`
   * `forbidden`, `invalid_message`, ...) when refused. Made while disconnected,
   * it is sent after the next authentication. The id stays valid across
   * reconnects even when the server had to issue a new one.
   */
  subscribe(config: SubscribeConfig): Promise<string> {
    const invalid = subscribeConfigProblem(config);
    if (invalid) return Promise.reject(invalid);
    return this.subs.add(config).waiter!.promise;
  }

  /**
   * Subscribes like `subscribe()`, and returns a handle whose status
   * (pending, active, error, removed) can be watched as it changes: across
   * reconnects, re-subscribes and refusals. Throws InvalidArgumentError for
   * an empty or malformed `events`.
   */
  createSubscription(config: SubscribeConfig): SubscriptionHandle {
    const invalid = subscribeConfigProblem(config);
    if (invalid) throw invalid;
    return this.subs.addWithHandle(config);
  }

  /** Ends a subscription. Unknown ids resolve (idempotent). */
  unsubscribe(id: string): Promise<void> {
    const entry = this.subs.get(id);
    return entry ? this.subs.end(entry) : Promise.resolve();
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
      this.outbox.control('auth_request', { token: fresh });
    }
  }

  // ---- connection attempts ---------------------------------------------------------------

  private openSocket(): void {
    this.attemptSeq += 1;
    const seq = this.attemptSeq;
    startAttempt({
      config: this.config,
      WebSocket: this.WS!,
      resume: this.session.resumePoint(),
      inbound: this.inboundOrder,
      isStale: () => seq !== this.attemptSeq,
      credentialsFailed: (err) => {
        const error = new AuthError('token_provider_failed', 'getToken failed', { cause: err });
        if (this._state === 'connecting') this.stop(error);
        else {
          this.report(error);
          this.scheduleReconnect();
        }
      },
      cannotOpen: (err) => this.stop(new ConnectError('connect_failed', `cannot open ${this.config.url}`, { cause: err })),
      started: (conn) => {
        this.conn = conn;
        // Covers a connect that hangs as well as a silent open connection.
        this.armWatchdog(conn);
      },
      events: {
        open: (c) => {
          if (this.isCurrent(c)) this.handleOpen(c);
        },
        activity: (c) => {
          if (this.isCurrent(c)) this.armWatchdog(c);
        },
        envelope: (c, env) => {
          if (this.isCurrent(c)) this.handleFrame(c, env);
        },
        close: (c, code, reason) => this.handleClose(c, code, reason),
        badFrame: (error) => this.report(error),
      },
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
      const resume = { sessionId: conn.resumeFrom, lastEventId: this.session.lastEventId };
      this.outbox.control('auth_request', authRequestData(conn.credentials, resume, this.config.compression));
    }
  }

  // ---- inbound -------------------------------------------------------------------------

  private handleFrame(conn: Connection, env: Envelope): void {
    const correlationId = typeof env.metadata?.correlationId === 'string' ? env.metadata.correlationId : undefined;
    switch (env.type) {
      case 'connect': {
        conn.lastConnect = env.data as unknown as ConnectData;
        this.session.sawConnect(conn.lastConnect);
        this.armWatchdog(conn);
        if (!hasCredentials(conn.credentials) && !conn.handshakeDone) this.completeHandshake(conn, null);
        break;
      }
      case 'auth_success': {
        const data = env.data as unknown as AuthSuccessData;
        if (!conn.handshakeDone) this.completeHandshake(conn, data);
        else {
          // Answer to an in-band token refresh.
          this.session.auth = data;
          this.scheduleTokenRefresh(conn);
        }
        break;
      }
      case 'auth_failure':
        this.handleAuthFailure(conn, env.data as { code?: unknown; message?: unknown });
        break;
      case 'subscription_update':
        this.subs.onUpdate(env.data as unknown as SubscriptionUpdateData, correlationId);
        break;
      case 'error': {
        // Not an answer to one of our requests (e.g. a refused publish):
        // onError and on('error') handlers both see it.
        const error = new ServerError(env);
        if (!this.subs.onError(error, correlationId)) this.report(error);
        break;
      }
      case 'ping':
        if (this.isConnected) this.outbox.control('pong', {}, { correlationId: env.id });
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
    this.handlers.dispatch(env);
  }

  private handleAuthFailure(conn: Connection, data: { code?: unknown; message?: unknown }): void {
    const error = new AuthError(
      typeof data.code === 'string' ? data.code : 'auth_failed',
      typeof data.message === 'string' ? data.message : 'authentication failed',
    );
    if (conn.handshakeDone) {
      this.report(error);
      return;
    }
    // A bad credential will not get better by retrying it.
    this.endSocket({ kind: 'close', code: 1000, reason: 'authentication failed' });
    this.stop(error);
  }

  private deliverEvent(env: Envelope): void {
    if (this.session.accept(env)) this.handlers.dispatch(env);
  }

  // ---- handshake and reconnect ---------------------------------------------------------

  private completeHandshake(conn: Connection, auth: AuthSuccessData | null): void {
    conn.handshakeDone = true;
    const info = conn.lastConnect;
    const previousSession = conn.resumeFrom;
    const resumed = Boolean(info?.resumed) && previousSession !== null;
    this.session.established(info, auth);
    // The server forgot our subscriptions: every one gets re-sent and a new server id.
    const lostIds = resumed ? [] : this.subs.serverForgot();

    this._nextRetryAt = null;
    this.setState('open');
    this.keepalive.startPings(this.session.heartbeatMs, () => {
      if (this.isCurrent(conn) && this.isConnected) this.outbox.control('ping', {});
    });
    this.timers.once('stable', () => {
      this.attempts = 0;
    }, this.reconnectOptions.stableAfterMs);
    this.scheduleTokenRefresh(conn);

    this.subs.sendUnconfirmed();
    this.outbox.flush();

    if (!resumed && previousSession !== null) {
      this.emitReset('session_not_resumed', lostIds, previousSession);
    }
    const call = this.connectCall;
    this.connectCall = null;
    call?.resolve();
  }

  private handleClose(conn: Connection, code: number, reason: string): void {
    if (!this.isCurrent(conn)) return;
    const initial = this._state === 'connecting';
    this.teardown();
    const outcome = closeOutcome({
      code,
      reason,
      opened: conn.opened,
      initial,
      httpStatus: conn.refusal.status ?? statusFromMessage(conn.errorMessage),
      serverCode: serverCodeFromBody(conn.refusal.body),
      disconnect: conn.disconnect,
      canRefreshToken: Boolean(this.config.getToken),
      url: this.config.url,
    });
    if (outcome.action === 'stop') this.stop(outcome.error);
    else this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.attempts >= this.reconnectOptions.maxAttempts) {
      this.stop(new ReconnectFailedError(this.attempts));
      return;
    }
    const delay = backoffDelay(this.attempts, this.reconnectOptions);
    this.attempts += 1;
    this._nextRetryAt = Date.now() + delay;
    this.setState('reconnecting', true);
    this.timers.once('retry', () => {
      this._nextRetryAt = null;
      this.emitState(this._state);
      this.openSocket();
    }, delay);
  }

  /** Ends the connection attempts: state `closed`, reported, pending calls settled. */
  private stop(error: AutoSDLCError | null): void {
    this.endSocket({ kind: 'close', code: 1000, reason: '' });
    this.timers.clear('retry');
    this._nextRetryAt = null;
    // Subscriptions that never got an id reject; established ones are kept and
    // restored if the app calls connect() again (say, with a new token).
    const err = error ?? new ClientClosedError();
    this.subs.failUnconfirmedIds(err);
    if (error) this.report(error);
    const call = this.connectCall;
    this.connectCall = null;
    call?.reject(err);
    this.setState('closed');
  }

  /** Lets go of the current socket (if any) and everything tied to it. */
  private endSocket(ending: SocketEnding): void {
    const conn = this.conn;
    this.teardown();
    if (conn) detachSocket(conn.ws, ending);
  }

  /** Drops everything tied to the current socket. */
  private teardown(): void {
    this.attemptSeq += 1;
    const conn = this.conn;
    this.conn = null;
    if (conn) conn.dead = true;
    this.timers.clear('ping', 'watchdog', 'stable', 'refresh');
    this.subs.socketGone();
  }

  // ---- heartbeat and token refresh -------------------------------------------------------

  private armWatchdog(conn: Connection): void {
    // Nothing arrived (not even our pongs): the network dropped without a
    // close. Do not wait for the closing handshake of a dead link: drop it,
    // and handle it as an abnormal close (1006) right away.
    this.keepalive.alive(this.session.heartbeatMs, () =>
      this.inboundOrder.run(() => {
        if (!this.isCurrent(conn)) return;
        detachSocket(conn.ws, { kind: 'drop', reason: 'heartbeat timeout' });
        this.handleClose(conn, 1006, 'heartbeat timeout');
      }),
    );
  }

  private scheduleTokenRefresh(conn: Connection): void {
    const canRefresh = Boolean(this.config.getToken && conn.credentials.token);
    this.keepalive.scheduleRefresh(canRefresh ? this.session.auth?.expiresAt : null, () => {
      if (!this.isCurrent(conn)) return;
      this.reauthenticate().catch((err) =>
        this.report(new AuthError('token_provider_failed', 'token refresh failed', { cause: err })),
      );
    });
  }

  // ---- notifications ---------------------------------------------------------------------

  private emitReset(reason: ResetReason, subscriptionIds: string[], previousSessionId: string | null): void {
    const data: ResetData = { reason, sessionId: this.session.sessionId, previousSessionId, subscriptionIds };
    this.subs.noteReset(subscriptionIds);
    this.notifier.reset(data);
    const env: ResetEnvelope = { id: newId(), type: RESET_TYPE, timestamp: Date.now(), data };
    this.handlers.dispatch(env as unknown as Envelope);
  }

  private report(error: AutoSDLCError): void {
    this.notifier.report(error);
  }

  private setState(next: ConnectionState, force = false): void {
    const previous = this._state;
    if (previous === next && !force) return;
    this._state = next;
    this.emitState(previous);
  }

  private emitState(previous: ConnectionState): void {
    this.notifier.stateChanged(this._state, previous);
  }
}
