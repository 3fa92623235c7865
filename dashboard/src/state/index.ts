/**
 * The dashboard's model of the world, built only from the events it receives.
 *
 * Pure: `reduce(state, action)` returns a new state and never mutates the old
 * one, so React can compare by identity and the unit tests need no browser.
 * Each domain (agents, TDD, workflows, system, GitHub) has its own reducers
 * in its own file, keyed by event type; this root reducer counts the event,
 * hands it to its domain, and adds its line to the feed.
 */
import { isSnapshotEvent, type Envelope } from '@autosdlc/ws-client';

import { agentReducers } from './agents';
import { clip, num, obj, str } from './coerce';
import { defaultSummary, pushFeed } from './feed';
import { githubReducers } from './github';
import { systemReducers } from './system';
import { tddReducers } from './tdd';
import { initialState, type Action, type DashboardState, type EventReducer } from './types';
import { workflowReducers } from './workflows';

export * from './types';
export { safeUrl } from './coerce';
export { formatBytes, formatDuration } from './format';
export { severityCounts, sortSystem } from './system';

const EVENT_REDUCERS: Readonly<Record<string, EventReducer>> = {
  ...agentReducers,
  ...tddReducers,
  ...workflowReducers,
  ...systemReducers,
  ...githubReducers,
};

export function reduce(state: DashboardState, action: Action): DashboardState {
  switch (action.kind) {
    case 'clear':
      return { ...initialState(), knownAgents: state.knownAgents, seq: state.seq };
    case 'reset':
      return pushFeed({ ...state, gaps: state.gaps + 1 }, {
        id: `gap-${state.seq + 1}`,
        type: 'gap',
        at: action.at,
        summary:
          action.reason === 'session_not_resumed'
            ? 'Events may have been missed (session not resumed); the current state is asked for again.'
            : `Events may have been missed (${action.reason.replace(/_/g, ' ')}); the views catch up as new events arrive.`,
        severity: 'warning',
      });
    case 'marker':
      return pushFeed(state, { id: `marker-${state.seq + 1}`, type: 'marker', at: action.at, summary: action.text });
    case 'event':
      return applyEvent(state, action.env);
    default:
      return state;
  }
}

/** Every event counts and gets a feed line, even one whose payload its domain cannot use. */
function applyEvent(state0: DashboardState, env: Envelope): DashboardState {
  const data = obj(env.data) ?? {};
  const at = num(env.timestamp) ?? Date.now();
  const agentId = str(data.agentId);
  const counted: DashboardState = { ...state0, total: state0.total + 1 };
  const outcome = Object.hasOwn(EVENT_REDUCERS, env.type) ? EVENT_REDUCERS[env.type]!(counted, { env, data, at, agentId }) : null;
  const summary = outcome?.summary ?? defaultSummary(env.type, data);
  const severity = outcome?.severity;
  return pushFeed(outcome?.state ?? counted, {
    id: env.id,
    type: env.type,
    at,
    ...(agentId ? { agentId } : {}),
    summary: clip(summary),
    ...(severity ? { severity } : {}),
    ...(isSnapshotEvent(env) ? { snapshot: true as const } : {}),
    envelope: env,
  });
}
