/**
 * Messages the application sent while the client was not authenticated,
 * flushed in order after the next handshake. Bounded: an application that
 * keeps sending through a long outage gets QueueFullError, not unbounded memory.
 */
import { QueueFullError } from './errors.js';
import type { Envelope } from './types.js';

export class OfflineQueue {
  private readonly items: Envelope[] = [];

  constructor(readonly limit: number) {}

  get size(): number {
    return this.items.length;
  }

  /** Throws QueueFullError when `limit` messages are already waiting. */
  ensureRoom(): void {
    if (this.items.length >= this.limit) throw new QueueFullError(this.limit);
  }

  /** Throws QueueFullError when `limit` messages are already waiting. */
  push(env: Envelope): void {
    this.ensureRoom();
    this.items.push(env);
  }

  /** Hands messages to `write`, oldest first, while `canWrite()` holds. */
  drain(canWrite: () => boolean, write: (env: Envelope) => void): void {
    while (this.items.length > 0 && canWrite()) write(this.items.shift()!);
  }

  clear(): void {
    this.items.length = 0;
  }
}
