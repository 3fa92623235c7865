/**
 * What the service worker may do with a request: the whole caching policy,
 * free of I/O so it is tested with plain values (test/pwa-policy.test.ts).
 *
 * The worker caches the app shell only. Events arrive over /ws (which a
 * service worker never sees), and everything else the gateway answers
 * (/api, /schemas, /metrics, /healthz, webhooks) is live data or may carry a
 * credential: it is left to the network untouched, so none of it can end up
 * in Cache Storage or be served stale.
 */

/** How a request is handled. */
export type Route =
  /** The page itself: network first (a new deploy shows up), the cached copy offline. */
  | 'page'
  /** A file of this build's shell: from the cache, fetched once if missing. */
  | 'shell-file'
  /** Not the worker's business: the browser fetches it as if there were no worker. */
  | 'network-only';

/** The parts of a request the policy looks at. */
export interface RequestFacts {
  url: string;
  method: string;
  /** Whether the request carries an Authorization header. */
  hasAuthorization: boolean;
}

/** The paths the page is served at (the gateway serves the dashboard at `/`). */
export const PAGE_PATHS: ReadonlySet<string> = new Set(['/']);

/** The one cache key of the page: never the request's URL, which may hold `#token=…`. */
export const PAGE_CACHE_KEY = '/';

/**
 * Decides how the worker handles a request.
 *
 * @param origin the worker's own origin (`self.location.origin`)
 * @param shellFiles the paths of this build's shell files (`/assets/…`)
 */
export function routeRequest(req: RequestFacts, origin: string, shellFiles: ReadonlySet<string>): Route {
  if (req.method !== 'GET' || req.hasAuthorization) return 'network-only';
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    return 'network-only';
  }
  if (url.origin !== origin) return 'network-only';
  // Shell URLs never have a query: one that does (`?token=`, `?api_key=`…) is
  // someone else's request and must not become a cache entry.
  if (url.search !== '' || url.username !== '' || url.password !== '') return 'network-only';
  if (PAGE_PATHS.has(url.pathname)) return 'page';
  if (shellFiles.has(url.pathname)) return 'shell-file';
  return 'network-only';
}

/**
 * Whether a response may be stored: a complete, same-origin, successful answer
 * that does not ask to stay out of caches.
 */
export function isCacheable(res: { status: number; type: string; cacheControl: string | null }): boolean {
  if (res.status !== 200 || res.type !== 'basic') return false;
  return !/(^|,)\s*(no-store|private)\s*(,|$)/i.test(res.cacheControl ?? '');
}

/**
 * Whether a fresh answer for the page is worse than the cached shell: a
 * server error (a proxy's 502 while the gateway restarts) would replace the
 * app with an error page, where the shell shows "Reconnecting" and recovers.
 */
export function preferCachedPage(status: number): boolean {
  return status >= 500;
}

/** The name of this build's cache; older `autosdlc-shell-…` caches are deleted on activation. */
export const CACHE_PREFIX = 'autosdlc-shell-';

export function cacheName(version: string): string {
  return `${CACHE_PREFIX}${version}`;
}

/** The caches a newly activated worker deletes: earlier builds' shells, nobody else's caches. */
export function staleCaches(names: readonly string[], current: string): string[] {
  return names.filter((n) => n.startsWith(CACHE_PREFIX) && n !== current);
}
