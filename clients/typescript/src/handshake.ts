/**
 * What a connection attempt puts on the wire before anything else: the
 * upgrade URL and, for in-band authentication, the `auth_request` data.
 * Pure functions of the configuration and the session to resume.
 */
export interface Credentials {
  token?: string;
  apiKey?: string;
}

export function hasCredentials(creds: Credentials): boolean {
  return Boolean(creds.token || creds.apiKey);
}

/** The session the client asks to resume, if any. */
export interface ResumePoint {
  sessionId: string | null;
  lastEventId: string | null;
}

export interface UpgradeOptions {
  /** Credentials go in an `auth_request` rather than the URL. */
  inBand: boolean;
  authInUrl: boolean;
  compression: 'gzip' | undefined;
  /** Ask for batched frames (protocol 1.1): `batch=1`, in-band authentication or not. */
  batch?: boolean;
}

/**
 * `http(s)://` mapped to `ws(s)://`; `batch=1` when asked for (it is no
 * secret, and the server knows it from the upgrade on); unless
 * authentication is in-band, the credentials (with `authInUrl`), the session
 * to resume and the compression go in the query.
 */
export function upgradeUrl(base: string, creds: Credentials, resume: ResumePoint, options: UpgradeOptions): string {
  const url = new URL(base.replace(/^http(s?):/i, 'ws$1:'));
  const params = url.searchParams;
  if (options.batch) params.set('batch', '1');
  if (options.inBand) return url.toString();
  if (options.authInUrl && creds.token) params.set('token', creds.token);
  else if (options.authInUrl && creds.apiKey) params.set('api_key', creds.apiKey);
  if (resume.sessionId) params.set('session_id', resume.sessionId);
  if (resume.sessionId && resume.lastEventId) params.set('last_event_id', resume.lastEventId);
  if (options.compression === 'gzip') params.set('compression', 'gzip');
  return url.toString();
}

/** `data` of the in-band `auth_request`, the first frame on the socket. */
export function authRequestData(
  creds: Credentials,
  resume: ResumePoint,
  compression: 'gzip' | undefined,
): Record<string, unknown> {
  const data: Record<string, unknown> = creds.token ? { token: creds.token } : { apiKey: creds.apiKey };
  if (resume.sessionId) {
    data.sessionId = resume.sessionId;
    if (resume.lastEventId) data.lastEventId = resume.lastEventId;
  }
  if (compression === 'gzip') data.compression = 'gzip';
  return data;
}

/** The credential of the next attempt: `getToken` wins over `token`, then `apiKey`, else none. */
export function currentCredentials(source: {
  getToken?: () => string | Promise<string>;
  token?: string;
  apiKey?: string;
}): Credentials | Promise<Credentials> {
  const { getToken, token, apiKey } = source;
  if (getToken) {
    const value = getToken();
    if (value && typeof (value as Promise<string>).then === 'function') {
      return Promise.resolve(value).then((t) => ({ token: t }));
    }
    return { token: value as string };
  }
  if (token) return { token };
  if (apiKey) return { apiKey };
  return {};
}
