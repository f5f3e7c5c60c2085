/**
 * Small helpers behind the simulator's REST history (aggTrades, trades, klines, fundingRate,
 * userTrades): a bounded append-only log with binary search, and Binance's kline interval
 * arithmetic over the market's per-minute buckets.
 */
import type { KlineInterval, RangeQuery } from './types.js';

export const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
/** 1970-01-05, the first Monday after the epoch: weekly klines open on Mondays 00:00 UTC. */
const FIRST_MONDAY_MS = 4 * DAY_MS;

/** Length of every interval but `1M` (calendar months). */
const FIXED_INTERVAL_MS: Record<Exclude<KlineInterval, '1M'>, number> = {
  '1m': MINUTE_MS,
  '3m': 3 * MINUTE_MS,
  '5m': 5 * MINUTE_MS,
  '15m': 15 * MINUTE_MS,
  '30m': 30 * MINUTE_MS,
  '1h': HOUR_MS,
  '2h': 2 * HOUR_MS,
  '4h': 4 * HOUR_MS,
  '6h': 6 * HOUR_MS,
  '8h': 8 * HOUR_MS,
  '12h': 12 * HOUR_MS,
  '1d': DAY_MS,
  '3d': 3 * DAY_MS,
  '1w': 7 * DAY_MS,
};

/**
 * An append-only log that keeps its newest `capacity` items (the oldest fall off), indexed
 * oldest first. Appending is amortized O(1); `search` is a binary search.
 */
export class BoundedLog<T> {
  private items: T[] = [];
  private head = 0;

  constructor(readonly capacity: number) {}

  get length(): number {
    return this.items.length - this.head;
  }

  /** The item at `index` (0 = oldest kept); `index` must be in range. */
  at(index: number): T {
    const item = this.items[this.head + index];
    if (item === undefined) throw new RangeError(`BoundedLog index ${index} out of range`);
    return item;
  }

  push(item: T): void {
    if (this.capacity <= 0) return;
    this.items.push(item);
    if (this.items.length - this.head > this.capacity) {
      this.head += 1;
      if (this.head >= this.capacity) {
        this.items.splice(0, this.head);
        this.head = 0;
      }
    }
  }

  /** The first index whose item satisfies `pred`, for a `pred` that is false…false true…true. */
  search(pred: (item: T) => boolean): number {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pred(this.at(mid))) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Items [from, to), oldest first. */
  slice(from: number, to: number): T[] {
    return this.items.slice(this.head + Math.max(0, from), this.head + Math.max(0, to));
  }
}

/**
 * The items a Binance list endpoint answers, ascending: from `first` on when the query has a
 * start (`fromId` or `startTime`), else the newest `limit` of those at or before `end`.
 * `first` is the index of the first item at or after the start; `end` the index just past the
 * last item at or before the end of the window.
 */
export function windowIndices(
  first: number,
  end: number,
  limit: number,
  fromStart: boolean,
): [number, number] {
  if (end <= first) return [first, first];
  return fromStart ? [first, Math.min(end, first + limit)] : [Math.max(first, end - limit), end];
}

/** Open time of the candle that contains `t` (UTC; weeks open on Monday, months on the 1st). */
export function candleOpen(interval: KlineInterval, t: number): number {
  if (interval === '1M') {
    const d = new Date(t);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  }
  const ms = FIXED_INTERVAL_MS[interval];
  if (interval === '1w') return Math.floor((t - FIRST_MONDAY_MS) / ms) * ms + FIRST_MONDAY_MS;
  return Math.floor(t / ms) * ms;
}

/** Open time of the candle after the one that opens at `open`. */
export function candleNext(interval: KlineInterval, open: number): number {
  if (interval === '1M') {
    const d = new Date(open);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  }
  return open + FIXED_INTERVAL_MS[interval];
}

/**
 * Open times of the candles a klines request answers, ascending. Candles exist from the one
 * containing `firstTime` to the one containing `lastTime`; Binance's rules then apply: open
 * time ≥ `startTime`, open time ≤ `endTime`, the first `limit` from the start when a
 * `startTime` is given, else the newest `limit`.
 */
export function candleOpens(
  interval: KlineInterval,
  firstTime: number,
  lastTime: number,
  query: RangeQuery,
): number[] {
  let lo = candleOpen(interval, firstTime);
  let hi = candleOpen(interval, lastTime);
  if (query.endTime !== undefined) hi = Math.min(hi, candleOpen(interval, query.endTime));
  if (query.startTime !== undefined) {
    const open = candleOpen(interval, query.startTime);
    lo = Math.max(lo, open >= query.startTime ? open : candleNext(interval, open));
  }
  const opens: number[] = [];
  if (lo > hi) return opens;
  if (query.startTime !== undefined) {
    for (let t = lo; t <= hi && opens.length < query.limit; t = candleNext(interval, t)) {
      opens.push(t);
    }
    return opens;
  }
  for (let t = hi; t >= lo && opens.length < query.limit; t = candleOpen(interval, t - 1)) {
    opens.push(t);
  }
  return opens.reverse();
}

/** Index of the first element whose `minute` is ≥ `minute` (the array sorted by minute). */
export function firstMinuteAtOrAfter(
  buckets: readonly { minute: number }[],
  minute: number,
): number {
  let lo = 0;
  let hi = buckets.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (buckets[mid]!.minute < minute) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
