/**
 * Liveness and credentials over time: application pings every heartbeat
 * interval (browsers cannot see WebSocket pings), a watchdog that declares
 * the link dead after `heartbeat + pongTimeout` of silence, and the in-band
 * token refresh before the token expires. The client says what to do when
 * each fires; this decides when.
 */
import { MAX_TIMER_MS, type NamedTimers } from './timers.js';

/**
 * When to refresh a token that expires at `expiresAt`: `margin` before, but
 * never in a tight loop (at least 1 s, and not before half its remaining life).
 */
export function tokenRefreshDelay(expiresAt: number, now: number, margin: number): number {
  const left = expiresAt - now;
  return Math.min(MAX_TIMER_MS, Math.max(1000, left - margin, left / 2));
}

export class Keepalive {
  constructor(
    private readonly timers: NamedTimers,
    private readonly pongTimeoutMs: number,
    private readonly refreshMarginMs: number,
  ) {}

  /** Something arrived (or an attempt started): restart the silence countdown. */
  alive(heartbeatMs: number, onDead: () => void): void {
    this.timers.once('watchdog', onDead, heartbeatMs + this.pongTimeoutMs);
  }

  startPings(heartbeatMs: number, ping: () => void): void {
    this.timers.every('ping', ping, heartbeatMs);
  }

  /** Replaces any scheduled refresh; none without an expiry. */
  scheduleRefresh(expiresAt: number | null | undefined, refresh: () => void): void {
    this.timers.clear('refresh');
    if (typeof expiresAt !== 'number') return;
    this.timers.once('refresh', refresh, tokenRefreshDelay(expiresAt, Date.now(), this.refreshMarginMs));
  }
}
