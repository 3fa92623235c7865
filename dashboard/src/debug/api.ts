/**
 * The gateway's public HTTP API as the Debug view calls it: the admin
 * endpoints (CONTRACT §10), `POST /api/v1/events` and `/schemas/<type>.json`.
 *
 * The credential travels in a header (`Authorization: Bearer` for a JWT,
 * `X-API-Key` for a key), never in a URL, as the gateway's HTTP routes read it.
 * Every call resolves (never rejects) to a result value, so a view can show
 * "forbidden" or "gateway unreachable" in place instead of catching.
 */
import type { Credential } from '../credentials';
import { clockOffset } from './clock';
import {
  parseApiError,
  parseConnections,
  parseErrors,
  parseNodes,
  parseSubscriptionCounts,
  type ApiError,
  type ConnectionInfo,
  type ErrorGroup,
  type Listing,
  type NodeInfo,
  type SubscriptionCounts,
  type Completeness,
} from './model';

export type ApiResult<T> = { ok: true; value: T; clockOffsetMs: number } | { ok: false; error: ApiError };

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** How long any one request may take before the view says so (the gateway answers partial within 2 s). */
const REQUEST_TIMEOUT_MS = 8000;

export function authHeaders(credential: Credential): Record<string, string> {
  return credential.kind === 'token' ? { Authorization: `Bearer ${credential.value}` } : { 'X-API-Key': credential.value };
}

export class GatewayApi {
  constructor(
    private readonly credential: Credential,
    private readonly fetchImpl: FetchLike = (input, init) => fetch(input, init),
    private readonly now: () => number = Date.now,
  ) {}

  nodes(): Promise<ApiResult<Listing<NodeInfo>>> {
    return this.json('GET', '/api/v1/nodes', parseNodes);
  }

  connections(): Promise<ApiResult<Listing<ConnectionInfo>>> {
    return this.json('GET', '/api/v1/connections', parseConnections);
  }

  errors(): Promise<ApiResult<Listing<ErrorGroup>>> {
    return this.json('GET', '/api/v1/errors', parseErrors);
  }

  subscriptionCounts(): Promise<ApiResult<SubscriptionCounts & Completeness>> {
    return this.json('GET', '/api/v1/subscriptions', parseSubscriptionCounts);
  }

  /** `DELETE /api/v1/connections/{id}`: the owning node closes it with 1008 naming this admin. */
  disconnect(connectionId: string): Promise<ApiResult<{ closed: string }>> {
    return this.json('DELETE', `/api/v1/connections/${encodeURIComponent(connectionId)}`, () => ({ closed: connectionId }));
  }

  /** `POST /api/v1/events` with one event; 202 gives the id the gateway assigned. */
  publish(event: { type: string; data: unknown; metadata?: unknown }): Promise<ApiResult<{ ids: string[] }>> {
    return this.json('POST', '/api/v1/events', (body) => {
      const ids = (body as { ids?: unknown } | null)?.ids;
      return { ids: Array.isArray(ids) ? ids.map(String) : [] };
    }, event);
  }

  /** `GET /schemas/<type>.json` (public: no credential needed, none sent). */
  schema(type: string): Promise<ApiResult<unknown>> {
    return this.json('GET', `/schemas/${encodeURIComponent(type)}.json`, (body) => body, undefined, false);
  }

  private async json<T>(
    method: string,
    path: string,
    parse: (body: unknown) => T,
    body?: unknown,
    authenticated = true,
  ): Promise<ApiResult<T>> {
    const headers: Record<string, string> = { Accept: 'application/json', ...(authenticated ? authHeaders(this.credential) : {}) };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res: Response;
    try {
      res = await this.fetchImpl(path, {
        method,
        headers,
        cache: 'no-store',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (e) {
      const timedOut = e instanceof DOMException && e.name === 'TimeoutError';
      return {
        ok: false,
        error: { status: 0, code: timedOut ? 'timeout' : 'unreachable', message: timedOut ? 'the gateway did not answer in time' : 'the gateway is unreachable' },
      };
    }
    let parsed: unknown = null;
    try {
      parsed = await res.json();
    } catch {
      parsed = null; // an empty or non-JSON body (a proxy's error page): the status says enough
    }
    if (!res.ok) return { ok: false, error: parseApiError(res.status, parsed) };
    return { ok: true, value: parse(parsed), clockOffsetMs: clockOffset(res.headers.get('Date'), this.now()) };
  }
}
