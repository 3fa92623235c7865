/**
 * The message inspector's logic on plain values: which feed lines pass the
 * type / resource / free-text filter, and the envelope as the formatted JSON
 * that is shown and copied.
 */
import type { FeedItem } from '../state';
import { obj, str } from '../state/coerce';
import { KIND_OF_KEY } from './resources';

export interface InspectorFilter {
  /** An exact event type; empty: every type. */
  type: string;
  /** Part of a resource the event is about (`coder-001`, `agent:coder`, `repo:octo/app`); empty: any. */
  resource: string;
  /** Part of the envelope's JSON, any case; empty: anything. */
  text: string;
}

export const NO_FILTER: InspectorFilter = { type: '', resource: '', text: '' };


/** The resources an event names in its data, as `agent:coder-001`, `repo:octo/app`. */
export function envelopeResources(envelope: { data?: unknown } | undefined): string[] {
  const data = obj(envelope?.data) ?? {};
  const out: string[] = [];
  for (const [key, kind] of Object.entries(KIND_OF_KEY)) {
    const value = str(data[key]);
    if (value !== undefined) out.push(`${kind}:${value}`);
  }
  return out;
}

export function isFiltering(filter: InspectorFilter): boolean {
  return Boolean(filter.type || filter.resource.trim() || filter.text.trim());
}

/** The envelope as shown and copied: two-space indented JSON. */
export function formatEnvelope(envelope: unknown): string {
  try {
    return JSON.stringify(envelope, null, 2) ?? 'undefined';
  } catch {
    return String(envelope);
  }
}

/**
 * The lines that pass the filter. The dashboard's own lines (subscription
 * markers, gap warnings) have no envelope: they are kept only while nothing
 * is filtered, since they describe the feed itself.
 */
export function filterFeed(items: readonly FeedItem[], filter: InspectorFilter): FeedItem[] {
  if (!isFiltering(filter)) return [...items];
  const resource = filter.resource.trim().toLowerCase();
  const text = filter.text.trim().toLowerCase();
  return items.filter((item) => {
    if (!item.envelope) return false;
    if (filter.type && item.type !== filter.type) return false;
    if (resource && !envelopeResources(item.envelope).some((r) => r.toLowerCase().includes(resource))) return false;
    if (text && !formatEnvelope(item.envelope).toLowerCase().includes(text) && !item.summary.toLowerCase().includes(text)) return false;
    return true;
  });
}

/** Event types present in the feed, sorted: the choices of the type filter. */
export function feedTypes(items: readonly FeedItem[]): string[] {
  return [...new Set(items.filter((i) => i.envelope).map((i) => i.type))].sort();
}

/**
 * A paused inspector keeps showing the lines it had when paused (the model
 * goes on, bounded, underneath) and says how many arrived since.
 */
export interface PauseState {
  paused: boolean;
  /** The feed as it was when paused (null while live). */
  frozen: readonly FeedItem[] | null;
  /** The newest feed seq at the time of pausing. */
  pausedAtSeq: number;
}

export const LIVE: PauseState = { paused: false, frozen: null, pausedAtSeq: 0 };

export function pause(feed: readonly FeedItem[]): PauseState {
  return { paused: true, frozen: [...feed], pausedAtSeq: feed[0]?.seq ?? 0 };
}

/** Lines shown: the frozen ones while paused, else the live feed. */
export function visibleFeed(feed: readonly FeedItem[], state: PauseState): readonly FeedItem[] {
  return state.paused && state.frozen ? state.frozen : feed;
}

/** Lines that arrived after pausing (the feed is newest first). */
export function arrivedSincePause(feed: readonly FeedItem[], state: PauseState): number {
  if (!state.paused) return 0;
  let n = 0;
  for (const item of feed) {
    if (item.seq <= state.pausedAtSeq) break;
    n += 1;
  }
  return n;
}
