/**
 * Stream names and their routed paths, as Binance USDⓈ-M serves them since the 2026 split
 * (reference §1.2): `/public` carries order-book data and book tickers, `/market` everything
 * else, `/private` user data. A stream sent to the wrong path is acknowledged and then silent,
 * so both the gateway and the simulator route by this one table.
 */

import { KLINE_INTERVALS } from './rules.js';

export type StreamPath = 'public' | 'market' | 'private';

export interface ParsedStream {
  /** lower-case symbol, or undefined for all-market streams (`!ticker@arr`) */
  symbol?: string;
  /** the stream type, e.g. `depth`, `aggTrade`, `markPrice` */
  type: string;
  path: StreamPath;
}

const KLINE_SET: ReadonlySet<string> = new Set(KLINE_INTERVALS);

const ALL_MARKET: Record<string, ParsedStream> = {
  '!bookTicker': { type: 'bookTicker', path: 'public' },
  '!markPrice@arr': { type: 'markPrice', path: 'market' },
  '!markPrice@arr@1s': { type: 'markPrice', path: 'market' },
  '!miniTicker@arr': { type: 'miniTicker', path: 'market' },
  '!ticker@arr': { type: 'ticker', path: 'market' },
  '!forceOrder@arr': { type: 'forceOrder', path: 'market' },
  '!contractInfo': { type: 'contractInfo', path: 'market' },
  '!assetIndex@arr': { type: 'assetIndex', path: 'market' },
};

/**
 * The undocumented raw `<s>@trade` stream is served on `/public` (observed 2026-04, before the
 * legacy URLs were retired; ccxt routes it there), unlike `aggTrade`, which is `/market` only.
 */
const PUBLIC_SUFFIXES = /^(bookTicker|trade|depth(5|10|20)?(@100ms|@500ms)?|rpiDepth@500ms)$/;
const MARKET_SUFFIXES =
  /^(aggTrade|markPrice(?:@1s)?|miniTicker|ticker|forceOrder|compositeIndex|kline_(\w+))$/;

/**
 * Parses a stream name exactly as written (case matters: Binance only serves lower-case
 * symbols). Returns undefined for anything that is not a known market stream.
 */
export function parseStreamName(name: string): ParsedStream | undefined {
  const all = ALL_MARKET[name];
  if (all) return all;
  const at = name.indexOf('@');
  if (at <= 0) return undefined;
  const symbol = name.slice(0, at);
  const suffix = name.slice(at + 1);
  if (PUBLIC_SUFFIXES.test(suffix)) {
    const type = suffix.startsWith('depth')
      ? 'depth'
      : suffix.startsWith('rpiDepth')
        ? 'rpiDepth'
        : suffix === 'trade'
          ? 'trade'
          : 'bookTicker';
    return { symbol, type, path: 'public' };
  }
  const m = MARKET_SUFFIXES.exec(suffix);
  if (m) {
    const interval = m[2];
    if (interval !== undefined && !KLINE_SET.has(interval)) return undefined;
    const type = (m[1] ?? '').split('@')[0]!.replace(/_.*$/, '');
    return { symbol, type, path: 'market' };
  }
  return undefined;
}

/** The path a market stream must be requested on, or undefined for an unknown stream. */
export function streamPath(name: string): StreamPath | undefined {
  return parseStreamName(name)?.path;
}
