/**
 * The dashboard's service worker (built to /sw.js): keeps the app shell so the
 * installed app opens without the network, and nothing else. Which request is
 * handled how is decided by ./policy; this file only moves requests, responses
 * and cache entries.
 */
import { cacheName, isCacheable, PAGE_CACHE_KEY, preferCachedPage, routeRequest, staleCaches } from './policy';

/** Written in by the build (vite.config.ts): this build's shell files and a version of their contents. */
declare const __AUTOSDLC_SHELL__: { version: string; files: string[] };

// The DOM library the dashboard compiles against has no worker types; these
// are the few members used here (lib.webworker would clash with lib.dom).
interface ExtendableEvent extends Event {
  waitUntil(work: Promise<unknown>): void;
}
interface FetchEvent extends ExtendableEvent {
  readonly request: Request;
  respondWith(answer: Promise<Response>): void;
}
interface WorkerScope {
  readonly location: { readonly origin: string };
  readonly clients: { claim(): Promise<void> };
  skipWaiting(): Promise<void>;
  addEventListener(type: 'install' | 'activate', listener: (event: ExtendableEvent) => void): void;
  addEventListener(type: 'fetch', listener: (event: FetchEvent) => void): void;
}

const worker = self as unknown as WorkerScope;
const shell = __AUTOSDLC_SHELL__;
const CACHE = cacheName(shell.version);
const shellFiles: ReadonlySet<string> = new Set(shell.files);

const cacheFacts = (res: Response) => ({ status: res.status, type: res.type, cacheControl: res.headers.get('cache-control') });

worker.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // `reload`: the shell as the server has it now, not an HTTP-cached copy.
      await cache.addAll([PAGE_CACHE_KEY, ...shell.files].map((path) => new Request(path, { cache: 'reload' })));
      await worker.skipWaiting();
    })(),
  );
});

worker.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      await Promise.all(staleCaches(await caches.keys(), CACHE).map((name) => caches.delete(name)));
      await worker.clients.claim();
    })(),
  );
});

worker.addEventListener('fetch', (event) => {
  const request = event.request;
  const route = routeRequest(
    { url: request.url, method: request.method, hasAuthorization: request.headers.has('authorization') },
    worker.location.origin,
    shellFiles,
  );
  if (route === 'page') event.respondWith(pageNetworkFirst(event));
  else if (route === 'shell-file') event.respondWith(shellFileCacheFirst(event));
  // 'network-only': no respondWith, the browser fetches it as without a worker.
});

/** The page from the network (so a new deploy shows up at once); the last copy when offline or failing. */
async function pageNetworkFirst(event: FetchEvent): Promise<Response> {
  const cache = await caches.open(CACHE);
  let response: Response;
  try {
    response = await fetch(event.request);
  } catch (offline) {
    const cached = await cache.match(PAGE_CACHE_KEY);
    if (cached) return cached;
    throw offline;
  }
  // Stored under `/`, never under the request URL: that may end in `#token=…`.
  if (isCacheable(cacheFacts(response))) event.waitUntil(cache.put(PAGE_CACHE_KEY, response.clone()));
  else if (preferCachedPage(response.status)) return (await cache.match(PAGE_CACHE_KEY)) ?? response;
  return response;
}

/** Shell files have content-hashed or build-versioned names: the cached copy is the right one. */
async function shellFileCacheFirst(event: FetchEvent): Promise<Response> {
  const cache = await caches.open(CACHE);
  const path = new URL(event.request.url).pathname;
  const cached = await cache.match(path);
  if (cached) return cached;
  const response = await fetch(event.request);
  if (isCacheable(cacheFacts(response))) event.waitUntil(cache.put(path, response.clone()));
  return response;
}
