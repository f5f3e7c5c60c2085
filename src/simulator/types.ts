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
}
