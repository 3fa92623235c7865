/** Every agent id seen so far, sorted (the agent filter offers these; it survives filter changes). */
import type { DashboardState } from './types';

export function withKnownAgent(state: DashboardState, id: string): string[] {
  return state.knownAgents.includes(id) ? state.knownAgents : [...state.knownAgents, id].sort();
}
