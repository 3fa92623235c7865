/**
 * The Debug view (admin credentials only): the whole deployment through the
 * gateway's public admin API, polled every 2 s while the browser tab is
 * visible, plus the message inspector over the live feed and, for a
 * credential that may publish, the publish form.
 *
 * Loaded on demand (React.lazy in Dashboard.tsx): a credential without admin
 * permission never downloads it, and never calls an admin endpoint.
 */
import { useCallback, useMemo } from 'react';

import type { Credential } from '../credentials';
import type { FeedItem } from '../state';
import { GatewayApi, type ApiResult } from './api';
import { ConnectionsPanel } from './ConnectionsPanel';
import { ErrorsPanel } from './ErrorsPanel';
import { InspectorPanel } from './InspectorPanel';
import type { Completeness, ConnectionInfo, ErrorGroup, Listing, NodeInfo, SubscriptionCounts } from './model';
import { NodesPanel } from './NodesPanel';
import { canPublish } from './permissions';
import { PublishPanel } from './PublishPanel';
import { SubscriptionsPanel } from './SubscriptionsPanel';
import { usePolling } from './usePolling';

import './debug.css';

export const POLL_INTERVAL_MS = 2000;

interface Snapshot {
  nodes: ApiResult<Listing<NodeInfo>>;
  connections: ApiResult<Listing<ConnectionInfo>>;
  errors: ApiResult<Listing<ErrorGroup>>;
  subscriptions: ApiResult<SubscriptionCounts & Completeness>;
}

export interface DebugViewProps {
  credential: Credential;
  permissions: readonly string[];
  feed: readonly FeedItem[];
  inspected: FeedItem | null;
  onInspect: (item: FeedItem | null) => void;
  ownConnectionId: string | null;
  /** The page's clock tick (ms), for ages. */
  now: number;
}

export default function DebugView({ credential, permissions, feed, inspected, onInspect, ownConnectionId, now }: DebugViewProps) {
  const api = useMemo(() => new GatewayApi(credential), [credential]);
  const load = useCallback(async (): Promise<Snapshot> => {
    const [nodes, connections, errors, subscriptions] = await Promise.all([api.nodes(), api.connections(), api.errors(), api.subscriptionCounts()]);
    return { nodes, connections, errors, subscriptions };
  }, [api]);
  const { value: snap, refresh } = usePolling(load, POLL_INTERVAL_MS, true);
  // Ages are measured on the gateway's clock (its Date header), not this browser's.
  const serverNow = now + (snap?.nodes.ok ? snap.nodes.clockOffsetMs : 0);

  return (
    <main className="debug" data-testid="debug-view">
      <div className="debug-row">
        <NodesPanel answer={snap?.nodes ?? null} serverNow={serverNow} />
        <SubscriptionsPanel answer={snap?.subscriptions ?? null} />
      </div>
      <ConnectionsPanel api={api} answer={snap?.connections ?? null} serverNow={serverNow} ownConnectionId={ownConnectionId} refresh={refresh} />
      <InspectorPanel feed={feed} selected={inspected} onSelect={onInspect} />
      <div className="debug-row">
        {canPublish(permissions) && <PublishPanel api={api} now={Date.now} />}
        <ErrorsPanel answer={snap?.errors ?? null} serverNow={serverNow} />
      </div>
    </main>
  );
}
