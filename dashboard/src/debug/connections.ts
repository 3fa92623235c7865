/**
 * The connections table's logic on plain values: which resources a
 * connection's subscriptions name, the subject / resource filter, and the
 * column sort.
 */
import type { ConnectionInfo, ConnectionSubscription } from './model';
import { KIND_OF_KEY } from './resources';


/**
 * The resources one subscription names, as `GET /api/v1/subscriptions` counts
 * them: `agent:coder-001` per filtered value, `*` when it filters on no resource.
 */
export function subscriptionResources(sub: ConnectionSubscription): string[] {
  const named: string[] = [];
  for (const [key, values] of Object.entries(sub.filters)) {
    const kind = KIND_OF_KEY[key];
    if (kind) for (const v of values) named.push(`${kind}:${v}`);
  }
  return named.length ? named : ['*'];
}

/** Every resource a connection's subscriptions name, sorted, once each (none when it has no subscription). */
export function connectionResources(conn: ConnectionInfo): string[] {
  return [...new Set(conn.subscriptions.flatMap(subscriptionResources))].sort();
}

export interface ConnectionFilter {
  /** Part of the subject, any case; empty: every subject. */
  subject: string;
  /** Part of a resource a subscription names (`coder-001`, `agent:coder`, `*`); empty: any. */
  resource: string;
}

export function filterConnections(rows: readonly ConnectionInfo[], filter: ConnectionFilter): ConnectionInfo[] {
  const subject = filter.subject.trim().toLowerCase();
  const resource = filter.resource.trim().toLowerCase();
  return rows.filter(
    (c) =>
      (!subject || (c.subject ?? '').toLowerCase().includes(subject)) &&
      (!resource || connectionResources(c).some((r) => r.toLowerCase().includes(resource))),
  );
}

export type SortKey =
  | 'connectionId'
  | 'nodeId'
  | 'subject'
  | 'remoteAddress'
  | 'connectedAt'
  | 'subscriptions'
  | 'state'
  | 'queueBytes'
  | 'bytesIn'
  | 'bytesOut';

export interface SortOrder {
  key: SortKey;
  dir: 'asc' | 'desc';
}

function sortValue(c: ConnectionInfo, key: SortKey): string | number | null {
  switch (key) {
    case 'subscriptions':
      return c.subscriptions.length;
    case 'subject':
      return c.subject;
    case 'connectedAt':
      return c.connectedAt;
    default:
      return c[key];
  }
}

/** Sorted by one column; missing values last in either direction; ties by connection id. */
export function sortConnections(rows: readonly ConnectionInfo[], order: SortOrder): ConnectionInfo[] {
  const sign = order.dir === 'asc' ? 1 : -1;
  return [...rows].sort((a, b) => {
    const va = sortValue(a, order.key);
    const vb = sortValue(b, order.key);
    if (va === null || vb === null) {
      if (va !== vb) return va === null ? 1 : -1;
    } else if (va !== vb) {
      const cmp = typeof va === 'number' && typeof vb === 'number' ? va - vb : String(va).localeCompare(String(vb));
      if (cmp !== 0) return sign * cmp;
    }
    return a.connectionId.localeCompare(b.connectionId);
  });
}

/** A click on a column header: the same column flips its direction, another starts ascending
 * (or descending for numbers, where the largest is usually what one looks for). */
export function nextSort(current: SortOrder, key: SortKey): SortOrder {
  if (current.key === key) return { key, dir: current.dir === 'asc' ? 'desc' : 'asc' };
  const numeric = key === 'queueBytes' || key === 'bytesIn' || key === 'bytesOut' || key === 'subscriptions';
  return { key, dir: numeric ? 'desc' : 'asc' };
}
