/**
 * What survives reconnects: the session to resume, the last event delivered
 * (the resume position), the ids of recent events (to drop duplicates of
 * the replay overlap), and what the last handshake said (connection id,
 * limits, auth, heartbeat interval).
 */
import { DEFAULTS } from './config.js';
import { RecentIds } from './dedup.js';
import type { ResumePoint } from './handshake.js';
import type { AuthSuccessData, ConnectData, ConnectionLimits, Envelope } from './types.js';

/** True for an event delivered as part of a subscription's snapshot (protocol 1.1). */
export function isSnapshotEvent(env: Envelope): boolean {
  return env.metadata?.snapshot === true;
}

export class ClientSession {
  sessionId: string | null = null;
  /** Id of the last event delivered to the application (sent on reconnect to resume). */
  lastEventId: string | null = null;
  connectionId: string | null = null;
  limits: ConnectionLimits | null = null;
  auth: AuthSuccessData | null = null;
  heartbeatMs: number = DEFAULTS.heartbeatIntervalMs;
  private readonly seen: RecentIds;

  constructor(dedupSize: number) {
    this.seen = new RecentIds(dedupSize);
  }

  resumePoint(): ResumePoint {
    return { sessionId: this.sessionId, lastEventId: this.lastEventId };
  }

  /** A `connect` frame: its heartbeat interval applies at once (the watchdog uses it). */
  sawConnect(info: ConnectData): void {
    const hb = info.heartbeatInterval;
    if (typeof hb === 'number' && hb > 0) this.heartbeatMs = hb;
  }

  /** The handshake completed; the last `connect` frame before it is authoritative. */
  established(info: ConnectData | null, auth: AuthSuccessData | null): void {
    if (info) {
      if (typeof info.sessionId === 'string') this.sessionId = info.sessionId;
      if (typeof info.connectionId === 'string') this.connectionId = info.connectionId;
      this.limits = info.limits && typeof info.limits === 'object' ? info.limits : null;
    }
    this.auth = auth;
  }

  /**
   * False for an event seen recently (a duplicate). Otherwise a live event
   * becomes the resume position; a snapshot event (`metadata.snapshot`) does
   * not: it is older than the live stream, and resuming after it would
   * replay from the past.
   */
  accept(env: Envelope): boolean {
    if (typeof env.id !== 'string' || env.id === '') return true;
    if (!this.seen.add(env.id)) return false;
    if (!isSnapshotEvent(env)) this.lastEventId = env.id;
    return true;
  }

  /** `close()`: the next connect() starts a fresh session. */
  forget(): void {
    this.sessionId = null;
    this.lastEventId = null;
  }
}
