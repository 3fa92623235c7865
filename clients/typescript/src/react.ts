/**
 * React bindings: thin adapters over the framework-free client and store.
 * Import from `@autosdlc/ws-client/react`; `react` is an optional peer
 * dependency of the package and only this entry point needs it.
 */
import {
  createContext,
  createElement,
  useCallback,
  useContext,
  useEffect,
  useLayoutEffect,
  useMemo,
  useRef,
  useState,
  useSyncExternalStore,
  type ReactNode,
} from 'react';

import { AutoSDLCWebSocketClient, type SubscribeConfig } from './client.js';
import type { WebSocketOptions } from './config.js';
import type { AutoSDLCError } from './errors.js';
import { ClientRegistry, defaultRegistry, type ClientSnapshot, type ConnectionSnapshot, type SharedClient } from './store.js';
import {
  IDLE_RESULT,
  PENDING_RESULT,
  SubscriptionObserver,
  type SubscriptionStatusResult,
} from './subscription-observer.js';
import type { ConnectionState, Envelope, EventHandler, OutgoingMessage, SubscriptionFilters } from './types.js';

// useLayoutEffect warns during server rendering; effects never run there anyway.
const useIsomorphicLayoutEffect = typeof window !== 'undefined' ? useLayoutEffect : useEffect;

const noop = (): void => undefined;

/** `WebSocketOptions` under its older name. */
export interface UseWebSocketOptions extends WebSocketOptions {}

export interface UseWebSocketResult {
  isConnected: boolean;
  state: ConnectionState;
  /**
   * The last event received (any type). Opt-in by reading it: a component
   * re-renders on every event only once it has read `lastMessage`; one that
   * never does re-renders only when the connection changes.
   */
  lastMessage: Envelope | null;
  nextRetryAt: number | null;
  error: AutoSDLCError | null;
  /**
   * `client.send()`: resolves once written or queued; rejects (QueueFullError,
   * FrameTooLargeError, SendFailedError, InvalidArgumentError) when refused.
   */
  sendMessage: <T extends string>(message: OutgoingMessage<T>) => Promise<void>;
  /** Subscribes; the subscription ends when this component unmounts. */
  subscribe: (config: SubscribeConfig) => Promise<string>;
  client: AutoSDLCWebSocketClient;
}

const ctorIds = new WeakMap<object, number>();
let nextCtorId = 1;

function ctorId(ctor: object | undefined): number {
  if (!ctor) return 0;
  let id = ctorIds.get(ctor);
  if (id === undefined) {
    id = nextCtorId++;
    ctorIds.set(ctor, id);
  }
  return id;
}

/**
 * Components share a client when url and credentials match. `getToken` is
 * not part of the key (a new function every render would defeat sharing):
 * the client calls the getToken of the most recently mounted user.
 */
function clientKey(url: string, o: UseWebSocketOptions): string {
  return JSON.stringify([
    url,
    o.token ?? null,
    o.apiKey ?? null,
    Boolean(o.getToken),
    o.authInUrl ?? false,
    o.compression ?? null,
    o.batch ?? false,
    o.protocols ?? null,
    ctorId(o.WebSocket),
  ]);
}

function createClient(url: string, options: UseWebSocketOptions, shared: SharedClient): AutoSDLCWebSocketClient {
  const { enabled: _enabled, registry: _registry, getToken, ...config } = options;
  return new AutoSDLCWebSocketClient({
    ...config,
    url,
    ...(getToken ? { getToken: () => shared.getToken() } : {}),
  });
}

/**
 * Connection to the gateway shared by every component using the same url and
 * credentials; closed when the last of them unmounts. Options other than the
 * key (reconnect, queueLimit, ...) are taken from the first user.
 */
export function useWebSocket(url: string, options: UseWebSocketOptions = {}): UseWebSocketResult {
  const registry = options.registry ?? defaultRegistry;
  const enabled = options.enabled ?? true;
  const key = clientKey(url, options);
  // Creating is side-effect free (no socket, no timer); connecting happens in the effect.
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const shared = useMemo(() => registry.get(key, (s) => createClient(url, options, s)), [registry, key]);

  const tokenRef = useRef(options.getToken);
  useIsomorphicLayoutEffect(() => {
    tokenRef.current = options.getToken;
  });

  // Subscriptions made through this hook instance, per effect run.
  const ownedRef = useRef<Set<string> | null>(null);

  useEffect(() => {
    if (!enabled) return undefined;
    const owned = new Set<string>();
    ownedRef.current = owned;
    const removeProvider = shared.addTokenProvider(tokenRef);
    registry.acquire(shared);
    return () => {
      ownedRef.current = null;
      for (const id of owned) shared.client.unsubscribe(id).catch(noop);
      owned.clear();
      removeProvider();
      registry.release(shared);
    };
  }, [registry, shared, enabled]);

  // Tracked properties (as TanStack Query's notifyOnChangeProps: 'tracked'):
  // the snapshot includes the last event only once this component read it.
  const tracksLastMessage = useRef(false);
  const store = shared.store;
  const getSnapshot = useCallback(
    (): ConnectionSnapshot | ClientSnapshot => (tracksLastMessage.current ? store.getSnapshot() : store.getConnectionSnapshot()),
    [store],
  );
  const snapshot = useSyncExternalStore(store.subscribe, getSnapshot, getSnapshot);

  const sendMessage = useCallback(
    <T extends string>(message: OutgoingMessage<T>) => shared.client.send(message),
    [shared],
  );

  const subscribe = useCallback(
    async (config: SubscribeConfig) => {
      const owner = ownedRef.current;
      const id = await shared.client.subscribe(config);
      if (owner === null || owner !== ownedRef.current) {
        // Unmounted (or re-run) while the server was answering.
        shared.client.unsubscribe(id).catch(noop);
      } else {
        owner.add(id);
      }
      return id;
    },
    [shared],
  );

  return {
    isConnected: snapshot.isConnected,
    state: snapshot.state,
    get lastMessage(): Envelope | null {
      // From now on the snapshot this component subscribes to includes it
      // (React notices the change after this render and renders once more).
      tracksLastMessage.current = true;
      return store.getSnapshot().lastMessage;
    },
    nextRetryAt: snapshot.nextRetryAt,
    error: snapshot.error,
    sendMessage,
    subscribe,
    client: shared.client,
  };
}

const ClientContext = createContext<AutoSDLCWebSocketClient | null>(null);

/** Makes a client available to useSubscription / useEvent below it. */
export function AutoSDLCProvider(props: { client: AutoSDLCWebSocketClient; children?: ReactNode }): ReactNode {
  return createElement(ClientContext.Provider, { value: props.client }, props.children);
}

/** The client of the nearest AutoSDLCProvider, or null. */
export function useAutoSDLCClient(): AutoSDLCWebSocketClient | null {
  return useContext(ClientContext);
}

export interface UseSubscriptionConfig {
  events: string[];
  filters?: SubscriptionFilters;
  /** Deliver the current state first (see `SubscribeConfig.snapshot`). */
  snapshot?: boolean;
  /** Defaults to the client of the nearest AutoSDLCProvider. */
  client?: AutoSDLCWebSocketClient | null;
  enabled?: boolean;
}

export type UseSubscriptionResult = SubscriptionStatusResult;

/**
 * Subscribes while mounted (and while events/filters stay the same). The
 * status is the core's status of that subscription (see
 * `client.createSubscription`), so it follows reconnects, re-subscribes and
 * refusals; the hook only starts and stops it.
 */
export function useSubscription(config: UseSubscriptionConfig): UseSubscriptionResult {
  const contextClient = useContext(ClientContext);
  const client = config.client ?? contextClient;
  const enabled = config.enabled ?? true;
  // Callers usually pass fresh array literals: compare by value.
  const spec = JSON.stringify([config.events, config.filters ?? null, config.snapshot === true]);
  const [observer] = useState(() => new SubscriptionObserver());
  const observed = useSyncExternalStore(observer.subscribe, observer.getSnapshot, observer.getSnapshot);

  useEffect(() => {
    if (!client || !enabled) return undefined;
    const [events, filters, snapshot] = JSON.parse(spec) as [string[], SubscriptionFilters | null, boolean];
    const subscription: SubscribeConfig = filters ? { events, filters } : { events };
    if (snapshot) subscription.snapshot = true;
    observer.start(client, subscription, spec);
    return () => observer.stop();
  }, [observer, client, spec, enabled]);

  if (!client || !enabled) return IDLE_RESULT;
  // Until the effect has started the subscription for these props, it is pending
  // (never the previous subscription's status).
  if (observed.client !== client || observed.key !== spec) return PENDING_RESULT;
  return observed.result;
}

/**
 * Calls `handler` for every frame matching `pattern` (see client.on). The
 * handler may change every render: it is kept in a ref, the registration is not redone.
 */
export function useEvent<P extends string>(
  pattern: P,
  handler: EventHandler<P>,
  client?: AutoSDLCWebSocketClient | null,
): void {
  const contextClient = useContext(ClientContext);
  const target = client ?? contextClient;
  const handlerRef = useRef(handler);
  useIsomorphicLayoutEffect(() => {
    handlerRef.current = handler;
  });
  useEffect(() => {
    if (!target) return undefined;
    return target.on(pattern, (env) => handlerRef.current(env));
  }, [target, pattern]);
}

export { ClientRegistry, defaultRegistry };
