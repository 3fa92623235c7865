/**
 * The framework-free half of `useSubscription` (TanStack Query's split of
 * QueryObserver and useQuery): it owns at most one subscription made with
 * `client.createSubscription`, follows the core's per-subscription status,
 * and offers it as an observable snapshot. The React hook only chooses when
 * to start and stop it.
 */
import type { AutoSDLCWebSocketClient, SubscribeConfig, SubscriptionHandle } from './client.js';
import type { AutoSDLCError } from './errors.js';
import type { SubscriptionSnapshot } from './subscriptions.js';
import type { Unsubscribe } from './types.js';

export interface SubscriptionStatusResult {
  subscriptionId: string | null;
  status: 'idle' | 'pending' | 'active' | 'error';
  error: AutoSDLCError | null;
}

export const IDLE_RESULT: SubscriptionStatusResult = Object.freeze({ subscriptionId: null, status: 'idle', error: null });
export const PENDING_RESULT: SubscriptionStatusResult = Object.freeze({
  subscriptionId: null,
  status: 'pending',
  error: null,
});

/** What the observer currently watches, and the result for it. */
export interface ObservedSubscription {
  readonly client: AutoSDLCWebSocketClient | null;
  /** The caller's key for the events and filters (the hook uses their JSON). */
  readonly key: string | null;
  readonly result: SubscriptionStatusResult;
}

const NOTHING: ObservedSubscription = Object.freeze({ client: null, key: null, result: IDLE_RESULT });

const noop = (): void => undefined;

/** The core's status as the hook reports it: a removed subscription is idle again. */
export function statusResult(snapshot: SubscriptionSnapshot): SubscriptionStatusResult {
  switch (snapshot.status) {
    case 'active':
      return { subscriptionId: snapshot.id, status: 'active', error: null };
    case 'error':
      return { subscriptionId: null, status: 'error', error: snapshot.error };
    case 'pending':
      // Re-subscribing after a session was lost keeps its id.
      return { subscriptionId: snapshot.id, status: 'pending', error: null };
    default:
      return IDLE_RESULT;
  }
}

export class SubscriptionObserver {
  private readonly listeners = new Set<() => void>();
  private observed: ObservedSubscription = NOTHING;
  private handle: SubscriptionHandle | null = null;
  private unwatch: Unsubscribe | null = null;

  readonly subscribe = (listener: () => void): Unsubscribe => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };

  readonly getSnapshot = (): ObservedSubscription => this.observed;

  /** Subscribes to `config` on `client` (ending whatever it watched before). */
  start(client: AutoSDLCWebSocketClient, config: SubscribeConfig, key: string): void {
    this.stop();
    const handle = client.createSubscription(config);
    this.handle = handle;
    const follow = () => this.publish({ client, key, result: statusResult(handle.getSnapshot()) });
    this.unwatch = handle.subscribe(follow);
    follow();
  }

  /** Ends the subscription (unsubscribing at the server); the snapshot goes back to idle. */
  stop(): void {
    this.unwatch?.();
    this.unwatch = null;
    this.handle?.unsubscribe().catch(noop);
    this.handle = null;
    this.observed = NOTHING;
  }

  private publish(next: ObservedSubscription): void {
    this.observed = next;
    for (const listener of [...this.listeners]) listener();
  }
}
