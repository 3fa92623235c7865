/**
 * The socket the client drives, and what differs between runtimes: the
 * browser's `WebSocket`, Node's `ws` package and the tests' fake all fit
 * `WebSocketLike`; Node's `ws` also reports a refused upgrade (status and
 * body), which browsers hide behind a 1006 close.
 */

/** The part of the WebSocket API the client uses. */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** `WebSocket.OPEN`, which not every implementation exposes as a static. */
export const SOCKET_OPEN = 1;

/**
 * Close code sent on a link the client declared dead (heartbeat timeout,
 * hung connect) when the implementation cannot drop it outright. Only a
 * value on the wire: the client never reads it back.
 */
export const DEAD_LINK_CLOSE_CODE = 4000;

/**
 * How the client lets go of a socket. `close` is the closing handshake with
 * the caller's code (an application calling `close(4000)` gets exactly that);
 * `drop` is for a link already known dead, where waiting for the handshake
 * would hang: Node's `ws` is terminated, others get a close.
 */
export type SocketEnding =
  | { readonly kind: 'close'; readonly code: number; readonly reason: string }
  | { readonly kind: 'drop'; readonly reason: string };

const noop = (): void => undefined;

/** Stops listening to a socket and ends it, without waiting for its close event. */
export function detachSocket(ws: WebSocketLike, ending: SocketEnding): void {
  // No-ops, not null: Node's `ws` throws on an 'error' nobody listens to.
  ws.onopen = noop;
  ws.onmessage = noop;
  ws.onclose = noop;
  ws.onerror = noop;
  try {
    const terminate = (ws as unknown as { terminate?: () => void }).terminate;
    if (ending.kind === 'drop' && typeof terminate === 'function') terminate.call(ws);
    else if (ending.kind === 'drop') ws.close(DEAD_LINK_CLOSE_CODE, ending.reason);
    else ws.close(ending.code, ending.reason);
  } catch {
    // Already closed, or an implementation that refuses the code.
  }
}

/** What Node's `ws` told us about a refused upgrade; filled in as it arrives. */
export interface UpgradeRefusal {
  status?: number;
  body?: string;
  message?: string;
}

/**
 * Node's `ws` reports a refused upgrade as 'unexpected-response' (status
 * and body); browsers hide it behind a 1006 close. Listening means we must
 * abort the handshake ourselves: `terminate()` while CONNECTING makes `ws`
 * emit error + close as usual. (Destroying the request is not enough once
 * its response has ended on a keep-alive connection: no error, no close.)
 */
export function watchUpgradeResponse(ws: WebSocketLike, refusal: UpgradeRefusal): void {
  const emitter = ws as unknown as {
    on?: (event: string, listener: (...args: any[]) => void) => void;
    terminate?: () => void;
  };
  if (typeof emitter.on !== 'function') return;
  emitter.on('unexpected-response', (req: any, res: any) => {
    refusal.status = res?.statusCode;
    let body = '';
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      refusal.body = body;
      refusal.message = `Unexpected server response: ${refusal.status}`;
      if (typeof emitter.terminate === 'function') {
        try {
          emitter.terminate.call(ws);
          return;
        } catch {
          // fall through to destroying the request
        }
      }
      req?.destroy?.(new Error(refusal.message));
    };
    if (typeof res?.on !== 'function') return finish();
    res.setEncoding?.('utf8');
    res.on('data', (chunk: string) => {
      if (body.length < 4096) body += chunk;
    });
    res.on('end', finish);
    res.on('error', finish);
    res.on('close', finish);
  });
}

/** The HTTP status in `ws`'s "Unexpected server response: 401" error message. */
export function statusFromMessage(message: string | undefined): number | undefined {
  const match = message ? /Unexpected server response: (\d{3})/.exec(message) : null;
  return match ? Number(match[1]) : undefined;
}

/** The gateway's `error.code` in the JSON body of a refused upgrade. */
export function serverCodeFromBody(body: string | undefined): string | undefined {
  if (!body) return undefined;
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown } };
    return typeof parsed.error?.code === 'string' ? parsed.error.code : undefined;
  } catch {
    return undefined;
  }
}
