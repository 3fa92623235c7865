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
