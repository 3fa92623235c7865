/**
 * The subscribe/unsubscribe protocol: sends requests, matches the server's
 * `subscription_update` and `error` replies to them (by correlation id, with
 * timeouts), re-sends what the server forgot, and undoes confirmations that
 * arrive for subscriptions nobody wants any more. Frames go out through the
 * narrow `SubscriptionWire`; the state lives in the registry.
 */
import type { SubscribeConfig, SubscriptionInfo } from './config.js';
import { deferred } from './deferred.js';
import { AutoSDLCError, InvalidArgumentError, RequestTimeoutError, type ServerError } from './errors.js';
import { RequestTracker, type PendingRequest } from './requests.js';
import { SubscriptionRegistry, type SubscriptionEntry, type SubscriptionSnapshot } from './subscriptions.js';
import type { SubscriptionUpdateData, Unsubscribe } from './types.js';

/**
 * A subscription made with `createSubscription`: its status is an
 * observable store (what `useSyncExternalStore` wants).
 */
export interface SubscriptionHandle {
  /** Resolves with the subscription id as `subscribe()` does; a rejection is never unhandled. */
  readonly result: Promise<string>;
  getSnapshot(): SubscriptionSnapshot;
  /** Called on every change of the snapshot. */
  subscribe(listener: () => void): Unsubscribe;
  /** Ends it, also while it is still pending (the server's late confirmation is undone). */
  unsubscribe(): Promise<void>;
}

/** Why `config` cannot be subscribed to, or null when it can. */
export function subscribeConfigProblem(config: SubscribeConfig): InvalidArgumentError | null {
  if (!config || !Array.isArray(config.events) || config.events.length === 0) {
    return new InvalidArgumentError('subscribe needs a non-empty events array');
  }
  if (config.events.some((e) => typeof e !== 'string' || e === '')) {
    return new InvalidArgumentError('events must be non-empty strings');
  }
  if (config.snapshot !== undefined && typeof config.snapshot !== 'boolean') {
    return new InvalidArgumentError('snapshot must be a boolean');
  }
  return null;
}

const noop = (): void => undefined;

/** What the manager needs from the client. */
export interface SubscriptionWire {
  /** Authenticated with the socket open: requests go out now, not after the next handshake. */
  isConnected(): boolean;
  /** Writes a frame of the client's own; returns its id. */
  writeControl(type: string, data: Record<string, unknown>): string;
  /** An error that belongs to no caller (a refused re-subscribe, a timed-out one). */
  report(error: AutoSDLCError): void;
  /** The server resumed a subscription but could not replay what it missed. */
  historyLost(ids: string[]): void;
}

export class SubscriptionManager {
  private readonly registry = new SubscriptionRegistry();
  private readonly requests: RequestTracker;

  constructor(
    timeoutMs: number,
    private readonly wire: SubscriptionWire,
  ) {
    this.requests = new RequestTracker(timeoutMs, (req, ms) => this.onTimeout(req, ms));
  }

  get(id: string): SubscriptionEntry | undefined {
    return this.registry.get(id);
  }

  infos(): SubscriptionInfo[] {
    return this.registry.infos();
  }

  /** A new subscription: sent now when connected, else after the next handshake. */
  add(config: SubscribeConfig): SubscriptionEntry {
    const entry = this.registry.add(config.events, config.filters, config.snapshot === true);
    if (this.wire.isConnected()) this.sendSubscribe(entry);
    return entry;
  }

  /** Like `add`, with a handle to watch its status. */
  addWithHandle(config: SubscribeConfig): SubscriptionHandle {
    const entry = this.add(config);
    const result = entry.waiter!.promise;
    result.catch(noop);
    return {
      result,
      getSnapshot: entry.getSnapshot,
      subscribe: entry.subscribe,
      unsubscribe: () => this.end(entry),
    };
  }

  /** Ends a subscription; resolves once the server confirmed (at once when offline). */
  end(entry: SubscriptionEntry): Promise<void> {
    const serverId = entry.serverId;
    this.registry.forget(entry);
    // A subscribe still in flight is undone when its confirmation arrives.
    const waiter = entry.waiter;
    entry.waiter = null;
    waiter?.reject(new AutoSDLCError('unsubscribed', 'unsubscribed before the server confirmed'));
    if (serverId !== null && this.wire.isConnected()) {
      const id = this.wire.writeControl('unsubscribe', { subscriptionId: serverId });
      const done = deferred<void>();
      this.requests.track(id, { kind: 'unsubscribe', done });
      return done.promise;
    }
    return Promise.resolve();
  }

  /** A session not resumed: returns the ids whose server side is gone (they are pending again). */
  serverForgot(): string[] {
    return this.registry.dropServerIds();
  }

  /** After a handshake: sends every subscription the server does not hold. */
  sendUnconfirmed(): void {
    for (const entry of this.registry.unconfirmed()) this.sendSubscribe(entry);
  }

  noteReset(ids: readonly string[]): void {
    this.registry.noteReset(ids);
  }

  onUpdate(data: SubscriptionUpdateData, correlationId: string | undefined): void {
    const pending = this.requests.take(correlationId);
    if (pending) {
      if (pending.kind === 'subscribe') this.onConfirmed(pending.entry, data.subscriptionId);
      else pending.done.resolve();
      return;
    }
    if (this.requests.takeAbandoned(correlationId) && data.status === 'active') {
      this.sendUnsubscribe(data.subscriptionId);
      return;
    }
    const entry = this.registry.getByServerId(data.subscriptionId);
    switch (data.status) {
      case 'resumed':
      case 'reset':
        if (!entry) {
          // A subscription the server kept but we no longer want (unsubscribed
          // while offline, or a subscribe whose reply was lost and was re-sent).
          this.sendUnsubscribe(data.subscriptionId);
          return;
        }
        if (data.status === 'reset') this.wire.historyLost(entry.id ? [entry.id] : []);
        break;
      case 'removed':
        if (entry) this.registry.forget(entry);
        break;
      default:
        break;
    }
  }

  /** An `error` frame; false when it answers none of our requests. */
  onError(error: ServerError, correlationId: string | undefined): boolean {
    const pending = this.requests.take(correlationId);
    if (!pending) return false;
    if (pending.kind === 'subscribe') {
      // Without a waiting subscribe(), a re-subscribe after reconnect was refused (permissions changed).
      if (!this.registry.fail(pending.entry, error)) this.wire.report(error);
    } else if (error.code === 'not_found') {
      pending.done.resolve();
    } else {
      pending.done.reject(error);
    }
    return true;
  }

  /** The socket is gone: requests stop waiting (whatever the server kept is sorted out on resume). */
  socketGone(): void {
    for (const req of this.requests.takeAll()) {
      if (req.kind === 'subscribe') req.entry.requestId = null;
      else req.done.resolve();
    }
  }

  /** The client stopped: subscriptions never confirmed fail; confirmed ones wait for connect(). */
  failUnconfirmedIds(error: AutoSDLCError): void {
    for (const entry of this.registry.all()) {
      if (entry.id === null) this.registry.fail(entry, error);
    }
  }

  /** `close()`: everything is dropped. */
  clear(error: AutoSDLCError): void {
    this.registry.clear(error);
    this.requests.forgetAbandoned();
  }

  private onConfirmed(entry: SubscriptionEntry, serverId: string): void {
    entry.requestId = null;
    if (!this.registry.has(entry)) {
      // unsubscribe() came while the request was in flight.
      this.sendUnsubscribe(serverId);
      return;
    }
    this.registry.confirm(entry, serverId);
  }

  private onTimeout(req: PendingRequest, ms: number): void {
    if (req.kind === 'subscribe') {
      const error = new RequestTimeoutError('subscribe', ms);
      if (!this.registry.fail(req.entry, error)) this.wire.report(error);
    } else {
      req.done.reject(new RequestTimeoutError('unsubscribe', ms));
    }
  }

  private sendSubscribe(entry: SubscriptionEntry): void {
    const id = this.wire.writeControl('subscribe', entry.requestData());
    entry.requestId = id;
    this.requests.track(id, { kind: 'subscribe', entry });
  }

  private sendUnsubscribe(serverId: string): void {
    if (this.wire.isConnected()) this.wire.writeControl('unsubscribe', { subscriptionId: serverId });
  }
}
