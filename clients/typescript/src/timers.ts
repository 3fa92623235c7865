/**
 * The client's timers by name (reconnect backoff, heartbeat watchdog,
 * stability window, token refresh, ping interval), so that "drop everything
 * tied to this socket" is one call and no timer outlives `close()`.
 */

type Timer = ReturnType<typeof setTimeout>;

/** Timers beyond 2^31-1 ms fire immediately in browsers and Node. */
export const MAX_TIMER_MS = 2_147_483_647;

export type TimerName = 'retry' | 'watchdog' | 'stable' | 'refresh' | 'ping';

export class NamedTimers {
  private readonly timeouts = new Map<TimerName, Timer>();
  private readonly intervals = new Map<TimerName, ReturnType<typeof setInterval>>();

  /** Runs `fn` once after `ms` (clamped), replacing any timer of that name. */
  once(name: TimerName, fn: () => void, ms: number): void {
    this.clear(name);
    const timer = setTimeout(() => {
      this.timeouts.delete(name);
      fn();
    }, Math.min(ms, MAX_TIMER_MS));
    this.timeouts.set(name, timer);
  }

  /** Runs `fn` every `ms`, replacing any timer of that name. */
  every(name: TimerName, fn: () => void, ms: number): void {
    this.clear(name);
    this.intervals.set(name, setInterval(fn, Math.min(ms, MAX_TIMER_MS)));
  }

  clear(...names: TimerName[]): void {
    for (const name of names) {
      const timeout = this.timeouts.get(name);
      if (timeout !== undefined) clearTimeout(timeout);
      this.timeouts.delete(name);
      const interval = this.intervals.get(name);
      if (interval !== undefined) clearInterval(interval);
      this.intervals.delete(name);
    }
  }
}
