/**
 * Everything that goes out: frames written to the current socket (refused
 * locally when larger than the server's `maxFrameBytes`, which would get
 * the connection closed with 1009 and stop the client), and the bounded
 * offline queue for what the application sends while not connected.
 */
import { byteLength } from './codec.js';
import { FrameTooLargeError, InvalidArgumentError, SendFailedError, type AutoSDLCError } from './errors.js';
import { newId } from './ids.js';
import { OfflineQueue } from './offline-queue.js';
import type { WebSocketLike } from './transport.js';
import type { Envelope, OutgoingMessage } from './types.js';

/** The envelope `send()` puts on the wire: `id`, `timestamp` and `data` filled in, the rest kept. */
export function outgoingEnvelope<T extends string, D>(message: OutgoingMessage<T, D>): Envelope<T, D> {
  return {
    ...message,
    id: message.id ?? newId(),
    timestamp: message.timestamp ?? Date.now(),
    data: (message.data ?? {}) as D,
  } as Envelope<T, D>;
}

export interface OutboxDeps {
  /** The current socket, or null between connections. */
  socket(): WebSocketLike | null;
  /** Authenticated with the socket open. */
  isConnected(): boolean;
  maxFrameBytes(): number | undefined;
  report(error: AutoSDLCError): void;
}

export class Outbox {
  private readonly queue: OfflineQueue;

  constructor(
    queueLimit: number,
    private readonly deps: OutboxDeps,
  ) {
    this.queue = new OfflineQueue(queueLimit);
  }

  get queued(): number {
    return this.queue.size;
  }

  /**
   * An application message, completed into an envelope: written now when
   * connected, else queued. Throws InvalidArgumentError without a `type`,
   * QueueFullError when the queue is full, FrameTooLargeError beyond the
   * server's limit, SendFailedError when the socket refuses it.
   */
  sendMessage<T extends string, D>(message: OutgoingMessage<T, D>): Envelope<T, D> {
    if (!message || typeof message.type !== 'string' || message.type === '') {
      throw new InvalidArgumentError('message.type is required');
    }
    const env = outgoingEnvelope(message);
    this.send(env as Envelope);
    return env;
  }

  private send(env: Envelope): void {
    if (this.deps.isConnected()) {
      this.write(env, true);
      return;
    }
    this.queue.ensureRoom();
    this.checkSize(JSON.stringify(env));
    this.queue.push(env);
  }

  /** A frame of the client's own (never queued, a size problem is reported); returns its id. */
  control(type: string, data: Record<string, unknown>, metadata?: { correlationId: string }): string {
    const env: Envelope = { id: newId(), type, timestamp: Date.now(), data };
    if (metadata) env.metadata = metadata;
    this.write(env, false);
    return env.id;
  }

  /** After a handshake: the queued messages, in order. */
  flush(): void {
    this.queue.drain(this.deps.isConnected, (env) => this.write(env, false));
  }

  clear(): void {
    this.queue.clear();
  }

  private checkSize(text: string): void {
    const max = this.deps.maxFrameBytes();
    if (typeof max !== 'number') return;
    const size = byteLength(text);
    if (size > max) throw new FrameTooLargeError(size, max);
  }

  /** `forCaller`: problems are thrown to the application's `send()`; otherwise reported. */
  private write(env: Envelope, forCaller: boolean): void {
    const ws = this.deps.socket();
    if (!ws) return;
    const text = JSON.stringify(env);
    try {
      this.checkSize(text);
      try {
        ws.send(text);
      } catch (err) {
        throw new SendFailedError(err);
      }
    } catch (err) {
      if (forCaller) throw err;
      this.deps.report(err as AutoSDLCError);
    }
  }
}
