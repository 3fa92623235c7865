/** The feed: newest first, bounded, every line numbered in arrival order. */
import { clip, type Obj } from './coerce';
import { LIMITS, type DashboardState, type FeedItem } from './types';

export function pushFeed(state: DashboardState, item: Omit<FeedItem, 'seq'>): DashboardState {
  const seq = state.seq + 1;
  const feed = [{ ...item, seq }, ...state.feed];
  if (feed.length > LIMITS.feed) feed.length = LIMITS.feed;
  return { ...state, seq, feed };
}

/** The feed line of an event no domain describes: its type and payload, clipped. */
export function defaultSummary(type: string, data: Obj): string {
  let text: string;
  try {
    text = JSON.stringify(data);
  } catch {
    text = '';
  }
  return `${type.replace(/_/g, ' ')} ${clip(text, 160)}`;
}
