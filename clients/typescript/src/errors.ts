/**
 * One error tree; every error has a stable string `code` to branch on.
 *
 *     AutoSDLCError                  (code)
 *     ├── ConnectError               connect_failed | unauthorized | forbidden
 *     │                              connect() could not establish the first connection
 *     ├── AuthError                  <server code of auth_failure> | token_provider_failed
 *     ├── ConnectionClosedError      policy_violation | too_large | unauthorized |
 *     │                              token_expired | server_disconnect
 *     │                              the server closed and the client will not retry
 *     ├── ReconnectFailedError       reconnect_failed (maxAttempts exhausted)
 *     ├── ServerError                <code of a correlated `error` frame>: forbidden, ...
 *     ├── QueueFullError             queue_full
 *     ├── FrameTooLargeError         too_large (refused locally, before the server closes 1009)
 *     ├── SendFailedError            send_failed (the socket refused the frame)
 *     ├── RequestTimeoutError        timeout
 *     ├── ClientClosedError          client_closed (close() was called)
 *     ├── ProtocolError              invalid_frame (an undecodable frame from the server)
 *     └── InvalidArgumentError       invalid_argument / config
 */

import type { Envelope } from './types.js';

export class AutoSDLCError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export class ConnectError extends AutoSDLCError {
  /** HTTP status of a refused upgrade (401/403), when the runtime exposes it (Node `ws`). */
  readonly statusCode: number | undefined;
  /** Close code of the failed socket (1006 when a browser hides the HTTP status). */
  readonly closeCode: number | undefined;
  /** `error.code` of the server's JSON error body, when it could be read. */
  readonly serverCode: string | undefined;

  constructor(
    code: 'connect_failed' | 'unauthorized' | 'forbidden',
    message: string,
    details: { statusCode?: number; closeCode?: number; serverCode?: string; cause?: unknown } = {},
  ) {
    super(code, message, { cause: details.cause });
    this.statusCode = details.statusCode;
    this.closeCode = details.closeCode;
    this.serverCode = details.serverCode;
  }
}

export class AuthError extends AutoSDLCError {}

const CLOSE_ERROR_CODES: Record<number, string> = {
  1008: 'policy_violation',
  1009: 'too_large',
  4001: 'unauthorized',
  4003: 'token_expired',
};

export class ConnectionClosedError extends AutoSDLCError {
  readonly closeCode: number;
  readonly reason: string;

  constructor(closeCode: number, reason: string, code?: string) {
    const resolved = code ?? CLOSE_ERROR_CODES[closeCode] ?? 'server_disconnect';
    super(resolved, `connection closed by the server (${closeCode}${reason ? `: ${reason}` : ''})`);
    this.closeCode = closeCode;
    this.reason = reason;
  }
}

export class ReconnectFailedError extends AutoSDLCError {
  readonly attempts: number;

  constructor(attempts: number) {
    super('reconnect_failed', `gave up after ${attempts} reconnect attempts`);
    this.attempts = attempts;
  }
}

/** A correlated `error` frame from the server (e.g. `forbidden` for a subscribe). */
export class ServerError extends AutoSDLCError {
  readonly path: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly envelope: Envelope;

  constructor(envelope: Envelope) {
    const data = envelope.data as { code?: unknown; message?: unknown; path?: unknown; retryAfterMs?: unknown };
    super(
      typeof data.code === 'string' ? data.code : 'internal',
      typeof data.message === 'string' ? data.message : 'server error',
    );
    this.path = typeof data.path === 'string' ? data.path : undefined;
    this.retryAfterMs = typeof data.retryAfterMs === 'number' ? data.retryAfterMs : undefined;
    this.envelope = envelope;
  }
}

export class QueueFullError extends AutoSDLCError {
  readonly limit: number;

  constructor(limit: number) {
    super('queue_full', `offline queue is full (${limit} messages)`);
    this.limit = limit;
  }
}

export class FrameTooLargeError extends AutoSDLCError {
  readonly size: number;
  readonly limit: number;

  constructor(size: number, limit: number) {
    super('too_large', `frame of ${size} bytes exceeds the server's limit of ${limit} bytes`);
    this.size = size;
    this.limit = limit;
  }
}

/** The socket threw while `send()` handed it a frame (the message is not queued either). */
export class SendFailedError extends AutoSDLCError {
  constructor(cause: unknown) {
    const detail = cause instanceof Error ? `: ${cause.message}` : '';
    super('send_failed', `the socket refused the frame${detail}`, { cause });
  }
}

export class RequestTimeoutError extends AutoSDLCError {
  constructor(what: string, ms: number) {
    super('timeout', `${what} got no reply within ${ms} ms`);
  }
}

export class ClientClosedError extends AutoSDLCError {
  constructor() {
    super('client_closed', 'the client was closed');
  }
}

export class ProtocolError extends AutoSDLCError {}

export class InvalidArgumentError extends AutoSDLCError {
  constructor(message: string, code: 'invalid_argument' | 'config' = 'invalid_argument') {
    super(code, message);
  }
}
