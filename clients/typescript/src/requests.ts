/**
 * Subscribe and unsubscribe requests waiting for the server's reply, by
 * request id (the reply's `metadata.correlationId`), each with a timeout.
 * A subscribe that timed out is remembered for a while, so that its late
 * confirmation can be undone instead of leaving a subscription nobody knows.
 */
import type { Deferred } from './deferred.js';
import type { SubscriptionEntry } from './subscriptions.js';

export type PendingRequest =
  | { readonly kind: 'subscribe'; readonly entry: SubscriptionEntry }
  | { readonly kind: 'unsubscribe'; readonly done: Deferred<void> };

/** Timed-out subscribes remembered, oldest forgotten first. */
const ABANDONED_LIMIT = 100;

export class RequestTracker {
  private readonly pending = new Map<string, { request: PendingRequest; timer: ReturnType<typeof setTimeout> }>();
  private readonly abandoned = new Set<string>();

  constructor(
    private readonly timeoutMs: number,
    private readonly onTimeout: (request: PendingRequest, timeoutMs: number) => void,
  ) {}

  track(id: string, request: PendingRequest): void {
    const timer = setTimeout(() => {
      if (!this.pending.delete(id)) return;
      if (request.kind === 'subscribe') this.abandon(id);
      this.onTimeout(request, this.timeoutMs);
    }, this.timeoutMs);
    this.pending.set(id, { request, timer });
  }

  /** The request `correlationId` answers, no longer tracked; undefined if none. */
  take(correlationId: string | undefined): PendingRequest | undefined {
    if (correlationId === undefined) return undefined;
    const found = this.pending.get(correlationId);
    if (!found) return undefined;
    clearTimeout(found.timer);
    this.pending.delete(correlationId);
    return found.request;
  }

  /** True (once) when `correlationId` answers a subscribe that already timed out. */
  takeAbandoned(correlationId: string | undefined): boolean {
    return correlationId !== undefined && this.abandoned.delete(correlationId);
  }

  /** The socket is gone: every request stops waiting; returns them to be settled. */
  takeAll(): PendingRequest[] {
    const out: PendingRequest[] = [];
    for (const { request, timer } of this.pending.values()) {
      clearTimeout(timer);
      out.push(request);
    }
    this.pending.clear();
    return out;
  }

  forgetAbandoned(): void {
    this.abandoned.clear();
  }

  private abandon(id: string): void {
    this.abandoned.add(id);
    if (this.abandoned.size > ABANDONED_LIMIT) this.abandoned.delete(this.abandoned.values().next().value as string);
  }
}
