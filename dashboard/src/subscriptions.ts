/**
 * What the dashboard subscribes to. One subscription per category, so that a
 * credential that may read agents but not, say, workflows gets the agents and
 * sees "forbidden" on the workflows (the gateway refuses a whole subscription
 * when any event it could match is unreadable).
 *
 * The filters change the subscriptions themselves (unsubscribe + subscribe
 * with the new events and filters), not only what is shown.
 */
import type { AutoSDLCError, SubscriptionFilters, SubscriptionStatusResult } from '@autosdlc/ws-client';

export type CategoryKey = 'agents' | 'workflows' | 'system' | 'github';

export interface Category {
  key: CategoryKey;
  label: string;
  types: readonly string[];
  /** Its events carry `agentId`, so an agent filter applies. */
  agentScoped: boolean;
}

export const CATEGORIES: readonly Category[] = [
  {
    key: 'agents',
    label: 'Agents & TDD',
    types: [
      'agent_status',
      'agent_task_update',
      'agent_metric',
      'agent_log',
      'agent_error',
      'tdd_phase_change',
      'test_result',
      'coverage_update',
    ],
    agentScoped: true,
  },
  {
    key: 'workflows',
    label: 'Workflows',
    types: ['workflow_started', 'workflow_step_complete', 'workflow_complete', 'workflow_failed'],
    agentScoped: false,
  },
  {
    key: 'system',
    label: 'System',
    types: ['system_notification', 'system_alert', 'deployment_status'],
    agentScoped: false,
  },
  {
    key: 'github',
    label: 'GitHub',
    types: ['github_pr_update', 'github_issue_update', 'github_workflow_update'],
    agentScoped: false,
  },
];

export const ALL_TYPES: readonly string[] = CATEGORIES.flatMap((c) => c.types);

export interface Filters {
  /** Agent ids to subscribe to; empty: every agent. */
  agents: string[];
  /** Event types to subscribe to (a subset of ALL_TYPES). */
  types: string[];
}

export const DEFAULT_FILTERS: Filters = { agents: [], types: [...ALL_TYPES] };

export type SubscriptionSpec =
  | { active: true; events: string[]; filters?: SubscriptionFilters }
  | { active: false; reason: string };

/**
 * Agents a credential may read, when it is limited to some: `read:agent:coder-001`
 * gives ["coder-001"]; `read:*`, `read:agent:*` (or admin on them) give null (all).
 * Also null when the credential names no agent at all (the subscription is then
 * sent unfiltered and the gateway answers `forbidden`, which the dashboard shows).
 */
export function agentScope(permissions: readonly string[] | undefined): string[] | null {
  if (!permissions) return null;
  const ids: string[] = [];
  for (const p of permissions) {
    const i = p.indexOf(':');
    if (i < 0) continue;
    const action = p.slice(0, i);
    const resource = p.slice(i + 1);
    if (action !== 'read' && action !== 'admin') continue;
    if (resource === '*' || resource === 'agent:*') return null;
    if (resource.startsWith('agent:')) ids.push(resource.slice('agent:'.length));
  }
  return ids.length ? [...new Set(ids)].sort() : null;
}

/** The subscription of each category for the given filters. */
export function subscriptionSpecs(filters: Filters, scope: string[] | null): Record<CategoryKey, SubscriptionSpec> {
  const out = {} as Record<CategoryKey, SubscriptionSpec>;
  const selected = new Set(filters.types);
  const userAgents = [...new Set(filters.agents)].sort();
  for (const c of CATEGORIES) {
    const events = c.types.filter((t) => selected.has(t));
    if (events.length === 0) {
      out[c.key] = { active: false, reason: 'no event types selected' };
      continue;
    }
    if (c.agentScoped) {
      const agents = userAgents.length ? userAgents : scope;
      out[c.key] = agents ? { active: true, events, filters: { agentId: agents } } : { active: true, events };
    } else if (userAgents.length) {
      // These events name no agent: an agentId filter could never match them.
      out[c.key] = { active: false, reason: 'paused by the agent filter' };
    } else {
      out[c.key] = { active: true, events };
    }
  }
  return out;
}

/** Human summary of the filters, for the feed's "subscribed" marker. */
export function describeFilters(filters: Filters): string {
  const agents = filters.agents.length ? `agent ${filters.agents.join(', ')}` : 'all agents';
  const n = filters.types.length;
  const types = n === ALL_TYPES.length ? 'all event types' : n === 1 ? filters.types[0]! : `${n} event types`;
  return `${agents}, ${types}`;
}

export type SubStatus = 'off' | 'pending' | 'active' | 'error';

/** What the dashboard shows about one category's subscription. */
export interface CategorySubscription {
  /** The subscription this status belongs to (events + filters), null when off. */
  key: string | null;
  status: SubStatus;
  subscriptionId?: string;
  error?: AutoSDLCError;
  /** Why it is off, when it is. */
  reason?: string;
}

/** The events and filters of a spec as one comparable string (as the library's useSubscription compares them). */
export function specKey(spec: SubscriptionSpec): string | null {
  return spec.active ? JSON.stringify([spec.events, spec.filters ?? null]) : null;
}

/**
 * A category's status from the library's `useSubscription` result: `off`
 * (with the reason) when the spec is inactive or sign-in is not done yet,
 * otherwise the core's status of the subscription for this very spec.
 */
export function categorySubscription(
  spec: SubscriptionSpec,
  signedIn: boolean,
  result: SubscriptionStatusResult,
): CategorySubscription {
  const key = specKey(spec);
  if (!spec.active) return { key: null, status: 'off', reason: spec.reason };
  if (!signedIn || key === null) return { key: null, status: 'off', reason: 'waiting for sign-in' };
  switch (result.status) {
    case 'active':
      return { key, status: 'active', ...(result.subscriptionId ? { subscriptionId: result.subscriptionId } : {}) };
    case 'error':
      return { key, status: 'error', ...(result.error ? { error: result.error } : {}) };
    case 'idle':
      // Enabled yet idle: the subscription was removed (by the gateway or an admin).
      return { key, status: 'off', reason: 'removed by the gateway' };
    default:
      return { key, status: 'pending' };
  }
}

