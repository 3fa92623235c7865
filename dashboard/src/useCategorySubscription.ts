import { useEffect, useState } from 'react';

import type { AutoSDLCError, AutoSDLCWebSocketClient, SubscriptionFilters } from '@autosdlc/ws-client';
import type { UseWebSocketResult } from '@autosdlc/ws-client/react';

import type { SubscriptionSpec } from './subscriptions';

export type SubStatus = 'off' | 'pending' | 'active' | 'error';

export interface CategorySubscription {
  /** The subscription this status belongs to (events + filters), null when off. */
  key: string | null;
  status: SubStatus;
  subscriptionId?: string;
  error?: AutoSDLCError;
  /** Why it is off, when it is. */
  reason?: string;
}

const noop = (): void => undefined;

/**
 * One subscription, made through `useWebSocket`'s `subscribe` (so it ends on
 * unmount). When the spec changes it unsubscribes, then subscribes with the
 * new events and filters: the filtering happens at the gateway. Like the
 * package's `useSubscription`, but the returned status is tagged with the spec
 * it belongs to, so a caller never mistakes the old subscription's "active"
 * for the new one's.
 */
export function useCategorySubscription(
  subscribe: UseWebSocketResult['subscribe'],
  client: AutoSDLCWebSocketClient,
  spec: SubscriptionSpec,
  enabled: boolean,
): CategorySubscription {
  const key = enabled && spec.active ? JSON.stringify([spec.events, spec.filters ?? null]) : null;
  const [result, setResult] = useState<CategorySubscription>({ key: null, status: 'off' });

  useEffect(() => {
    if (key === null) return undefined;
    const [events, filters] = JSON.parse(key) as [string[], SubscriptionFilters | null];
    let cancelled = false;
    let id: string | null = null;
    setResult({ key, status: 'pending' });
    subscribe(filters ? { events, filters } : { events }).then(
      (sid) => {
        if (cancelled) {
          client.unsubscribe(sid).catch(noop);
          return;
        }
        id = sid;
        setResult({ key, status: 'active', subscriptionId: sid });
      },
      (error: AutoSDLCError) => {
        if (!cancelled) setResult({ key, status: 'error', error });
      },
    );
    return () => {
      cancelled = true;
      if (id !== null) client.unsubscribe(id).catch(noop);
    };
  }, [key, subscribe, client]);

  if (key === null) {
    return { key: null, status: 'off', reason: spec.active ? 'waiting for sign-in' : spec.reason };
  }
  return result.key === key ? result : { key, status: 'pending' };
}
