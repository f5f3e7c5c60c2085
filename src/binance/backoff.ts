/**
 * Reconnect delays for upstream Binance connections.
 *
 * Binance asks clients to back off after a close (reference §2.5: "exponential backoff with
 * jitter, e.g. 0.5 s doubling to 60 s") and may ban IPs that reconnect or over-send repeatedly
 * (§2.1). Jitter spreads the reconnects of many connections dropped at the same instant (a
 * network blip, the 24 h cut) so they do not arrive together as a storm (pitfall 8).
 */
export interface BackoffOptions {
  /** Delay before the first retry (attempt 0), before jitter. */
  initialDelayMs: number;
  /** Upper bound of any delay, jitter included. */
  maxDelayMs: number;
  /**
   * Fraction of the delay that is randomised, in [0, 1]: the delay is drawn from
   * `[base × (1 − jitter), base]`, so it never exceeds the cap and never drops below half of it
   * with the default 0.5.
   */
  jitter: number;
}

/** 0.5 s doubling to 60 s, half of it random (reference §2.5). */
export const DEFAULT_BACKOFF: BackoffOptions = {
  initialDelayMs: 500,
  maxDelayMs: 60_000,
  jitter: 0.5,
};

/**
 * The delay before retry number `attempt` (0 for the first retry): `initialDelayMs × 2^attempt`
 * capped at `maxDelayMs`, then reduced by up to `jitter` of itself.
 *
 * @param random injected source of uniform numbers in [0, 1) so tests are deterministic.
 */
export function backoffDelayMs(
  attempt: number,
  options: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const { initialDelayMs, maxDelayMs } = options;
  const jitter = Math.min(1, Math.max(0, options.jitter));
  const n = Math.max(0, Math.floor(attempt));
  // 2^n overflows to Infinity for huge n; Math.min keeps the cap.
  const base = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(n, 1_000));
  const r = Math.min(1, Math.max(0, random()));
  return Math.round(base * (1 - jitter * r));
}
