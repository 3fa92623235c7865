import { isEventType } from './types.js';

/**
 * Handler patterns: an exact type, a prefix glob (`agent_*`) or `*`.
 * Globs match event types only: control frames (connect, pong,
 * subscription_update, ...) and the client's `$reset` reach only handlers
 * registered under their exact name, so `on('*')` is "every event".
 */
export function isGlob(pattern: string): boolean {
  return pattern.endsWith('*');
}

export function globMatches(pattern: string, type: string): boolean {
  if (!isEventType(type)) return false;
  return type.startsWith(pattern.slice(0, -1));
}
