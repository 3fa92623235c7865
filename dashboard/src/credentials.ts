/**
 * Where the dashboard's credential comes from and where it is kept.
 *
 * - Typed into the login form, or passed in the URL *fragment*
 *   (`/#token=…`, `/#api_key=…`): browsers never send the fragment to the
 *   server, and it is removed from the address bar (history.replaceState) as
 *   soon as the page loads, so it does not linger in history or screenshots.
 * - Kept in sessionStorage (this tab only, gone when the tab closes) or only
 *   in memory when the user unticks "remember".
 * - Sent to the gateway in-band, as the client's `auth_request`, never in the
 *   WebSocket URL.
 */
export type CredentialKind = 'token' | 'apiKey';

export interface Credential {
  kind: CredentialKind;
  value: string;
}

const STORAGE_KEY = 'autosdlc.dashboard.credential';

/** A JWT is three base64url parts separated by dots; anything else is taken as an API key. */
export function guessKind(value: string): CredentialKind {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(value.trim()) ? 'token' : 'apiKey';
}

/** Reads `token=` / `api_key=` from a fragment such as `#token=abc`; null when neither is there. */
export function parseFragment(hash: string): Credential | null {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const token = params.get('token');
  if (token) return { kind: 'token', value: token.trim() };
  const key = params.get('api_key') ?? params.get('apiKey');
  if (key) return { kind: 'apiKey', value: key.trim() };
  return null;
}

/**
 * Takes a credential out of the location's fragment and clears the fragment,
 * keeping path and query. Call once, before the first render.
 */
export function takeFragmentCredential(loc: Location = window.location, hist: History = window.history): Credential | null {
  const cred = parseFragment(loc.hash);
  if (loc.hash) hist.replaceState(hist.state, '', `${loc.pathname}${loc.search}`);
  return cred;
}

function storage(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null; // disabled storage (privacy settings): memory only
  }
}

export function loadCredential(): Credential | null {
  try {
    const raw = storage()?.getItem(STORAGE_KEY);
    if (!raw) return null;
    const parsed = JSON.parse(raw) as Partial<Credential>;
    if ((parsed.kind === 'token' || parsed.kind === 'apiKey') && typeof parsed.value === 'string' && parsed.value) {
      return { kind: parsed.kind, value: parsed.value };
    }
  } catch {
    // fall through: a corrupt entry is ignored
  }
  return null;
}

export function saveCredential(cred: Credential | null): void {
  const s = storage();
  if (!s) return;
  try {
    if (cred) s.setItem(STORAGE_KEY, JSON.stringify(cred));
    else s.removeItem(STORAGE_KEY);
  } catch {
    // quota or disabled storage: the credential stays in memory only
  }
}

/** The gateway's WebSocket endpoint on the origin that served the page. */
export function gatewayWsUrl(loc: Location = window.location): string {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/ws`;
}
