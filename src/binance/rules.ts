/**
 * Numbers Binance USDⓈ-M publishes, shared by the gateway (which must respect them) and the
 * simulator (which must enforce them), so the two can never disagree.
 */

/** Kline intervals of USDⓈ-M (reference §4.5; `1s` is spot only: -1120 on fapi). */
export const KLINE_INTERVALS = [
  '1m',
  '3m',
  '5m',
  '15m',
  '30m',
  '1h',
  '2h',
  '4h',
  '6h',
  '8h',
  '12h',
  '1d',
  '3d',
  '1w',
  '1M',
] as const;
export type KlineInterval = (typeof KLINE_INTERVALS)[number];

/** `GET /fapi/v1/depth` limits and their REQUEST_WEIGHT (reference §5); no 5000 on futures. */
export const DEPTH_LIMIT_WEIGHT: Readonly<Record<number, number>> = {
  5: 2,
  10: 2,
  20: 2,
  50: 2,
  100: 5,
  500: 10,
  1000: 20,
};

/** The allowed depth limits, ascending. */
export const DEPTH_LIMITS: readonly number[] = Object.keys(DEPTH_LIMIT_WEIGHT)
  .map(Number)
  .sort((a, b) => a - b);
