export interface BackoffOptions {
  /** Upper bound of the first delay. */
  baseMs: number;
  /** No delay is ever longer than this. */
  maxMs: number;
}

/**
 * Exponential backoff with full jitter: a uniform delay in
 * `[0, min(maxMs, baseMs * 2^attempt))`. Full jitter (rather than a fixed
 * delay plus a little noise) spreads the reconnects of many clients that lost
 * the same server at the same instant, so a restarted gateway is not hit by a
 * synchronized wave. `attempt` counts from 0.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  // 2 ** 1024 is Infinity, which Math.min handles; clamp the exponent anyway so
  // a long outage cannot produce NaN from Infinity * 0.
  const cap = Math.min(options.maxMs, options.baseMs * 2 ** Math.min(attempt, 64));
  return Math.floor(random() * cap);
}
