import { ConnectError, ConnectionClosedError, type AutoSDLCError } from './errors.js';

/**
 * What the client does after the server closes the connection (contract §6).
 * Codes are values, not strings in messages, so the rule lives in one table.
 */
export type CloseAction =
  /** Reconnect with backoff and resume. */
  | 'reconnect'
  /** Reconnect only with a fresh credential from `getToken`; otherwise stop. */
  | 'refresh'
  /** Stop and report: retrying would only hammer the server. */
  | 'stop';

export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY: 1008,
  TOO_LARGE: 1009,
  INTERNAL: 1011,
  TRY_AGAIN_LATER: 1013,
  UNAUTHORIZED: 4001,
  TOKEN_EXPIRED: 4003,
  SLOW_CONSUMER: 4008,
} as const;

/**
 * 1001, 1006, 1011, 1013, 4008 and every code not named here reconnect
 * (including 1000 when the server, not the app, closed: a proxy or a
 * restarting gateway may use it, and a dashboard should not go dark).
 */
export function closeAction(code: number): CloseAction {
  switch (code) {
    case CloseCode.INVALID_PAYLOAD:
    case CloseCode.POLICY:
    case CloseCode.TOO_LARGE:
    case CloseCode.UNAUTHORIZED:
      return 'stop';
    case CloseCode.TOKEN_EXPIRED:
      return 'refresh';
    default:
      return 'reconnect';
  }
}

/** What the client knows when a socket it was using closes. */
export interface CloseFacts {
  code: number;
  reason: string;
  /** The socket opened before it closed. */
  opened: boolean;
  /** The first `connect()` of this run is still waiting. */
  initial: boolean;
  /** HTTP status of a refused upgrade, when the runtime reports it. */
  httpStatus: number | undefined;
  /** The gateway's error code in the body of a refused upgrade. */
  serverCode: string | undefined;
  /** The server's `disconnect` frame before the close, if any. */
  disconnect: { reason?: string; reconnect?: boolean } | null;
  /** A `getToken` can supply a fresh credential (recovers from 4003). */
  canRefreshToken: boolean;
  url: string;
}

export type CloseOutcome = { readonly action: 'reconnect' } | { readonly action: 'stop'; readonly error: AutoSDLCError };

/**
 * Reconnect or stop, and with which error (contract §6): a refused upgrade
 * (401/403) or a first attempt that never opened stops; so do a `disconnect`
 * frame with `reconnect: false` and the stop codes; the rest reconnects.
 */
export function closeOutcome(f: CloseFacts): CloseOutcome {
  if (!f.opened) {
    if (f.httpStatus === 401 || f.httpStatus === 403) {
      const code = f.httpStatus === 401 ? 'unauthorized' : 'forbidden';
      return stop(
        new ConnectError(code, `upgrade refused with HTTP ${f.httpStatus}`, {
          statusCode: f.httpStatus,
          closeCode: f.code,
          serverCode: f.serverCode,
        }),
      );
    }
    // Browsers cannot tell "401" from "unreachable": either way the first
    // connect() fails instead of retrying in the background.
    if (f.initial) {
      return stop(
        new ConnectError('connect_failed', `could not connect to ${f.url} (close ${f.code})`, {
          statusCode: f.httpStatus,
          closeCode: f.code,
        }),
      );
    }
    return { action: 'reconnect' };
  }
  if (f.disconnect && f.disconnect.reconnect === false) {
    return stop(new ConnectionClosedError(f.code, f.disconnect.reason ?? f.reason, 'server_disconnect'));
  }
  const action = closeAction(f.code);
  if (action === 'stop' || (action === 'refresh' && !f.canRefreshToken)) {
    return stop(new ConnectionClosedError(f.code, f.reason));
  }
  return { action: 'reconnect' };
}

function stop(error: AutoSDLCError): CloseOutcome {
  return { action: 'stop', error };
}
