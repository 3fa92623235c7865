import { lazy, Suspense, useCallback, useEffect, useMemo, useReducer, useRef, useState } from 'react';

import {
  AuthError,
  ConnectError,
  ConnectionClosedError,
  isSnapshotEvent,
  type AutoSDLCError,
  type AutoSDLCWebSocketClient,
  type Envelope,
} from '@autosdlc/ws-client';
import { useEvent, useSubscription, useWebSocket } from '@autosdlc/ws-client/react';

import { gatewayWsUrl, type Credential } from '../credentials';
import { isAdmin } from '../debug/permissions';
import { initialState, reduce, type FeedItem } from '../state';
import {
  agentScope,
  CATEGORIES,
  categorySubscription,
  DEFAULT_FILTERS,
  describeFilters,
  subscriptionSpecs,
  type CategoryKey,
  type CategorySubscription,
  type Filters,
  type SubscriptionSpec,
} from '../subscriptions';
import { AgentsPanel } from './AgentsPanel';
import { FeedPanel } from './FeedPanel';
import { FilterBar } from './FilterBar';
import { GithubPanel } from './GithubPanel';
import { Header } from './Header';
import { SystemPanel } from './SystemPanel';
import { TddPanel } from './TddPanel';
import { ViewTabs, type ViewKey } from './ViewTabs';
import { WorkflowsPanel } from './WorkflowsPanel';

const RATE_WINDOW_MS = 10_000;

// Admin only: its code is fetched the first time the tab opens.
const DebugView = lazy(() => import('../debug/DebugView'));

const NO_EVENTS: string[] = [];

/**
 * One category's subscription through the library's `useSubscription` (it
 * unsubscribes on unmount and when the spec changes: the filtering happens
 * at the gateway), shown as the dashboard's category status. With a
 * snapshot: opened on a running system (or after a filter change, or a
 * gateway restart that lost the session) the gateway first sends the latest
 * event of every agent, workflow and task, so the panels show the current
 * state at once instead of waiting for each source to speak again.
 */
function useCategory(client: AutoSDLCWebSocketClient, spec: SubscriptionSpec, signedIn: boolean): CategorySubscription {
  const result = useSubscription({
    client,
    events: spec.active ? spec.events : NO_EVENTS,
    ...(spec.active && spec.filters ? { filters: spec.filters } : {}),
    snapshot: true,
    enabled: signedIn && spec.active,
  });
  return categorySubscription(spec, signedIn, result);
}

/** Errors that mean "this credential will not do": back to the login form. */
function credentialProblem(error: AutoSDLCError | null): string | null {
  if (!error) return null;
  if (error instanceof AuthError) return `Sign-in failed: ${error.message} (${error.code})`;
  if (error instanceof ConnectionClosedError && error.closeCode === 4003) return 'Your token expired: sign in again.';
  if (error instanceof ConnectionClosedError && error.closeCode === 4001) return `Sign-in failed: ${error.message}`;
  if (error instanceof ConnectError && (error.code === 'unauthorized' || error.code === 'forbidden')) {
    return `Sign-in failed: ${error.message}`;
  }
  return null;
}

export interface DashboardProps {
  credential: Credential;
  onSignOut: () => void;
  onCredentialRejected: (message: string) => void;
  onReconnect: () => void;
}

export function Dashboard({ credential, onSignOut, onCredentialRejected, onReconnect }: DashboardProps) {
  const url = useMemo(() => gatewayWsUrl(), []);
  const ws = useWebSocket(url, {
    ...(credential.kind === 'token' ? { token: credential.value } : { apiKey: credential.value }),
    // A dashboard should come back quickly after a gateway restart.
    reconnect: { baseMs: 500, maxMs: 10_000 },
    // Several events per frame when the gateway batches them (fewer frames to handle in bursts).
    batch: true,
  });
  const { client, state: connState, error } = ws;

  const [model, dispatch] = useReducer(reduce, undefined, initialState);
  const arrivals = useRef<number[]>([]);

  useEvent(
    '*',
    (env) => {
      // The snapshot is a burst of past events, not a rate.
      if (!isSnapshotEvent(env)) arrivals.current.push(Date.now());
      dispatch({ kind: 'event', env: env as Envelope });
    },
    client,
  );
  useEvent('$reset', (env) => dispatch({ kind: 'reset', reason: String(env.data.reason), at: Date.now() }), client);

  // A clock for the event rate and the reconnect countdown.
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), connState === 'reconnecting' ? 250 : 1000);
    return () => clearInterval(t);
  }, [connState]);
  const cutoff = now - RATE_WINDOW_MS;
  while (arrivals.current.length && arrivals.current[0]! < cutoff) arrivals.current.shift();
  const rate = arrivals.current.length / (RATE_WINDOW_MS / 1000);

  // Bad credential: back to the login form with the reason.
  const problem = connState === 'closed' ? credentialProblem(error) : null;
  useEffect(() => {
    if (problem) onCredentialRejected(problem);
  }, [problem, onCredentialRejected]);

  // Subscriptions: wait for auth_success (its permissions scope the agent subscription).
  // Set by auth_success (and kept across reconnects); the state change re-renders us.
  const auth = client.auth;
  const permissions = auth?.permissions;
  const scopeKey = JSON.stringify(agentScope(permissions));
  const [filters, setFilters] = useState<Filters>(DEFAULT_FILTERS);
  const specs = useMemo(
    () => subscriptionSpecs(filters, JSON.parse(scopeKey) as string[] | null),
    [filters, scopeKey],
  );
  const enabled = auth !== null;
  const subs: Record<CategoryKey, CategorySubscription> = {
    agents: useCategory(client, specs.agents, enabled),
    workflows: useCategory(client, specs.workflows, enabled),
    system: useCategory(client, specs.system, enabled),
    github: useCategory(client, specs.github, enabled),
  };

  // A line in the feed once the gateway has answered every subscription of the
  // current filters: everything above it was delivered under these filters.
  const specKey = CATEGORIES.map((c) => subs[c.key].key ?? '-').join('|');
  const settled = enabled && CATEGORIES.every((c) => ['off', 'active', 'error'].includes(subs[c.key].status));
  const marked = useRef<string | null>(null);
  useEffect(() => {
    if (!settled || marked.current === specKey) return;
    marked.current = specKey;
    const refused = CATEGORIES.filter((c) => subs[c.key].status === 'error').map(
      (c) => `${c.label}: ${subs[c.key].error?.code ?? 'error'}`,
    );
    dispatch({
      kind: 'marker',
      at: Date.now(),
      text: `Subscribed to ${describeFilters(filters)}${refused.length ? ` (refused: ${refused.join('; ')})` : ''}`,
    });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [settled, specKey]);

  // The Debug view: offered to admin credentials only (as the gateway's admin API requires).
  const admin = isAdmin(permissions);
  const [chosenView, setView] = useState<ViewKey>('live');
  const view: ViewKey = admin ? chosenView : 'live';
  const [inspected, setInspected] = useState<FeedItem | null>(null);
  const inspect = useCallback((item: FeedItem) => {
    setInspected(item);
    setView('debug');
  }, []);

  const signOut = useCallback(() => {
    client.close();
    onSignOut();
  }, [client, onSignOut]);

  return (
    <div className="app">
      <Header
        connState={connState}
        nextRetryAt={ws.nextRetryAt}
        now={now}
        error={error}
        rate={rate}
        total={model.total}
        subject={auth?.subject ?? null}
        expiresAt={auth?.expiresAt ?? null}
        gaps={model.gaps}
        onSignOut={signOut}
        onReconnect={onReconnect}
      />
      {admin && <ViewTabs view={view} onChange={setView} />}
      <FilterBar
        filters={filters}
        onChange={setFilters}
        knownAgents={model.knownAgents}
        scope={JSON.parse(scopeKey) as string[] | null}
        subs={subs}
      />
      {view === 'debug' ? (
        <Suspense fallback={<p className="notice">Loading the Debug view…</p>}>
          <DebugView
            credential={credential}
            permissions={permissions ?? []}
            feed={model.feed}
            inspected={inspected}
            onInspect={setInspected}
            ownConnectionId={client.connectionId}
            now={now}
          />
        </Suspense>
      ) : (
        <main className="grid">
          <div className="col-main">
            <AgentsPanel agents={model.agentOrder.map((id) => model.agents[id]!)} sub={subs.agents} now={now} />
            <TddPanel tdd={model.tdd} order={model.knownAgents} changes={model.phaseChanges} sub={subs.agents} />
            <WorkflowsPanel workflows={model.workflowOrder.map((id) => model.workflows[id]!)} sub={subs.workflows} now={now} />
          </div>
          <div className="col-side">
            <SystemPanel items={model.system} sub={subs.system} />
            <GithubPanel items={model.github} sub={subs.github} />
            <FeedPanel feed={model.feed} {...(admin ? { onSelect: inspect } : {})} />
          </div>
        </main>
      )}
    </div>
  );
}
