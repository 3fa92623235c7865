/**
 * What an application can configure, and the defaults. Plain types and
 * values: the client and its parts read them, nothing here has behaviour.
 */
import type { AutoSDLCError } from './errors.js';
import type { ClientRegistry } from './store.js';
import type { WebSocketConstructor } from './transport.js';
import type { ConnectionState, ResetData, SubscriptionFilters } from './types.js';

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
  /**
   * Protocol 1.1: let the server put several events in one text frame (a
   * JSON array of envelopes, `?batch=1` on the upgrade URL). Handlers see
   * them one by one, exactly as separate frames. Default false.
   */
  batch?: boolean;
  reconnect?: Partial<ReconnectOptions>;
  /** Messages kept while disconnected; beyond it `send()` rejects (`publish()` throws) with QueueFullError. */
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
  /**
   * Protocol 1.1: first deliver the latest retained event of every (type,
   * resource) the subscription matches (each with `metadata.snapshot: true`),
   * then live events. Asked again whenever the client re-subscribes after a
   * session was not resumed, so the application's state is never stale.
   */
  snapshot?: boolean;
}

/** The design document's name for what `subscribe()` takes. */
export type SubscriptionConfig = SubscribeConfig;

/**
 * The options of `useWebSocket(url, options)` (the design document's
 * `WebSocketOptions`): the client's configuration but the url and the
 * callbacks (a shared client has many users: they use `onReset`/`onError`
 * on `client`), plus the hook's own. Framework-free, so the package entry
 * exports it without React.
 */
export interface WebSocketOptions extends Omit<ClientConfig, 'url' | 'onReset' | 'onError'> {
  /** false: do not connect (e.g. until a token is available). Default true. */
  enabled?: boolean;
  /** Where shared clients live; tests pass their own. */
  registry?: ClientRegistry;
}

export interface SubscriptionInfo {
  /** The id `subscribe()` resolved with; stable across reconnects. */
  id: string;
  /** The server's current id for it (changes when a session could not be resumed). */
  serverId: string | null;
  events: string[];
  filters: SubscriptionFilters | undefined;
  /** Present (true) when it asks for a snapshot on every (re-)subscribe. */
  snapshot?: true;
}

export type StateListener = (state: ConnectionState, previous: ConnectionState) => void;

/** The reconnect options with the defaults filled in (an explicit `undefined` means "default"). */
export function reconnectOptions(given: Partial<ReconnectOptions> | undefined): ReconnectOptions {
  const out: ReconnectOptions = { ...DEFAULTS.reconnect };
  for (const [k, v] of Object.entries(given ?? {})) {
    if (v !== undefined) out[k as keyof ReconnectOptions] = v;
  }
  return out;
}
