/**
 * Runs inbound work strictly in arrival order. Decoding a gzip frame is
 * async, yet a text frame or a close that arrives after it must be handled
 * after it; when nothing is being decoded, work runs synchronously (no
 * microtask delay on the common path).
 */
import { AutoSDLCError, ProtocolError } from './errors.js';

export class InboundSerializer {
  private tail: Promise<void> = Promise.resolve();
  private pending = 0;

  constructor(private readonly onError: (error: AutoSDLCError) => void) {}

  run(task: () => void | Promise<void>): void {
    const attempt = () => {
      try {
        return task();
      } catch (err) {
        this.onError(asClientError(err));
        return undefined;
      }
    };
    const done = () => {
      this.pending -= 1;
    };
    const failed = (err: unknown) => {
      done();
      this.onError(asClientError(err));
    };
    if (this.pending === 0) {
      const result = attempt();
      if (result && typeof (result as Promise<void>).then === 'function') {
        this.pending += 1;
        this.tail = (result as Promise<void>).then(done, failed);
      }
      return;
    }
    this.pending += 1;
    this.tail = this.tail.then(attempt).then(done, failed);
  }
}

/** Anything thrown, as the client's error type (`internal` when it was not one). */
export function asClientError(err: unknown): AutoSDLCError {
  if (err instanceof AutoSDLCError) return err;
  return new ProtocolError('internal', err instanceof Error ? err.message : String(err), { cause: err });
}
