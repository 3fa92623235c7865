/** The service worker's caching policy (src/pwa/policy.ts), on plain values. */
import { describe, expect, it } from 'vitest';

import {
  cacheName,
  isCacheable,
  PAGE_CACHE_KEY,
  preferCachedPage,
  routeRequest,
  staleCaches,
  type RequestFacts,
} from '../src/pwa/policy';

const ORIGIN = 'https://gateway.example:8443';
const SHELL = new Set(['/assets/index-abc123.js', '/assets/index-def456.css', '/assets/manifest.webmanifest', '/assets/icons/icon-192.png']);
const get = (path: string, extra: Partial<RequestFacts> = {}): RequestFacts => ({
  url: path.startsWith('http') ? path : `${ORIGIN}${path}`,
  method: 'GET',
  hasAuthorization: false,
  ...extra,
});
const route = (facts: RequestFacts) => routeRequest(facts, ORIGIN, SHELL);

describe('routeRequest', () => {
  it('serves the page network-first, including a #token= link (the fragment is not its key)', () => {
    expect(route(get('/'))).toBe('page');
    expect(route(get('/#token=eyJhbGciOi.x.y'))).toBe('page');
    expect(PAGE_CACHE_KEY).toBe('/');
  });

  it('serves this build’s shell files from the cache', () => {
    for (const path of SHELL) expect(route(get(path))).toBe('shell-file');
  });

  it('leaves live data and the API to the network', () => {
    for (const path of [
      '/ws',
      '/api/v1/events',
      '/api/v1/connections',
      '/schemas/',
      '/schemas/agent_status.json',
      '/metrics',
      '/healthz',
      '/readyz',
      '/webhooks/github',
      '/sw.js',
      '/index.html',
      '/assets/index-old999.js', // a file of another build
    ]) {
      expect(route(get(path)), path).toBe('network-only');
    }
  });

  it('never caches a request that carries a credential', () => {
    expect(route(get('/', { hasAuthorization: true }))).toBe('network-only');
    expect(route(get('/assets/index-abc123.js', { hasAuthorization: true }))).toBe('network-only');
    expect(route(get('/?token=eyJhbGciOi.x.y'))).toBe('network-only');
    expect(route(get('/assets/index-abc123.js?api_key=secret'))).toBe('network-only');
    expect(route(get('https://user:pass@gateway.example:8443/'))).toBe('network-only');
  });

  it('handles only same-origin GETs', () => {
    expect(route(get('/', { method: 'POST' }))).toBe('network-only');
    expect(route(get('/assets/index-abc123.js', { method: 'HEAD' }))).toBe('network-only');
    expect(route(get('https://cdn.example/assets/index-abc123.js'))).toBe('network-only');
    expect(route(get('http://gateway.example:8443/'))).toBe('network-only'); // other scheme: other origin
    expect(route(get('not a url'))).toBe('network-only');
  });
});

describe('isCacheable', () => {
  it('stores complete same-origin successes', () => {
    expect(isCacheable({ status: 200, type: 'basic', cacheControl: null })).toBe(true);
    expect(isCacheable({ status: 200, type: 'basic', cacheControl: 'no-cache' })).toBe(true); // revalidate, may store
    expect(isCacheable({ status: 200, type: 'basic', cacheControl: 'public, max-age=60' })).toBe(true);
  });

  it('refuses errors, partial, opaque and private answers', () => {
    expect(isCacheable({ status: 404, type: 'basic', cacheControl: null })).toBe(false);
    expect(isCacheable({ status: 206, type: 'basic', cacheControl: null })).toBe(false);
    expect(isCacheable({ status: 200, type: 'opaque', cacheControl: null })).toBe(false);
    expect(isCacheable({ status: 200, type: 'cors', cacheControl: null })).toBe(false);
    expect(isCacheable({ status: 200, type: 'basic', cacheControl: 'no-store' })).toBe(false);
    expect(isCacheable({ status: 200, type: 'basic', cacheControl: 'max-age=0, Private' })).toBe(false);
  });
});

describe('preferCachedPage', () => {
  it('keeps the shell over a server error, not over an answer the user should see', () => {
    for (const status of [500, 502, 503, 504]) expect(preferCachedPage(status), String(status)).toBe(true);
    for (const status of [200, 304, 401, 403, 404]) expect(preferCachedPage(status), String(status)).toBe(false);
  });
});

describe('caches of earlier builds', () => {
  it('deletes older shells and nobody else’s caches', () => {
    const current = cacheName('v2');
    expect(staleCaches([cacheName('v1'), current, 'other-app', cacheName('v0')], current)).toEqual([
      cacheName('v1'),
      cacheName('v0'),
    ]);
    expect(staleCaches([current], current)).toEqual([]);
  });
});
