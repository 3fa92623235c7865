/**
 * Framework-free glue for UI bindings: an observable snapshot of a client
 * (what `useSyncExternalStore` wants) and a ref-counted registry that lets
 * several components share one client. Nothing here imports React.
 */
import type { AutoSDLCWebSocketClient } from './client.js';
import type { AutoSDLCError } from './errors.js';
import type { ConnectionState, Envelope, Unsubscribe } from './types.js';

/** The connection as a UI shows it; a new object only when one of these changes. */
export interface ConnectionSnapshot {
  readonly state: ConnectionState;
  readonly isConnected: boolean;
  readonly nextRetryAt: number | null;
  readonly error: AutoSDLCError | null;
}

export interface ClientSnapshot extends ConnectionSnapshot {
  /** The last event delivered (control frames are not messages here). */
  readonly lastMessage: Envelope | null;
}

/**
 * Immutable snapshots of one client; a new object only when something
 * changed. Two views: `getSnapshot` (with the last event, so a new object on
 * every event) and `getConnectionSnapshot` (without it), for consumers that
 * must not re-render on every event.
 */
export class ClientStore {
  private readonly listeners = new Set<() => void>();
  private connection: ConnectionSnapshot;
  private snapshot: ClientSnapshot;
  private lastMessage: Envelope | null = null;
  private detach: Unsubscribe | null = null;

  constructor(readonly client: AutoSDLCWebSocketClient) {
    this.connection = this.computeConnection();
    this.snapshot = { ...this.connection, lastMessage: null };
  }

  /** Arrow functions: React compares them by identity across renders. */
  readonly subscribe = (listener: () => void): Unsubscribe => {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.attach();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) {
        this.detach?.();
        this.detach = null;
      }
    };
  };

  readonly getSnapshot = (): ClientSnapshot => this.snapshot;

  readonly getConnectionSnapshot = (): ConnectionSnapshot => this.connection;

  private attach(): void {
    const offs = [
      this.client.onStateChange(() => this.update()),
      this.client.on('*', (env) => {
        this.lastMessage = env as Envelope;
        this.update();
      }),
      this.client.onError(() => this.update()),
    ];
    this.detach = () => offs.forEach((off) => off());
    // Catch up on whatever happened while nobody listened.
    this.update();
  }

  private computeConnection(): ConnectionSnapshot {
    const c = this.client;
    return { state: c.state, isConnected: c.isConnected, nextRetryAt: c.nextRetryAt, error: c.lastError };
  }

  private update(): void {
    const next = this.computeConnection();
    const prev = this.connection;
    const connectionChanged =
      prev.state !== next.state ||
      prev.isConnected !== next.isConnected ||
      prev.nextRetryAt !== next.nextRetryAt ||
      prev.error !== next.error;
    if (!connectionChanged && this.snapshot.lastMessage === this.lastMessage) return;
    if (connectionChanged) this.connection = next;
    this.snapshot = { ...this.connection, lastMessage: this.lastMessage };
    for (const listener of [...this.listeners]) listener();
  }
}

type TokenProvider = { readonly current: (() => string | Promise<string>) | undefined };

/** One client shared by every user of the same key. */
export interface SharedClient {
  readonly key: string;
  readonly client: AutoSDLCWebSocketClient;
  readonly store: ClientStore;
  readonly refs: number;
  /** Registers a (ref to a) getToken; the most recently added one is used. */
  addTokenProvider(provider: TokenProvider): Unsubscribe;
  /** Calls the current token provider. */
  getToken(): string | Promise<string>;
}

class SharedClientImpl implements SharedClient {
  refs = 0;
  readonly client: AutoSDLCWebSocketClient;
  readonly store: ClientStore;
  private readonly providers: TokenProvider[] = [];

  constructor(
    readonly key: string,
    create: (shared: SharedClient) => AutoSDLCWebSocketClient,
  ) {
    this.client = create(this);
    this.store = new ClientStore(this.client);
  }

  addTokenProvider(provider: TokenProvider): Unsubscribe {
    this.providers.push(provider);
    return () => {
      const i = this.providers.lastIndexOf(provider);
      if (i >= 0) this.providers.splice(i, 1);
    };
  }

  getToken(): string | Promise<string> {
    for (let i = this.providers.length - 1; i >= 0; i -= 1) {
      const fn = this.providers[i]!.current;
      if (fn) return fn();
    }
    return Promise.reject(new Error('no getToken provider is mounted'));
  }
}

/**
 * Ref-counted clients by key: the first `acquire` connects, the last
 * `release` closes and forgets the client. `get` only looks up or creates
 * (no socket, no timers), so it is safe during a render that never commits.
 */
export class ClientRegistry {
  private readonly clients = new Map<string, SharedClientImpl>();

  get(key: string, create: (shared: SharedClient) => AutoSDLCWebSocketClient): SharedClient {
    let shared = this.clients.get(key);
    if (!shared) {
      shared = new SharedClientImpl(key, create);
      this.clients.set(key, shared);
    }
    return shared;
  }

  acquire(shared: SharedClient): void {
    const impl = shared as SharedClientImpl;
    impl.refs += 1;
    // Released to zero and acquired again (React StrictMode re-runs effects):
    // put it back so later users share it.
    if (!this.clients.has(impl.key)) this.clients.set(impl.key, impl);
    if (impl.refs === 1) {
      // Failures are visible through the snapshot (state `closed`, `error`).
      impl.client.connect().catch(() => undefined);
    }
  }

  release(shared: SharedClient): void {
    const impl = shared as SharedClientImpl;
    if (impl.refs === 0) return;
    impl.refs -= 1;
    if (impl.refs === 0) {
      if (this.clients.get(impl.key) === impl) this.clients.delete(impl.key);
      impl.client.close();
    }
  }

  /** Number of clients known (acquired or merely created). */
  get size(): number {
    return this.clients.size;
  }
}

/** The registry the React hooks use unless given another. */
export const defaultRegistry = new ClientRegistry();
