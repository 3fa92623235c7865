/**
 * A node's health from its last heartbeat. The registry drops a node that
 * stopped heartbeating within 15 s (CONTRACT §10); heartbeats come every few
 * seconds, so one not seen for 5 s is late, and one still listed after 15 s
 * is about to leave.
 */
import type { NodeInfo } from './model';

export type NodeHealth = 'ok' | 'late' | 'leaving' | 'unknown';

export const LATE_AFTER_MS = 5000;
export const LEAVING_AFTER_MS = 15_000;

export function nodeHealth(node: NodeInfo, serverNowMs: number): NodeHealth {
  if (node.lastSeen === null) return 'unknown';
  const age = serverNowMs - node.lastSeen;
  if (age >= LEAVING_AFTER_MS) return 'leaving';
  if (age >= LATE_AFTER_MS) return 'late';
  return 'ok';
}

/** Nodes by id: a stable order, so rows do not jump between polls. */
export function sortNodes(nodes: readonly NodeInfo[]): NodeInfo[] {
  return [...nodes].sort((a, b) => a.nodeId.localeCompare(b.nodeId));
}
