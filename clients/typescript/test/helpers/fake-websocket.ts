/**
 * A scripted stand-in for the WebSocket API: the test plays the server by
 * pushing frames and closes, and inspects what the client sent. Nothing
 * happens on its own (no timers, no network), so every test is deterministic.
 */
import type { Envelope } from '../../src/types.js';
import type { WebSocketLike } from '../../src/client.js';

type Listener = ((event: any) => void) | null;

export class FakeWebSocket implements WebSocketLike {
  static instances: FakeWebSocket[] = [];

  static reset(): void {
    FakeWebSocket.instances = [];
  }

  static get last(): FakeWebSocket {
    const ws = FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
    if (!ws) throw new Error('no socket was created');
    return ws;
  }

  readyState = 0;
  binaryType = 'blob';
  onopen: Listener = null;
  onmessage: Listener = null;
  onclose: Listener = null;
  onerror: Listener = null;
  readonly sent: string[] = [];
  closedWith: { code: number | undefined; reason: string | undefined } | null = null;
  readonly parsedUrl: URL;

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    this.parsedUrl = new URL(url);
    FakeWebSocket.instances.push(this);
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error(`InvalidStateError: send in readyState ${this.readyState}`);
    this.sent.push(data);
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  // ---- the server's side ----

  open(): void {
    this.readyState = 1;
    this.onopen?.({ type: 'open' });
  }

  /** Objects are sent as JSON text frames; strings and bytes as they are. */
  push(frame: object | string | ArrayBuffer | Uint8Array | Blob): void {
    const data =
      typeof frame === 'string' || frame instanceof ArrayBuffer || ArrayBuffer.isView(frame) || frame instanceof Blob
        ? frame
        : JSON.stringify(frame);
    this.onmessage?.({ type: 'message', data });
  }

  serverClose(code = 1006, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ type: 'close', code, reason, wasClean: code !== 1006 });
  }

  /** What a browser shows for a refused upgrade or an unreachable host. */
  failBeforeOpen(message?: string): void {
    this.onerror?.(message ? { type: 'error', message } : { type: 'error' });
    this.readyState = 3;
    this.onclose?.({ type: 'close', code: 1006, reason: '', wasClean: false });
  }

  get frames(): Envelope[] {
    return this.sent.map((s) => JSON.parse(s) as Envelope);
  }

  framesOf(type: string): Envelope[] {
    return this.frames.filter((f) => f.type === type);
  }

  lastOf(type: string): Envelope {
    const all = this.framesOf(type);
    const f = all[all.length - 1];
    if (!f) throw new Error(`no ${type} frame was sent; sent: ${this.frames.map((x) => x.type).join(', ')}`);
    return f;
  }
}
