import type { KlineInterval } from '../binance/rules.js';

/**
 * Interfaces shared by the simulator's parts. The market model, the accounts and the replay
 * source produce events; the stream server (`ws-server.ts`) routes them to the connections
 * subscribed to each stream name; the REST router (`rest.ts`) asks them for snapshots.
 */

/** The three routed stream paths of Binance USDⓈ-M (2026). */
export type StreamPath = 'public' | 'market' | 'private';

/** Wall clock, injectable so tests can pin time. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/**
 * Where producers publish. `stream` is the exact lower-case stream name a client subscribes to
 * (`btcusdt@depth@100ms`, `!ticker@arr`, or a listenKey on `/private`). `payload` is the raw
 * event JSON (already serialized, so one event is serialized once whatever the number of
 * subscribers). Producers call `wants()` first to skip building events nobody listens to.
 */
export interface StreamSink {
  wants(stream: string): boolean;
  publish(stream: string, payload: string): void;
}

/** A symbol the simulator trades, with its exchange filters. */
export interface SimSymbolSpec {
  symbol: string; // e.g. BTCUSDT
  baseAsset: string;
  quoteAsset: string;
  pricePrecision: number; // decimals of tickSize
  quantityPrecision: number; // decimals of stepSize
  tickSize: string; // e.g. "0.10"
  stepSize: string; // e.g. "0.001"
  initialPrice: string; // e.g. "67000.00"
  status?: string; // TRADING unless set
}

/** A REST depth snapshot as Binance returns it (`GET /fapi/v1/depth`). */
export interface DepthSnapshot {
  lastUpdateId: number;
  E: number;
  T: number;
  bids: [string, string][];
  asks: [string, string][];
}

/** One fill of a taker order against the book. */
export interface Fill {
  tradeId: number;
  price: string;
  quantity: string;
  /** price × quantity, as a decimal string */
  quote: string;
}

/** The market as the accounts see it: where orders are filled. */
export interface MarketForAccounts {
  /** True when the symbol exists (any status). */
  hasSymbol(symbol: string): boolean;
  spec(symbol: string): SimSymbolSpec | undefined;
  /**
   * Executes a taker order against the book now, sweeping levels best-first, and publishes
   * the resulting aggTrade/depth/bookTicker events like any other trade. `limitPrice`, when
   * given, stops the sweep at that price (a marketable LIMIT order); the unfilled rest is
   * returned to the caller (the simulator's accounts treat it as IOC-cancelled or resting).
   */
  executeTaker(symbol: string, side: 'BUY' | 'SELL', quantity: string, limitPrice?: string): Fill[];
  /** Current mark price (mid of the book) as a decimal string. */
  markPrice(symbol: string): string;
  /** Every listed symbol, for the endpoints that answer all symbols when none is given. */
  symbols?(): string[];
}

/** A REST request as the simulator's HTTP layer hands it to a route. */
export interface SimRequest {
  method: string;
  /** path without the query string, e.g. `/fapi/v1/depth` */
  path: string;
  /** the raw query string without `?`, exactly as sent (signatures cover these bytes) */
  rawQuery: string;
  /** the raw request body (form-encoded for POST/PUT/DELETE), '' when none */
  body: string;
  /** query and body parameters merged; the query string wins on duplicates, as on Binance */
  params: URLSearchParams;
  /** lower-case header names */
  headers: Record<string, string | undefined>;
}

/** A REST answer. `weight` is what the call costs against X-MBX-USED-WEIGHT-1M. */
export interface SimResponse {
  status: number;
  /** JSON text (ids above 2^53 written as bare numbers) */
  body: string;
  headers?: Record<string, string>;
  weight?: number;
}

/** Binance's error body `{"code":-1121,"msg":"Invalid symbol."}` with its HTTP status. */
export function binanceError(status: number, code: number, msg: string, weight = 1): SimResponse {
  return { status, body: JSON.stringify({ code, msg }), weight };
}

export function jsonResponse(body: unknown, weight = 1): SimResponse {
  return { status: 200, body: typeof body === 'string' ? body : JSON.stringify(body), weight };
}

/** A REST `GET /fapi/v1/aggTrades` row, as Binance writes it. */
export interface AggTradeRow {
  /** aggregate trade id */
  a: number;
  p: string;
  q: string;
  /** quantity without RPI orders (the simulator has none: equal to `q`) */
  nq: string;
  /** first and last trade id */
  f: number;
  l: number;
  T: number;
  /** the buyer was the maker (the taker sold) */
  m: boolean;
}

/** A REST `GET /fapi/v1/trades` / `historicalTrades` row. */
export interface TradeRow {
  id: number;
  price: string;
  qty: string;
  quoteQty: string;
  time: number;
  isBuyerMaker: boolean;
  isRPITrade: boolean;
}

/**
 * One kline as Binance's REST API writes it: `[openTime, open, high, low, close, volume,
 * closeTime, quoteVolume, trades, takerBuyBase, takerBuyQuote, "0"]`. Mark and index price
 * klines use the same shape with `"0"` in the volume fields and the number of samples as
 * `trades`.
 */
export type KlineRow = [
  number,
  string,
  string,
  string,
  string,
  string,
  number,
  string,
  number,
  string,
  string,
  string,
];

export { KLINE_INTERVALS, type KlineInterval } from '../binance/rules.js';

/** Which price a kline series follows. */
export type KlineKind = 'trade' | 'mark' | 'index';

/** A `GET /fapi/v1/fundingRate` row. */
export interface FundingRateRow {
  symbol: string;
  fundingRate: string;
  fundingTime: number;
  markPrice: string;
}

/** A time-window query, already validated: `limit` is within the endpoint's range. */
export interface RangeQuery {
  startTime?: number;
  endTime?: number;
  limit: number;
}

/** The history a live market keeps for the REST history endpoints (none in replay mode). */
export interface MarketHistory {
  /** Aggregate trades by `fromId`, by time window, or the most recent; ascending. */
  aggTrades(symbol: string, query: RangeQuery & { fromId?: number }): AggTradeRow[];
  /** The most recent raw trades, ascending; from `fromId` on when given. */
  trades(symbol: string, limit: number, fromId?: number): TradeRow[];
  klines(symbol: string, kind: KlineKind, interval: KlineInterval, query: RangeQuery): KlineRow[];
  /** Funding settlements of one symbol or all, ascending by time. */
  fundingRates(symbol: string | undefined, query: RangeQuery): FundingRateRow[];
}

/** What the REST layer needs from a market-data producer (the live model or a replay). */
export interface MarketDataSource {
  /** Binance-shaped `exchangeInfo.symbols[]` entries. */
  exchangeInfoSymbols(): object[];
  /** True when the upper-case symbol is listed (any status). */
  hasSymbol(symbol: string): boolean;
  /** Top `limit` levels per side, best first. */
  snapshot(symbol: string, limit: number): DepthSnapshot;
  /** The REST `/fapi/v1/ticker/24hr` object for one symbol, if known. */
  ticker24h(symbol: string): object | undefined;
  /** Current mark price as a decimal string, if known. */
  markPrice(symbol: string): string;
  /** Trades, klines and funding history; absent in replay mode (the endpoints answer []). */
  readonly history?: MarketHistory;
  start(): void;
  stop(): void;
}

/** A route that owns some REST paths (accounts) and answers undefined for the rest. */
export interface RestRoute {
  route(req: SimRequest): SimResponse | undefined;
}
