/**
 * The application's subscriptions, which outlive connections: what was asked
 * for (events, filters), the id `subscribe()` resolved with, the server's
 * current id for it, and a status the UI can watch. The client moves entries
 * between states as frames arrive; nothing here does I/O.
 */
import type { SubscriptionInfo } from './config.js';
import { deferred, type Deferred } from './deferred.js';
import type { AutoSDLCError } from './errors.js';
import type { SubscriptionFilters, Unsubscribe } from './types.js';

/**
 * - `pending`: waiting for the server's confirmation, including while
 *   offline and while re-subscribing after a session was not resumed;
 * - `active`: confirmed by the server;
 * - `error`: refused (`forbidden`, ...), timed out, or the client stopped
 *   before it was confirmed; `error` says which;
 * - `removed`: unsubscribed, removed by the server, or the client was closed.
 */
export type SubscriptionState = 'pending' | 'active' | 'error' | 'removed';

export interface SubscriptionSnapshot {
  readonly status: SubscriptionState;
  /** The caller-facing id (`subscribe()`'s result), null until first confirmed. */
  readonly id: string | null;
  /** The server's current id for it. */
  readonly serverId: string | null;
  readonly error: AutoSDLCError | null;
  /** How many `$reset`s named this subscription (events may have been missed). */
  readonly resets: number;
}

export function cloneFilters(filters: SubscriptionFilters | undefined): SubscriptionFilters | undefined {
  if (!filters) return undefined;
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(filters)) {
    if (v !== undefined) out[k] = Array.isArray(v) ? [...v] : v;
  }
  return out as SubscriptionFilters;
}

/** One subscription as the application sees it; an observable store of its snapshot. */
export class SubscriptionEntry {
  readonly events: string[];
  readonly filters: SubscriptionFilters | undefined;
  /** Ask for the current state on every (re-)subscribe (protocol 1.1 snapshot). */
  readonly wantsSnapshot: boolean;
  /** id of the subscribe request in flight, if any. */
  requestId: string | null = null;
  /** The subscribe() promise, until it settles. */
  waiter: Deferred<string> | null = deferred<string>();
  private snapshot: SubscriptionSnapshot = { status: 'pending', id: null, serverId: null, error: null, resets: 0 };
  private readonly listeners = new Set<() => void>();

  constructor(events: string[], filters: SubscriptionFilters | undefined, snapshot = false) {
    this.events = [...events];
    this.filters = cloneFilters(filters);
    this.wantsSnapshot = snapshot;
  }

  get id(): string | null {
    return this.snapshot.id;
  }

  get serverId(): string | null {
    return this.snapshot.serverId;
  }

  /** Arrow functions: `useSyncExternalStore` compares them by identity. */
  readonly getSnapshot = (): SubscriptionSnapshot => this.snapshot;

  readonly subscribe = (listener: () => void): Unsubscribe => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };

  /** Changes the snapshot (a new object) and tells the listeners. */
  update(change: Partial<SubscriptionSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...change };
    for (const listener of [...this.listeners]) listener();
  }

  info(): SubscriptionInfo | null {
    const { id, serverId } = this.snapshot;
    if (id === null) return null;
    const info: SubscriptionInfo = { id, serverId, events: [...this.events], filters: cloneFilters(this.filters) };
    if (this.wantsSnapshot) info.snapshot = true;
    return info;
  }

  /** `data` of the subscribe request that (re-)creates it on the server. */
  requestData(): Record<string, unknown> {
    const data: Record<string, unknown> = { events: [...this.events] };
    if (this.filters) data.filters = cloneFilters(this.filters);
    if (this.wantsSnapshot) data.snapshot = true;
    return data;
  }
}

export class SubscriptionRegistry {
  private readonly entries = new Set<SubscriptionEntry>();
  private readonly byId = new Map<string, SubscriptionEntry>();
  private readonly byServerId = new Map<string, SubscriptionEntry>();

  add(events: string[], filters: SubscriptionFilters | undefined, snapshot = false): SubscriptionEntry {
    const entry = new SubscriptionEntry(events, filters, snapshot);
    this.entries.add(entry);
    return entry;
  }

  has(entry: SubscriptionEntry): boolean {
    return this.entries.has(entry);
  }

  get(id: string): SubscriptionEntry | undefined {
    return this.byId.get(id);
  }

  getByServerId(serverId: string): SubscriptionEntry | undefined {
    return this.byServerId.get(serverId);
  }

  /** Entries the server does not hold yet: to (re)send after a handshake. */
  unconfirmed(): SubscriptionEntry[] {
    return [...this.entries].filter((e) => e.serverId === null);
  }

  /** Every entry, for settling them all. */
  all(): SubscriptionEntry[] {
    return [...this.entries];
  }

  infos(): SubscriptionInfo[] {
    const out: SubscriptionInfo[] = [];
    for (const e of this.entries) {
      const info = e.info();
      if (info) out.push(info);
    }
    return out;
  }

  /** The server confirmed: the first confirmation fixes the caller-facing id. */
  confirm(entry: SubscriptionEntry, serverId: string): void {
    entry.requestId = null;
    this.byServerId.set(serverId, entry);
    const id = entry.id ?? serverId;
    this.byId.set(id, entry);
    entry.update({ status: 'active', id, serverId, error: null });
    const waiter = entry.waiter;
    entry.waiter = null;
    waiter?.resolve(id);
  }

  /**
   * Gives up on a subscription with `error`. Returns false when no
   * subscribe() call was waiting for it (a re-subscribe), so the caller
   * reports the error elsewhere.
   */
  fail(entry: SubscriptionEntry, error: AutoSDLCError): boolean {
    this.forget(entry, 'error', error);
    const waiter = entry.waiter;
    entry.waiter = null;
    waiter?.reject(error);
    return waiter !== null;
  }

  /** Removes an entry from the registry (not from the server). */
  forget(entry: SubscriptionEntry, status: 'removed' | 'error' = 'removed', error: AutoSDLCError | null = null): void {
    this.entries.delete(entry);
    // Only this entry's own mappings: forgetting twice must not touch another's.
    if (entry.id !== null && this.byId.get(entry.id) === entry) this.byId.delete(entry.id);
    if (entry.serverId !== null && this.byServerId.get(entry.serverId) === entry) this.byServerId.delete(entry.serverId);
    entry.update({ status, error, serverId: null });
  }

  /**
   * The server forgot our subscriptions (a session not resumed): each one
   * is pending again until re-sent and confirmed. Returns the caller-facing
   * ids of those that were confirmed before.
   */
  dropServerIds(): string[] {
    const lost: string[] = [];
    for (const entry of this.entries) {
      if (entry.serverId === null) continue;
      this.byServerId.delete(entry.serverId);
      entry.update({ status: 'pending', serverId: null });
      if (entry.id !== null) lost.push(entry.id);
    }
    return lost;
  }

  /** Counts a `$reset` on the subscriptions it names. */
  noteReset(ids: readonly string[]): void {
    for (const id of ids) {
      const entry = this.byId.get(id);
      if (entry) entry.update({ resets: entry.getSnapshot().resets + 1 });
    }
  }

  /** `close()`: every waiting subscribe() rejects with `error`, every entry is removed. */
  clear(error: AutoSDLCError): void {
    for (const entry of [...this.entries]) {
      if (entry.waiter) this.fail(entry, error);
      else this.forget(entry);
    }
    this.byId.clear();
    this.byServerId.clear();
  }
}
