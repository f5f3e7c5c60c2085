/**
 * The simulator's market model: one order book per symbol, a latent price with clustered
 * volatility, background makers and takers, and every Binance USDⓈ-M market stream derived from
 * them (diff and partial depth, bookTicker, aggTrade, markPrice, tickers, kline_1m), plus the
 * REST views (depth snapshot, 24 h ticker, exchangeInfo) and the taker-order entry the
 * simulator's accounts fill against.
 *
 * It also keeps the history Binance serves over REST: the newest aggregate trades of each symbol
 * (`aggTrades`, and the raw `trades` they are made of), per-minute trade, mark and index price
 * buckets for a week (`klines`, `markPriceKlines`, `indexPriceKlines`), and the funding rate at
 * each 8 h mark (`fundingRate`). All of it is derived from the same trades as the streams.
 *
 * Two properties matter more than realism:
 * - **Determinism.** Book states, trades and update ids depend only on the seed, the number of
 *   `step()` calls and the orders passed to `executeTaker()`; never on timers, the clock or who
 *   is subscribed. Tests drive `step()` directly.
 * - **Snapshot/diff agreement.** `snapshot(symbol, 1000)` (the whole book) plus the diffs emitted
 *   after it, applied by Binance's futures rules (reference §5), rebuild exactly the model's own
 *   book, on every diff speed. Each change of any book takes the next id of one global counter
 *   (with random gaps standing in for other symbols, as on Binance), and every change lands in
 *   the open window of each speed; a window's `U`/`u` are the ids of its first and last change
 *   and its `pu` is the `u` of the previous window of that speed.
 */
import {
  BoundedLog,
  candleNext,
  candleOpens,
  firstMinuteAtOrAfter,
  windowIndices,
} from './history.js';
import { Rng } from './rng.js';
import {
  systemClock,
  type AggTradeRow,
  type Clock,
  type DepthSnapshot,
  type Fill,
  type FundingRateRow,
  type KlineInterval,
  type KlineKind,
  type KlineRow,
  type MarketDataSource,
  type MarketForAccounts,
  type MarketHistory,
  type RangeQuery,
  type SimSymbolSpec,
  type StreamSink,
  type TradeRow,
} from './types.js';

/**
 * The symbols the simulator trades unless told otherwise, with Binance's real 2026 filters
 * (BTCUSDT tick 0.10, ETHUSDT tick 0.01, SOLUSDT tick 0.0100 / step 1) so that a gateway meets
 * the same decimal shapes as on the exchange: `pricePrecision` can exceed the tick's decimals.
 */
export const DEFAULT_SYMBOLS: SimSymbolSpec[] = [
  {
    symbol: 'BTCUSDT',
    baseAsset: 'BTC',
    quoteAsset: 'USDT',
    pricePrecision: 2,
    quantityPrecision: 3,
    tickSize: '0.10',
    stepSize: '0.001',
    initialPrice: '67000.00',
  },
  {
    symbol: 'ETHUSDT',
    baseAsset: 'ETH',
    quoteAsset: 'USDT',
    pricePrecision: 2,
    quantityPrecision: 3,
    tickSize: '0.01',
    stepSize: '0.001',
    initialPrice: '3500.00',
  },
  {
    symbol: 'SOLUSDT',
    baseAsset: 'SOL',
    quoteAsset: 'USDT',
    pricePrecision: 4,
    quantityPrecision: 0,
    tickSize: '0.0100',
    stepSize: '1',
    initialPrice: '150.0000',
  },
];

/** Options of the market model. Every field has a default in `MARKET_DEFAULTS`. */
export interface MarketOptions {
  /** Symbols traded, each with its own book and streams. */
  symbols: readonly SimSymbolSpec[];
  /** Seed of the one random stream everything is drawn from. */
  seed: number;
  /** Source of event times (`E`, `T`) and of the 24 h statistics' minute buckets. */
  clock: Clock;
  /** Where events go; producers skip building events `sink.wants()` declines. */
  sink: StreamSink;
  /**
   * Interval of `step()` under `start()`. Every schedule (depth windows of 100/250/500 ms,
   * markPrice 1 s/3 s, tickers, kline) is counted in steps of this length, so that the emitted
   * sequence depends on the step count only.
   */
  tickMs: number;
  /** Levels per side after each step: a `limit=1000` snapshot is then the whole book. */
  bookLevels: number;
  /** Mean taker orders per second per symbol (long-run mean of a clustered, Hawkes-like rate). */
  tradeRatePerSec: number;
  /** Mean random maker actions (add, cancel, resize a level) per second per symbol. */
  makerRatePerSec: number;
  /** Annualized volatility of the latent price (GARCH-like, so bursts come and go). */
  annualVolatility: number;
  /** Typical quote-asset notional of one level near the top of the book. */
  topLevelNotional: number;
  /** Median quote-asset notional of a background taker order (log-normal, heavy tail). */
  medianTakerNotional: number;
  /**
   * Benchmark mode: when true, rates not given explicitly take `HIGH_RATE_DEFAULTS` (hundreds of
   * trades and thousands of depth changes per second per symbol).
   */
  highRate: boolean;
  /** Aggregate trades kept per symbol for `GET /fapi/v1/aggTrades`, `trades`, `historicalTrades`. */
  tradeHistory: number;
}

/** A sink that wants nothing, for a market used only through its REST views. */
const NULL_SINK: StreamSink = { wants: () => false, publish: () => undefined };

/** The defaults, in one place. */
export const MARKET_DEFAULTS: Readonly<MarketOptions> = {
  symbols: DEFAULT_SYMBOLS,
  seed: 1,
  clock: systemClock,
  sink: NULL_SINK,
  tickMs: 50,
  bookLevels: 1_000,
  tradeRatePerSec: 4,
  makerRatePerSec: 40,
  annualVolatility: 0.6,
  topLevelNotional: 50_000,
  medianTakerNotional: 3_000,
  highRate: false,
  tradeHistory: 10_000,
};

/** The rates `highRate: true` selects (per symbol). */
export const HIGH_RATE_DEFAULTS = {
  tradeRatePerSec: 300,
  makerRatePerSec: 4_000,
} as const;

// --- Model constants (the shape of the market, not knobs a user needs) -----------------------

/** GARCH(1,1) on per-step log returns: persistence 0.999 ≈ 35 s half-life at 50 ms steps. */
const GARCH_ALPHA = 0.03;
const GARCH_BETA = 0.969;
/** Variance stays within these multiples of the long-run variance. */
const VARIANCE_FLOOR = 0.04;
const VARIANCE_CAP = 25;
/** Weak pull of the log price back to its initial value, so long demos stay near it. */
const MEAN_REVERSION_HALF_LIFE_MS = 6 * 3_600_000;
/** Hawkes kernel: each taker order raises the intensity, which decays at this rate. */
const HAWKES_DECAY_PER_SEC = 1.2;
/** Mean number of orders each order triggers (must stay < 1 for a stationary rate). */
const HAWKES_BRANCHING = 0.6;
const MAX_TAKERS_PER_STEP = 400;
const MAX_MAKER_ACTIONS_PER_STEP = 2_000;
/** Background takers never sweep more than this many levels (they must not empty a side). */
const MAX_BACKGROUND_SWEEP_LEVELS = 25;
/** Log-normal sigma of background taker size. */
const TAKER_SIZE_SIGMA = 1.3;
/** Permanent impact of a taker order on the latent price, in ticks per level swept. */
const TAKER_IMPACT_TICKS_PER_LEVEL = 0.3;
/** Makers re-quote the top (after a sweep or a price move) with this probability per step. */
const TOP_REFILL_PROBABILITY = 0.8;
/** At most this many levels are added near the top per side and step. */
const MAX_TOP_REFILL_LEVELS = 40;
/** Quotes this many ticks through the latent price are cancelled (stale quotes). */
const STALE_SLACK_TICKS = 1;
/** Random maker actions hit depth ~ exponential with this mean (most activity near the top). */
const MAKER_DEPTH_MEAN = 30;
/** A maker add looks this many levels deeper for a free tick before resizing instead. */
const MAX_ADD_SCAN_LEVELS = 50;
/** Random gap between update ids: other symbols' changes in Binance's global id space. */
const MAX_UPDATE_ID_GAP = 24;
const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;
const FUNDING_INTERVAL_MS = 8 * 3_600_000;
/** Per-minute trade, mark and index buckets are kept this long (klines; the 24 h stats use the last day). */
const HISTORY_MINUTES = 7 * 24 * 60;
/** Funding settlements kept per symbol (a year at three a day). */
const MAX_FUNDING_RECORDS = 1_100;
const PARTIAL_DEPTHS = [5, 10, 20] as const;
/** Diff-depth speeds: stream suffix and window length. Index 1 is Binance's default 250 ms. */
const DEPTH_SPEEDS = [
  { suffix: '@100ms', ms: 100 },
  { suffix: '', ms: 250 },
  { suffix: '@500ms', ms: 500 },
] as const;

// --- Public data shapes ----------------------------------------------------------------------

/** One `exchangeInfo.symbols[].filters[]` entry. */
export type ExchangeFilter =
  | { filterType: 'PRICE_FILTER'; minPrice: string; maxPrice: string; tickSize: string }
  | { filterType: 'LOT_SIZE'; minQty: string; maxQty: string; stepSize: string }
  | { filterType: 'MARKET_LOT_SIZE'; minQty: string; maxQty: string; stepSize: string }
  | { filterType: 'MAX_NUM_ORDERS'; limit: number }
  | { filterType: 'MIN_NOTIONAL'; notional: string }
  | {
      filterType: 'PERCENT_PRICE';
      multiplierUp: string;
      multiplierDown: string;
      multiplierDecimal: string;
    };

/** One `GET /fapi/v1/exchangeInfo` `symbols[]` entry, shaped like Binance's (reference §7.1). */
export interface ExchangeInfoSymbol {
  symbol: string;
  pair: string;
  contractType: 'PERPETUAL';
  deliveryDate: number;
  onboardDate: number;
  status: string;
  maintMarginPercent: string;
  requiredMarginPercent: string;
  baseAsset: string;
  quoteAsset: string;
  marginAsset: string;
  pricePrecision: number;
  quantityPrecision: number;
  baseAssetPrecision: number;
  quotePrecision: number;
  underlyingType: 'COIN';
  underlyingSubType: string[];
  settlePlan: number;
  triggerProtect: string;
  liquidationFee: string;
  marketTakeBound: string;
  maxMoveOrderLimit: number;
  filters: ExchangeFilter[];
  orderTypes: string[];
  timeInForce: string[];
}

/** The `GET /fapi/v1/ticker/24hr` object for one symbol. */
export interface Ticker24h {
  symbol: string;
  priceChange: string;
  priceChangePercent: string;
  weightedAvgPrice: string;
  lastPrice: string;
  lastQty: string;
  openPrice: string;
  highPrice: string;
  lowPrice: string;
  volume: string;
  quoteVolume: string;
  openTime: number;
  closeTime: number;
  firstId: number;
  lastId: number;
  count: number;
}

/** The whole current book, for tests that check snapshot/diff agreement. */
export interface FullBook {
  bids: [string, string][];
  asks: [string, string][];
  lastUpdateId: number;
}

// --- Decimal helpers (prices and quantities are integers of ticks and steps inside) ----------

function decimalsOf(text: string): number {
  const dot = text.indexOf('.');
  return dot < 0 ? 0 : text.length - dot - 1;
}

/**
 * Parses a plain non-negative decimal into integer units of 10^-decimals. Digits beyond
 * `decimals` are cut (floor), or round the result up when `roundUp` and any of them is non-zero.
 * Undefined when the text is not a plain decimal or the result is not a safe integer.
 */
function parseUnits(text: string, decimals: number, roundUp = false): number | undefined {
  if (!/^\d+(\.\d+)?$/.test(text)) return undefined;
  const [whole = '', frac = ''] = text.split('.');
  let units = Number(whole + frac.slice(0, decimals).padEnd(decimals, '0'));
  if (roundUp && /[1-9]/.test(frac.slice(decimals))) units += 1;
  return Number.isSafeInteger(units) ? units : undefined;
}

/** Formats integer units of 10^-decimals as a fixed-point decimal string. */
function formatUnits(units: number | bigint, decimals: number): string {
  const negative = units < 0;
  const digits = (negative ? -units : units).toString();
  if (decimals === 0) return negative ? `-${digits}` : digits;
  const padded = digits.padStart(decimals + 1, '0');
  const text = `${padded.slice(0, -decimals)}.${padded.slice(-decimals)}`;
  return negative ? `-${text}` : text;
}

/** Rounds a non-negative bigint of 10^-from units to 10^-to units, half up. */
function rescale(units: bigint, from: number, to: number): bigint {
  if (to >= from) return units * 10n ** BigInt(to - from);
  const divisor = 10n ** BigInt(from - to);
  return (units + divisor / 2n) / divisor;
}

/** `x.toFixed(d)` without a `-0.000…` for values that round to zero. */
function fixed(x: number, decimals: number): string {
  const text = x.toFixed(decimals);
  return /^-0\.?0*$/.test(text) ? text.slice(1) : text;
}

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

/** The next funding time: the next 00:00, 08:00 or 16:00 UTC strictly after `now`. */
function nextFundingTime(now: number): number {
  return (Math.floor(now / FUNDING_INTERVAL_MS) + 1) * FUNDING_INTERVAL_MS;
}

// --- Internal state ---------------------------------------------------------------------------

/**
 * One side of a book as two parallel arrays, best level first. Keys are `-ticks` for bids and
 * `+ticks` for asks, so both sides sort ascending and share one binary search. Splicing a
 * 1000-element array is a short memmove, cheaper than any tree at this size.
 */
class BookSide {
  private readonly keys: number[] = [];
  private readonly qtys: number[] = [];

  constructor(readonly isBid: boolean) {}

  get length(): number {
    return this.keys.length;
  }

  priceAt(index: number): number {
    const key = this.keys[index]!;
    return this.isBid ? -key : key;
  }

  qtyAt(index: number): number {
    return this.qtys[index]!;
  }

  /** Sets a level's absolute quantity (in steps); 0 removes it. */
  set(price: number, qty: number): void {
    const key = this.isBid ? -price : price;
    const keys = this.keys;
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keys[mid]! < key) lo = mid + 1;
      else hi = mid;
    }
    if (keys[lo] === key) {
      if (qty > 0) this.qtys[lo] = qty;
      else {
        keys.splice(lo, 1);
        this.qtys.splice(lo, 1);
      }
    } else if (qty > 0) {
      keys.splice(lo, 0, key);
      this.qtys.splice(lo, 0, qty);
    }
  }

  /** True when `a` is a strictly better price than `b` on this side. */
  better(a: number, b: number): boolean {
    return this.isBid ? a > b : a < b;
  }
}

/** The changes of one symbol since the last window of one diff speed. */
interface DepthWindow {
  /** id of the first change in the window; 0 while the window is empty */
  U: number;
  u: number;
  /** time of the last change (the event's `T`) */
  T: number;
  /** latest quantity per price (ticks → steps, 0 = removed) */
  readonly bids: Map<number, number>;
  readonly asks: Map<number, number>;
  /** `u` of the previous window of this speed: the next event's `pu` */
  prevU: number;
  /** fault: drop the next non-empty window's diff (its `u` still becomes the next `pu`) */
  skipNext: boolean;
}

/** Trades of one UTC minute: the unit of the rolling 24 h statistics and of kline_1m. */
interface MinuteBucket {
  minute: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  /** Σ price × quantity in units of 10^-(pd+qd) */
  quote: bigint;
  takerBuyVolume: number;
  takerBuyQuote: bigint;
  count: number;
  firstId: number;
  lastId: number;
}

interface Stats {
  open: number;
  high: number;
  low: number;
  last: number;
  lastQty: number;
  volume: number;
  quote: bigint;
  count: number;
  firstId: number;
  lastId: number;
}

interface RawFill {
  tradeId: number;
  price: number;
  qty: number;
}

/** One aggregate trade as the history keeps it (ticks and steps). */
interface AggRecord {
  a: number;
  price: number;
  qty: number;
  f: number;
  l: number;
  T: number;
  /** the taker sold */
  m: boolean;
}

/** Mark or index price of one UTC minute, sampled every second. */
interface PriceBucket {
  minute: number;
  open: number;
  high: number;
  low: number;
  close: number;
  samples: number;
}

/**
 * Open, high, low, close of minute buckets `i` to `j` (exclusive); with no bucket in the range,
 * all four are `previous` (the last price before it), as Binance fills an empty candle.
 */
function ohlc(
  buckets: readonly { open: number; high: number; low: number; close: number }[],
  i: number,
  j: number,
  previous: number,
): [number, number, number, number] {
  if (i >= j) return [previous, previous, previous, previous];
  const first = buckets[i]!;
  let [h, l] = [first.high, first.low];
  for (let k = i + 1; k < j; k++) {
    const b = buckets[k]!;
    if (b.high > h) h = b.high;
    if (b.low < l) l = b.low;
  }
  return [first.open, h, l, buckets[j - 1]!.close];
}

/** One funding settlement. */
interface FundingRecord {
  time: number;
  rate: number;
  mark: string;
}

/**
 * Quantity of each raw trade of an aggregate trade of `qty` steps made of `trades` trades: an
 * even split, the remainder going to the first ones (no random draw, so the raw `@trade` stream
 * and `GET /fapi/v1/trades` agree without listening changing the market).
 */
function rawTradeQty(qty: number, trades: number, index: number): number {
  return Math.floor(qty / trades) + (index < qty % trades ? 1 : 0);
}

/** Everything the model keeps per symbol. */
class SymbolState {
  readonly symbol: string;
  /** decimals of the price / quantity strings (pricePrecision may exceed the tick's decimals) */
  readonly pd: number;
  readonly qd: number;
  /** one tick / one step in units of 10^-pd / 10^-qd */
  readonly tickUnits: number;
  readonly stepUnits: number;
  readonly tickValue: number;
  readonly stepValue: number;
  readonly trading: boolean;
  readonly bids = new BookSide(true);
  readonly asks = new BookSide(false);
  /** the typical top-level size in steps */
  readonly baseQty: number;
  readonly initialTicks: number;
  readonly names: {
    diff: string[];
    /** [speed][PARTIAL_DEPTHS index] */
    partial: string[][];
    bookTicker: string;
    aggTrade: string;
    trade: string;
    markPrice: string;
    markPrice1s: string;
    ticker: string;
    miniTicker: string;
    kline: string;
  };
  readonly windows: DepthWindow[];

  lastUpdateId = 0;
  lastChangeTime = 0;
  /** the latent ("fair") log price and its GARCH variance per step */
  logFair: number;
  readonly logInitial: number;
  variance: number;
  /** Hawkes excitation, in orders per second above the base rate */
  excitation = 0;
  nextTradeId = 0;
  nextAggId = 0;
  /** last published top of book (−1 when a side is empty) */
  topBidPrice = -1;
  topBidQty = -1;
  topAskPrice = -1;
  topAskQty = -1;
  /** trade buckets of the last `HISTORY_MINUTES`, oldest first */
  readonly buckets: MinuteBucket[] = [];
  /** the last trade price (ticks) before the oldest bucket kept */
  priceBeforeBuckets: number;
  readonly aggs: BoundedLog<AggRecord>;
  readonly markBuckets: PriceBucket[] = [];
  readonly indexBuckets: PriceBucket[] = [];
  markBefore: number;
  indexBefore: number;
  readonly funding: FundingRecord[] = [];
  lastPrice: number;
  lastQty = 0;
  /** a trade happened since the last `!ticker@arr` / `!miniTicker@arr` */
  tickerDirty = false;
  markAverage: number;
  klineMinute: number | undefined;

  constructor(
    readonly spec: SimSymbolSpec,
    baseVariance: number,
    topLevelNotional: number,
    tradeHistory: number,
  ) {
    this.symbol = spec.symbol;
    this.pd = Math.max(spec.pricePrecision, decimalsOf(spec.tickSize));
    this.qd = Math.max(spec.quantityPrecision, decimalsOf(spec.stepSize));
    const tickUnits = parseUnits(spec.tickSize, this.pd);
    const stepUnits = parseUnits(spec.stepSize, this.qd);
    const initialUnits = parseUnits(spec.initialPrice, this.pd);
    if (!tickUnits || !stepUnits || !initialUnits) {
      throw new RangeError(
        `Symbol ${spec.symbol}: tickSize, stepSize and initialPrice must be > 0`,
      );
    }
    this.tickUnits = tickUnits;
    this.stepUnits = stepUnits;
    this.tickValue = tickUnits / 10 ** this.pd;
    this.stepValue = stepUnits / 10 ** this.qd;
    this.trading = (spec.status ?? 'TRADING') === 'TRADING';
    this.initialTicks = Math.max(1, Math.round(initialUnits / tickUnits));
    const initialPrice = this.initialTicks * this.tickValue;
    this.logFair = Math.log(initialPrice);
    this.logInitial = this.logFair;
    this.variance = baseVariance;
    this.lastPrice = this.initialTicks;
    this.priceBeforeBuckets = this.initialTicks;
    this.aggs = new BoundedLog<AggRecord>(tradeHistory);
    this.markBefore = initialPrice;
    this.indexBefore = initialPrice;
    this.markAverage = initialPrice;
    this.baseQty = Math.max(1, Math.round(topLevelNotional / (initialPrice * this.stepValue)));
    const l = spec.symbol.toLowerCase();
    this.names = {
      diff: DEPTH_SPEEDS.map((sp) => `${l}@depth${sp.suffix}`),
      partial: DEPTH_SPEEDS.map((sp) => PARTIAL_DEPTHS.map((n) => `${l}@depth${n}${sp.suffix}`)),
      bookTicker: `${l}@bookTicker`,
      aggTrade: `${l}@aggTrade`,
      trade: `${l}@trade`,
      markPrice: `${l}@markPrice`,
      markPrice1s: `${l}@markPrice@1s`,
      ticker: `${l}@ticker`,
      miniTicker: `${l}@miniTicker`,
      kline: `${l}@kline_1m`,
    };
    this.windows = DEPTH_SPEEDS.map(() => ({
      U: 0,
      u: 0,
      T: 0,
      bids: new Map<number, number>(),
      asks: new Map<number, number>(),
      prevU: 0,
      skipNext: false,
    }));
  }

  price(ticks: number): string {
    return formatUnits(ticks * this.tickUnits, this.pd);
  }

  qty(steps: number): string {
    return formatUnits(steps * this.stepUnits, this.qd);
  }

  /** price × quantity in units of 10^-(pd+qd), exact */
  notional(ticks: number, steps: number): bigint {
    return BigInt(ticks * this.tickUnits) * BigInt(steps * this.stepUnits);
  }

  /** a quote-asset amount rounded to 2 decimals, as Binance prints 24 h quote volumes */
  quote2(units: bigint): string {
    return formatUnits(rescale(units, this.pd + this.qd, 2), 2);
  }

  /** a quote-asset amount exactly, at price + quantity decimals, as in Binance's klines */
  quoteExact(units: bigint): string {
    return formatUnits(units, this.pd + this.qd);
  }

  fairTicks(): number {
    return Math.exp(this.logFair) / this.tickValue;
  }

  levels(side: BookSide, limit: number): [string, string][] {
    const n = Math.min(limit, side.length);
    const out: [string, string][] = new Array<[string, string]>(n);
    for (let i = 0; i < n; i++) out[i] = [this.price(side.priceAt(i)), this.qty(side.qtyAt(i))];
    return out;
  }
}

// --- The model --------------------------------------------------------------------------------

/**
 * The simulated exchange market. Call `step()` to advance one tick (tests), or `start()` to run
 * it on a timer. REST views (`snapshot`, `ticker24h`, `exchangeInfoSymbols`) are pure data.
 */
export class Market implements MarketDataSource, MarketForAccounts {
  private readonly options: Readonly<MarketOptions>;
  private readonly rng: Rng;
  private readonly clock: Clock;
  private readonly sink: StreamSink;
  private readonly states: SymbolState[];
  private readonly bySymbol = new Map<string, SymbolState>();
  private readonly bookLevels: number;
  private readonly dtSec: number;
  private readonly baseVariance: number;
  private readonly garchOmega: number;
  private readonly meanReversionPerStep: number;
  private readonly hawkesBaseRatePerSec: number;
  private readonly hawkesJumpPerSec: number;
  private readonly hawkesDecayPerStep: number;
  private readonly makerRatePerSec: number;
  private readonly depthPeriodSteps: number[];
  private readonly periodSteps: {
    kline: number;
    oneSecond: number;
    ticker: number;
    markPrice: number;
    allBookTicker: number;
  };
  private updateId: number;
  private stepCount = 0;
  /** time of the step or call in progress */
  private now = 0;
  /** recording is off while the initial books are built (they are the starting snapshot) */
  private recording = false;
  private inBatch = false;
  private batchId = 0;
  private timer: NodeJS.Timeout | undefined;
  /** construction time: the first candle of every kline series contains it */
  private readonly startTime: number;

  constructor(options: Partial<MarketOptions> = {}) {
    const highRate = options.highRate ?? MARKET_DEFAULTS.highRate;
    const rates = highRate ? HIGH_RATE_DEFAULTS : MARKET_DEFAULTS;
    const o: MarketOptions = {
      ...MARKET_DEFAULTS,
      tradeRatePerSec: rates.tradeRatePerSec,
      makerRatePerSec: rates.makerRatePerSec,
      ...stripUndefined(options),
    };
    validateOptions(o);
    this.options = o;
    this.rng = new Rng(o.seed);
    this.clock = o.clock;
    this.sink = o.sink;
    this.bookLevels = o.bookLevels;
    this.dtSec = o.tickMs / 1_000;
    this.baseVariance = o.annualVolatility ** 2 * (o.tickMs / (365 * DAY_MS));
    this.garchOmega = this.baseVariance * (1 - GARCH_ALPHA - GARCH_BETA);
    this.meanReversionPerStep = (Math.LN2 / MEAN_REVERSION_HALF_LIFE_MS) * o.tickMs;
    this.hawkesBaseRatePerSec = o.tradeRatePerSec * (1 - HAWKES_BRANCHING);
    this.hawkesJumpPerSec = HAWKES_BRANCHING * HAWKES_DECAY_PER_SEC;
    this.hawkesDecayPerStep = Math.exp(-HAWKES_DECAY_PER_SEC * this.dtSec);
    this.makerRatePerSec = o.makerRatePerSec;
    const steps = (ms: number): number => Math.max(1, Math.round(ms / o.tickMs));
    this.depthPeriodSteps = DEPTH_SPEEDS.map((sp) => steps(sp.ms));
    this.periodSteps = {
      kline: steps(250),
      oneSecond: steps(1_000),
      ticker: steps(2_000),
      markPrice: steps(3_000),
      allBookTicker: steps(5_000),
    };

    this.updateId = 5_000_000_000 + this.rng.int(0, 999_999) * 1_000;
    this.now = this.clock.now();
    this.startTime = this.now;
    this.states = o.symbols.map((spec) => {
      const s = new SymbolState(spec, this.baseVariance, o.topLevelNotional, o.tradeHistory);
      if (this.bySymbol.has(s.symbol)) throw new RangeError(`Duplicate symbol ${s.symbol}`);
      this.bySymbol.set(s.symbol, s);
      s.nextTradeId = 6_000_000_000 + this.rng.int(0, 999_999) * 1_000;
      s.nextAggId = 2_500_000_000 + this.rng.int(0, 999_999) * 1_000;
      const fair = s.fairTicks();
      this.normalizeDepth(s, s.bids, Math.ceil(fair) - 1);
      this.normalizeDepth(s, s.asks, Math.floor(fair) + 1);
      s.lastUpdateId = this.allocId();
      s.lastChangeTime = this.now;
      for (const w of s.windows) w.prevU = s.lastUpdateId;
      this.noteTop(s);
      s.markBefore = this.markValue(s);
      return s;
    });
    this.recording = true;
  }

  // --- Driving ---------------------------------------------------------------------------------

  /** Number of `step()` calls so far (windows close when it is a multiple of their period). */
  get steps(): number {
    return this.stepCount;
  }

  /**
   * Advances the market by one tick: latent price, takers (trades), makers (quotes), depth
   * normalization, then every stream whose period ends at this step.
   */
  step(): void {
    this.stepCount++;
    const before = this.now;
    this.now = this.clock.now();
    if (Math.floor(this.now / FUNDING_INTERVAL_MS) > Math.floor(before / FUNDING_INTERVAL_MS)) {
      for (const s of this.states) this.settleFunding(s);
    }
    for (const s of this.states) if (s.trading) this.evolve(s);
    this.publishScheduled();
  }

  /** Runs `step()` every `tickMs` until `stop()`. The timer does not keep the process alive. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.step(), this.options.tickMs);
    this.timer.unref();
  }

  /**
   * Stops the timer of `start()`; the state stays, `step()` still works. Idempotent. The open
   * depth windows are closed and sent, as time would close them on Binance, so a client that
   * follows the diffs ends exactly on the frozen book.
   */
  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.now = this.clock.now();
    for (let i = 0; i < DEPTH_SPEEDS.length; i++)
      for (const s of this.states) this.flushDepth(s, i);
  }

  /**
   * Fault hook: the next diff-depth event of `symbol` on every speed is not sent, but its `u`
   * still becomes the following event's `pu`, so a client sees a real gap and must resync.
   */
  skipNextDiff(symbol: string): void {
    for (const w of this.state(symbol).windows) w.skipNext = true;
  }

  // --- REST views --------------------------------------------------------------------------------

  /** Symbol names, in configuration order. */
  symbols(): string[] {
    return this.states.map((s) => s.symbol);
  }

  /** True for a configured symbol (exact upper-case name, any status). */
  hasSymbol(symbol: string): boolean {
    return this.bySymbol.has(symbol);
  }

  /** The configured spec (tick and step sizes, precisions) the accounts validate orders with. */
  spec(symbol: string): SimSymbolSpec | undefined {
    return this.bySymbol.get(symbol)?.spec;
  }

  /** `GET /fapi/v1/depth`: the top `limit` levels per side, best first. Throws for an unknown symbol. */
  snapshot(symbol: string, limit: number): DepthSnapshot {
    const s = this.state(symbol);
    return {
      lastUpdateId: s.lastUpdateId,
      E: this.clock.now(),
      T: s.lastChangeTime,
      bids: s.levels(s.bids, limit),
      asks: s.levels(s.asks, limit),
    };
  }

  /** The whole current book and the id of its last change, for agreement tests. */
  bookForTest(symbol: string): FullBook {
    const s = this.state(symbol);
    return {
      bids: s.levels(s.bids, s.bids.length),
      asks: s.levels(s.asks, s.asks.length),
      lastUpdateId: s.lastUpdateId,
    };
  }

  /**
   * `GET /fapi/v1/ticker/24hr` for one symbol, from the model's own trades over a rolling 24 h
   * window of UTC-minute buckets (so the window edge moves by whole minutes). Before any trade:
   * open = high = low = last = the initial price, volumes 0, `count` 0, `firstId`/`lastId` −1.
   * With trades, `openPrice` is the first trade in the window (Binance's rolling open).
   */
  ticker24h(symbol: string): Ticker24h | undefined {
    const s = this.bySymbol.get(symbol);
    if (!s) return undefined;
    const now = this.clock.now();
    const st = this.stats(s, now);
    const f = this.tickerFields(s, st);
    return {
      symbol: s.symbol,
      priceChange: f.change,
      priceChangePercent: f.percent,
      weightedAvgPrice: f.weighted,
      lastPrice: s.price(st.last),
      lastQty: s.qty(st.lastQty),
      openPrice: s.price(st.open),
      highPrice: s.price(st.high),
      lowPrice: s.price(st.low),
      volume: s.qty(st.volume),
      quoteVolume: s.quote2(st.quote),
      openTime: now - DAY_MS,
      closeTime: now,
      firstId: st.firstId,
      lastId: st.lastId,
      count: st.count,
    };
  }

  /** Binance-shaped `exchangeInfo.symbols[]` entries, filters derived from each spec. */
  exchangeInfoSymbols(): ExchangeInfoSymbol[] {
    return this.states.map((s) => exchangeInfoEntry(s));
  }

  /** Mark price = mid of the book (8 decimals like premiumIndex); the latent price if a side is empty. */
  markPrice(symbol: string): string {
    return this.markText(this.state(symbol));
  }

  // --- REST history ------------------------------------------------------------------------------

  /** The history views behind `aggTrades`, `trades`, `historicalTrades`, the klines and `fundingRate`. */
  get history(): MarketHistory {
    return this;
  }

  /**
   * `GET /fapi/v1/aggTrades` over the newest `tradeHistory` aggregate trades: from `fromId`
   * and/or `startTime` on (the first `limit`), else the newest `limit` at or before `endTime`
   * (or now). Throws for an unknown symbol.
   */
  aggTrades(symbol: string, query: RangeQuery & { fromId?: number }): AggTradeRow[] {
    const s = this.state(symbol);
    const log = s.aggs;
    const { fromId, startTime, endTime } = query;
    let first = 0;
    if (fromId !== undefined) first = log.search((r) => r.a >= fromId);
    if (startTime !== undefined)
      first = Math.max(
        first,
        log.search((r) => r.T >= startTime),
      );
    const end = endTime === undefined ? log.length : log.search((r) => r.T > endTime);
    const fromStart = fromId !== undefined || startTime !== undefined;
    const [from, to] = windowIndices(first, end, query.limit, fromStart);
    return log.slice(from, to).map((r) => {
      const q = s.qty(r.qty);
      return { a: r.a, p: s.price(r.price), q, nq: q, f: r.f, l: r.l, T: r.T, m: r.m };
    });
  }

  /**
   * `GET /fapi/v1/trades` (newest `limit`) and `historicalTrades` (from `fromId` on): the raw
   * trades the kept aggregate trades are made of, split as on the `@trade` stream.
   */
  trades(symbol: string, limit: number, fromId?: number): TradeRow[] {
    const s = this.state(symbol);
    const log = s.aggs;
    const row = (r: AggRecord, id: number): TradeRow => {
      const qty = rawTradeQty(r.qty, r.l - r.f + 1, id - r.f);
      return {
        id,
        price: s.price(r.price),
        qty: s.qty(qty),
        quoteQty: s.quoteExact(s.notional(r.price, qty)),
        time: r.T,
        isBuyerMaker: r.m,
        isRPITrade: false,
      };
    };
    const rows: TradeRow[] = [];
    if (fromId !== undefined) {
      for (let i = log.search((r) => r.l >= fromId); i < log.length && rows.length < limit; i++) {
        const r = log.at(i);
        for (let id = Math.max(r.f, fromId); id <= r.l && rows.length < limit; id++) {
          rows.push(row(r, id));
        }
      }
      return rows;
    }
    for (let i = log.length - 1; i >= 0 && rows.length < limit; i--) {
      const r = log.at(i);
      for (let id = r.l; id >= r.f && rows.length < limit; id--) rows.push(row(r, id));
    }
    return rows.reverse();
  }

  /**
   * `GET /fapi/v1/klines` (kind `trade`), `markPriceKlines` and `indexPriceKlines`: candles of
   * the interval built from the per-minute buckets, from the market's start (or a week ago) to
   * the candle open now. A candle without trades (or samples) is flat at the previous close.
   */
  klines(symbol: string, kind: KlineKind, interval: KlineInterval, query: RangeQuery): KlineRow[] {
    const s = this.state(symbol);
    const now = this.clock.now();
    const oldest = (Math.floor(now / MINUTE_MS) - HISTORY_MINUTES + 1) * MINUTE_MS;
    const opens = candleOpens(interval, Math.max(this.startTime, oldest), now, query);
    return opens.map((open) => {
      const close = candleNext(interval, open);
      return kind === 'trade'
        ? this.tradeCandle(s, open, close)
        : this.priceCandle(s, kind, open, close);
    });
  }

  /** `GET /fapi/v1/fundingRate`: settlements of one symbol or all, ascending. */
  fundingRates(symbol: string | undefined, query: RangeQuery): FundingRateRow[] {
    const states = symbol === undefined ? this.states : [this.state(symbol)];
    const rows: FundingRateRow[] = [];
    for (const s of states) {
      for (const r of s.funding) {
        if (query.startTime !== undefined && r.time < query.startTime) continue;
        if (query.endTime !== undefined && r.time > query.endTime) continue;
        rows.push({
          symbol: s.symbol,
          fundingRate: fixed(r.rate, 8),
          fundingTime: r.time,
          markPrice: r.mark,
        });
      }
    }
    rows.sort((x, y) => x.fundingTime - y.fundingTime);
    const [from, to] = windowIndices(0, rows.length, query.limit, query.startTime !== undefined);
    return rows.slice(from, to);
  }

  private tradeCandle(s: SymbolState, open: number, close: number): KlineRow {
    const buckets = s.buckets;
    const i = firstMinuteAtOrAfter(buckets, open / MINUTE_MS);
    const j = firstMinuteAtOrAfter(buckets, close / MINUTE_MS);
    const previous = i > 0 ? buckets[i - 1]!.close : s.priceBeforeBuckets;
    const [o, h, l, c] = ohlc(buckets, i, j, previous);
    let volume = 0;
    let quote = 0n;
    let takerVolume = 0;
    let takerQuote = 0n;
    let count = 0;
    for (let k = i; k < j; k++) {
      const b = buckets[k]!;
      volume += b.volume;
      quote += b.quote;
      takerVolume += b.takerBuyVolume;
      takerQuote += b.takerBuyQuote;
      count += b.count;
    }
    return [
      open,
      s.price(o),
      s.price(h),
      s.price(l),
      s.price(c),
      s.qty(volume),
      close - 1,
      s.quoteExact(quote),
      count,
      s.qty(takerVolume),
      s.quoteExact(takerQuote),
      '0',
    ];
  }

  private priceCandle(
    s: SymbolState,
    kind: 'mark' | 'index',
    open: number,
    close: number,
  ): KlineRow {
    const buckets = kind === 'mark' ? s.markBuckets : s.indexBuckets;
    const i = firstMinuteAtOrAfter(buckets, open / MINUTE_MS);
    const j = firstMinuteAtOrAfter(buckets, close / MINUTE_MS);
    const previous = i > 0 ? buckets[i - 1]!.close : kind === 'mark' ? s.markBefore : s.indexBefore;
    const [o, h, l, c] = ohlc(buckets, i, j, previous);
    let samples = 0;
    for (let k = i; k < j; k++) samples += buckets[k]!.samples;
    const p = (x: number): string => fixed(x, 8);
    return [open, p(o), p(h), p(l), p(c), '0', close - 1, '0', samples, '0', '0', '0'];
  }

  // --- Orders from the simulator's accounts ------------------------------------------------------

  /**
   * Sweeps the book now, best level first, for `quantity` (cut down to whole steps). With
   * `limitPrice` (a marketable LIMIT order) the sweep never goes past the limit: a BUY limit is
   * rounded down and a SELL limit up to the tick grid. Each level swept is one trade with its own
   * trade id and one aggTrade; the depth changes go out through the normal diff windows, and
   * bookTicker at once. The book may stay short of `bookLevels` until the next `step()`.
   * Returns [] for a zero quantity; throws a RangeError for an unknown symbol or a malformed
   * number (the accounts validate orders before they get here).
   */
  executeTaker(
    symbol: string,
    side: 'BUY' | 'SELL',
    quantity: string,
    limitPrice?: string,
  ): Fill[] {
    const s = this.state(symbol);
    const qtyUnits = parseUnits(quantity, s.qd);
    if (qtyUnits === undefined) throw new RangeError(`Malformed quantity ${quantity}`);
    const steps = Math.floor(qtyUnits / s.stepUnits);
    let limitTicks: number | undefined;
    if (limitPrice !== undefined) {
      const units = parseUnits(limitPrice, s.pd, side === 'SELL');
      if (units === undefined) throw new RangeError(`Malformed price ${limitPrice}`);
      limitTicks =
        side === 'BUY' ? Math.floor(units / s.tickUnits) : Math.ceil(units / s.tickUnits);
    }
    if (steps <= 0) return [];
    this.now = this.clock.now();
    return this.sweep(s, side, steps, limitTicks, false).map((f) => ({
      tradeId: f.tradeId,
      price: s.price(f.price),
      quantity: s.qty(f.qty),
      quote: formatUnits(s.notional(f.price, f.qty), s.pd + s.qd),
    }));
  }

  // --- Model internals ----------------------------------------------------------------------------

  private state(symbol: string): SymbolState {
    const s = this.bySymbol.get(symbol);
    if (!s) throw new RangeError(`Unknown symbol ${symbol}`);
    return s;
  }

  private allocId(): number {
    this.updateId += 1 + this.rng.int(0, MAX_UPDATE_ID_GAP);
    return this.updateId;
  }

  /** One tick of one symbol. The order of draws is fixed: that is what makes runs repeatable. */
  private evolve(s: SymbolState): void {
    const rng = this.rng;
    // Latent price: GARCH(1,1) variance, weak mean reversion of the log price.
    const shock = Math.sqrt(s.variance) * rng.normal();
    s.logFair += shock - this.meanReversionPerStep * (s.logFair - s.logInitial);
    s.variance = clamp(
      this.garchOmega + GARCH_ALPHA * shock * shock + GARCH_BETA * s.variance,
      this.baseVariance * VARIANCE_FLOOR,
      this.baseVariance * VARIANCE_CAP,
    );
    // Takers: a Hawkes-like intensity (self-exciting) scaled by the current volatility.
    const volRatio = Math.sqrt(s.variance / this.baseVariance);
    const intensity = this.hawkesBaseRatePerSec * volRatio + s.excitation;
    s.excitation *= this.hawkesDecayPerStep;
    const takers = Math.min(MAX_TAKERS_PER_STEP, rng.poisson(intensity * this.dtSec));
    for (let i = 0; i < takers; i++) this.backgroundTaker(s);
    // Makers: drop stale quotes, re-quote the top, random activity, then exact depth.
    const fair = s.fairTicks();
    const desiredBid = Math.ceil(fair) - 1;
    const desiredAsk = Math.floor(fair) + 1;
    while (s.bids.length > 0 && s.bids.priceAt(0) > desiredBid + STALE_SLACK_TICKS) {
      this.setLevel(s, s.bids, s.bids.priceAt(0), 0);
    }
    while (s.asks.length > 0 && s.asks.priceAt(0) < desiredAsk - STALE_SLACK_TICKS) {
      this.setLevel(s, s.asks, s.asks.priceAt(0), 0);
    }
    if (rng.chance(TOP_REFILL_PROBABILITY)) this.refillTop(s, s.bids, desiredBid);
    if (rng.chance(TOP_REFILL_PROBABILITY)) this.refillTop(s, s.asks, desiredAsk);
    const makers = Math.min(
      MAX_MAKER_ACTIONS_PER_STEP,
      rng.poisson(this.makerRatePerSec * this.dtSec),
    );
    for (let i = 0; i < makers; i++) this.randomMakerAction(s);
    this.normalizeDepth(s, s.bids, desiredBid);
    this.normalizeDepth(s, s.asks, desiredAsk);
  }

  /** The price a side's top may take now: `desired`, kept strictly inside the other side. */
  private topTarget(s: SymbolState, side: BookSide, desired: number): number {
    const other = side.isBid ? s.asks : s.bids;
    if (other.length === 0) return desired;
    const otherBest = other.priceAt(0);
    return side.isBid ? Math.min(desired, otherBest - 1) : Math.max(desired, otherBest + 1);
  }

  /** Makers re-quote near the latent price after a sweep or a move: new levels from the top down. */
  private refillTop(s: SymbolState, side: BookSide, desired: number): void {
    const target = this.topTarget(s, side, desired);
    const best = side.length > 0 ? side.priceAt(0) : undefined;
    if (best !== undefined && !side.better(target, best)) return;
    let price = target;
    for (let depth = 0; depth < MAX_TOP_REFILL_LEVELS; depth++) {
      if (price < 1 || (best !== undefined && !side.better(price, best))) break;
      this.setLevel(s, side, price, this.shapeQty(s, depth));
      const gap = this.gapTicks(depth + 1);
      price = side.isBid ? price - gap : price + gap;
    }
  }

  /** Cancel, resize or add one level at a random depth (mostly near the top, never a new best). */
  private randomMakerAction(s: SymbolState): void {
    const rng = this.rng;
    const side = rng.chance(0.5) ? s.bids : s.asks;
    if (side.length === 0) return;
    const depth = Math.min(side.length - 1, Math.floor(rng.exponential(1 / MAKER_DEPTH_MEAN)));
    const price = side.priceAt(depth);
    const roll = rng.next();
    if (roll < 0.25 && side.length > 1) {
      this.setLevel(s, side, price, 0);
      return;
    }
    if (roll < 0.55) {
      // Add a level in the first free gap at or below this depth, so that adds balance the
      // cancels above and the book keeps its density near the top.
      const end = Math.min(side.length - 1, depth + MAX_ADD_SCAN_LEVELS);
      for (let d = depth; d < end; d++) {
        const from = side.priceAt(d);
        const span = Math.abs(side.priceAt(d + 1) - from);
        if (span > 1) {
          const offset = rng.int(1, span - 1);
          const at = side.isBid ? from - offset : from + offset;
          this.setLevel(s, side, at, this.shapeQty(s, d + 1));
          return;
        }
      }
    }
    const qty = side.qtyAt(depth);
    let resized = Math.max(1, Math.round(qty * Math.exp(0.35 * rng.normal())));
    if (resized === qty) resized = qty + 1;
    this.setLevel(s, side, price, resized);
  }

  /** Trims or extends the deep end so the side holds exactly `bookLevels` levels. */
  private normalizeDepth(s: SymbolState, side: BookSide, desired: number): void {
    while (side.length > this.bookLevels) {
      this.setLevel(s, side, side.priceAt(side.length - 1), 0);
    }
    while (side.length < this.bookLevels) {
      let price: number;
      if (side.length === 0) price = this.topTarget(s, side, desired);
      else {
        const gap = this.gapTicks(side.length);
        const worst = side.priceAt(side.length - 1);
        price = side.isBid ? worst - gap : worst + gap;
      }
      if (price < 1) break; // a bid side cannot go below one tick
      this.setLevel(s, side, price, this.shapeQty(s, side.length));
    }
  }

  /** Distance in ticks to the next level at this depth: mostly 1 near the top, wider deeper. */
  private gapTicks(depth: number): number {
    return 1 + Math.floor(this.rng.exponential(1 / (0.25 + depth / 250)));
  }

  /** A level's size at this depth: log-normal around a mean that grows away from the top. */
  private shapeQty(s: SymbolState, depth: number): number {
    const mean = s.baseQty * (0.35 + 0.65 * (1 - Math.exp(-depth / 40)) + depth / 300);
    return Math.max(1, Math.round(mean * Math.exp(0.9 * this.rng.normal() - 0.405)));
  }

  private backgroundTaker(s: SymbolState): void {
    if (s.bids.length === 0 || s.asks.length === 0) return;
    const rng = this.rng;
    const mid = (s.bids.priceAt(0) + s.asks.priceAt(0)) / 2;
    const buyProbability = 0.5 + 0.3 * Math.tanh((s.fairTicks() - mid) / 2);
    const side = rng.chance(buyProbability) ? 'BUY' : 'SELL';
    const notional = this.options.medianTakerNotional * Math.exp(TAKER_SIZE_SIGMA * rng.normal());
    let qty = Math.max(1, Math.round(notional / (Math.exp(s.logFair) * s.stepValue)));
    const book = side === 'BUY' ? s.asks : s.bids;
    let available = 0;
    const levels = Math.min(book.length, MAX_BACKGROUND_SWEEP_LEVELS);
    for (let i = 0; i < levels && available < qty; i++) available += book.qtyAt(i);
    qty = Math.min(qty, available);
    this.sweep(s, side, qty, undefined, true);
  }

  /**
   * Executes one taker order: one update id for the whole sweep (one matching-engine event),
   * one aggTrade per level (`multiTrade`: several underlying maker fills per level, as when a
   * level holds several orders), then bookTicker if the top changed.
   */
  private sweep(
    s: SymbolState,
    side: 'BUY' | 'SELL',
    qty: number,
    limitTicks: number | undefined,
    multiTrade: boolean,
  ): RawFill[] {
    const book = side === 'BUY' ? s.asks : s.bids;
    const fills: RawFill[] = [];
    let remaining = qty;
    this.inBatch = true;
    this.batchId = 0;
    while (remaining > 0 && book.length > 0) {
      const price = book.priceAt(0);
      if (limitTicks !== undefined && book.better(limitTicks, price)) break;
      const available = book.qtyAt(0);
      const take = Math.min(remaining, available);
      this.setLevel(s, book, price, available - take);
      remaining -= take;
      const trades = multiTrade ? 1 + Math.min(take - 1, Math.floor(this.rng.exponential(1))) : 1;
      const firstId = s.nextTradeId;
      s.nextTradeId += trades;
      const lastId = s.nextTradeId - 1;
      const aggId = s.nextAggId++;
      this.recordTrade(s, price, take, side === 'BUY', firstId, lastId);
      s.aggs.push({
        a: aggId,
        price,
        qty: take,
        f: firstId,
        l: lastId,
        T: this.now,
        m: side === 'SELL',
      });
      if (this.sink.wants(s.names.aggTrade)) {
        const q = s.qty(take);
        this.sink.publish(
          s.names.aggTrade,
          JSON.stringify({
            e: 'aggTrade',
            E: this.now,
            a: aggId,
            s: s.symbol,
            p: s.price(price),
            q,
            nq: q,
            f: firstId,
            l: lastId,
            T: this.now,
            m: side === 'SELL',
            st: 1,
          }),
        );
      }
      if (this.sink.wants(s.names.trade))
        this.publishRawTrades(s, side, price, take, firstId, trades);
      fills.push({ tradeId: lastId, price, qty: take });
    }
    this.inBatch = false;
    if (this.batchId !== 0) this.noteTop(s);
    if (fills.length > 0) {
      s.excitation += this.hawkesJumpPerSec;
      const impact = TAKER_IMPACT_TICKS_PER_LEVEL * fills.length * s.tickValue;
      s.logFair += ((side === 'BUY' ? 1 : -1) * impact) / Math.exp(s.logFair);
    }
    return fills;
  }

  /**
   * The undocumented raw `<symbol>@trade` stream (reference §4.2), which Binance serves on
   * `/public`: one event per underlying trade of an aggTrade. The level's quantity is split
   * evenly over its trades (no random draw, so listening does not change the market).
   */
  private publishRawTrades(
    s: SymbolState,
    side: 'BUY' | 'SELL',
    price: number,
    take: number,
    firstId: number,
    trades: number,
  ): void {
    for (let i = 0; i < trades; i++) {
      this.sink.publish(
        s.names.trade,
        JSON.stringify({
          e: 'trade',
          E: this.now,
          T: this.now,
          s: s.symbol,
          t: firstId + i,
          p: s.price(price),
          q: s.qty(rawTradeQty(take, trades, i)),
          X: 'MARKET',
          m: side === 'SELL',
        }),
      );
    }
  }

  /**
   * The one place a book changes: sets the level, gives the change an update id (the sweep's id
   * inside a taker order), records it in each speed's open window and publishes bookTicker when
   * the top moved.
   */
  private setLevel(s: SymbolState, side: BookSide, price: number, qty: number): void {
    side.set(price, qty);
    if (!this.recording) return;
    let id: number;
    if (this.inBatch) {
      if (this.batchId === 0) this.batchId = this.allocId();
      id = this.batchId;
    } else id = this.allocId();
    s.lastUpdateId = id;
    s.lastChangeTime = this.now;
    for (const w of s.windows) {
      if (w.U === 0) w.U = id;
      w.u = id;
      w.T = this.now;
      (side.isBid ? w.bids : w.asks).set(price, qty);
    }
    if (!this.inBatch) this.noteTop(s);
  }

  /** Remembers the top of book and publishes `<s>@bookTicker` when it changed. */
  private noteTop(s: SymbolState): void {
    const bp = s.bids.length > 0 ? s.bids.priceAt(0) : -1;
    const bq = s.bids.length > 0 ? s.bids.qtyAt(0) : -1;
    const ap = s.asks.length > 0 ? s.asks.priceAt(0) : -1;
    const aq = s.asks.length > 0 ? s.asks.qtyAt(0) : -1;
    if (bp === s.topBidPrice && bq === s.topBidQty && ap === s.topAskPrice && aq === s.topAskQty) {
      return;
    }
    s.topBidPrice = bp;
    s.topBidQty = bq;
    s.topAskPrice = ap;
    s.topAskQty = aq;
    if (this.recording && bp > 0 && ap > 0 && this.sink.wants(s.names.bookTicker)) {
      this.sink.publish(s.names.bookTicker, this.bookTickerJson(s));
    }
  }

  private bookTickerJson(s: SymbolState): string {
    return JSON.stringify({
      e: 'bookTicker',
      u: s.lastUpdateId,
      E: this.now,
      T: s.lastChangeTime,
      s: s.symbol,
      b: s.price(s.topBidPrice),
      B: s.qty(s.topBidQty),
      a: s.price(s.topAskPrice),
      A: s.qty(s.topAskQty),
      st: 1,
    });
  }

  // --- Trades statistics ----------------------------------------------------------------------------

  private recordTrade(
    s: SymbolState,
    price: number,
    qty: number,
    takerBuy: boolean,
    firstId: number,
    lastId: number,
  ): void {
    const minute = Math.floor(this.now / MINUTE_MS);
    let bucket = s.buckets[s.buckets.length - 1];
    const notional = s.notional(price, qty);
    if (!bucket || bucket.minute < minute) {
      bucket = {
        minute,
        open: price,
        high: price,
        low: price,
        close: price,
        volume: 0,
        quote: 0n,
        takerBuyVolume: 0,
        takerBuyQuote: 0n,
        count: 0,
        firstId,
        lastId,
      };
      s.buckets.push(bucket);
      this.pruneBuckets(s, minute);
    }
    if (price > bucket.high) bucket.high = price;
    if (price < bucket.low) bucket.low = price;
    bucket.close = price;
    bucket.volume += qty;
    bucket.quote += notional;
    if (takerBuy) {
      bucket.takerBuyVolume += qty;
      bucket.takerBuyQuote += notional;
    }
    bucket.count += lastId - firstId + 1;
    bucket.lastId = lastId;
    s.lastPrice = price;
    s.lastQty = qty;
    s.tickerDirty = true;
  }

  /** Drops the trade buckets older than the history kept (`HISTORY_MINUTES` ending in `minute`). */
  private pruneBuckets(s: SymbolState, minute: number): void {
    const drop = firstMinuteAtOrAfter(s.buckets, minute - HISTORY_MINUTES + 1);
    if (drop === 0) return;
    s.priceBeforeBuckets = s.buckets[drop - 1]!.close;
    s.buckets.splice(0, drop);
  }

  /** The rolling 24 h statistics: the buckets of the last 1440 minutes. */
  private stats(s: SymbolState, now: number): Stats {
    const minute = Math.floor(now / MINUTE_MS);
    const from = firstMinuteAtOrAfter(s.buckets, minute - DAY_MS / MINUTE_MS + 1);
    const first = s.buckets[from];
    if (!first) {
      return {
        open: s.lastPrice,
        high: s.lastPrice,
        low: s.lastPrice,
        last: s.lastPrice,
        lastQty: s.lastQty,
        volume: 0,
        quote: 0n,
        count: 0,
        firstId: -1,
        lastId: -1,
      };
    }
    const st: Stats = {
      open: first.open,
      high: first.high,
      low: first.low,
      last: s.lastPrice,
      lastQty: s.lastQty,
      volume: 0,
      quote: 0n,
      count: 0,
      firstId: first.firstId,
      lastId: first.lastId,
    };
    for (let i = from; i < s.buckets.length; i++) {
      const b = s.buckets[i]!;
      if (b.high > st.high) st.high = b.high;
      if (b.low < st.low) st.low = b.low;
      st.volume += b.volume;
      st.quote += b.quote;
      st.count += b.count;
      st.lastId = b.lastId;
    }
    return st;
  }

  private tickerFields(
    s: SymbolState,
    st: Stats,
  ): { change: string; percent: string; weighted: string } {
    const change = st.last - st.open;
    const weighted =
      st.volume > 0
        ? fixed(Number(st.quote) / 10 ** (s.pd + s.qd) / (st.volume * s.stepValue), s.pd)
        : s.price(0);
    return {
      change: formatUnits(change * s.tickUnits, s.pd),
      percent: fixed(st.open > 0 ? (change / st.open) * 100 : 0, 3),
      weighted,
    };
  }

  // --- Scheduled streams ------------------------------------------------------------------------------

  private publishScheduled(): void {
    const n = this.stepCount;
    const p = this.periodSteps;
    for (let i = 0; i < DEPTH_SPEEDS.length; i++) {
      if (n % this.depthPeriodSteps[i]! === 0) for (const s of this.states) this.flushDepth(s, i);
    }
    if (n % p.kline === 0) for (const s of this.states) this.publishKline(s);
    if (n % p.oneSecond === 0) {
      for (const s of this.states) {
        s.markAverage += (this.markValue(s) - s.markAverage) / 60;
        this.samplePrices(s);
      }
      this.publishMarkPrices(true);
      this.publishTickerArrays();
    }
    if (n % p.markPrice === 0) this.publishMarkPrices(false);
    if (n % p.ticker === 0) for (const s of this.states) this.publishTickers(s);
    if (n % p.allBookTicker === 0 && this.sink.wants('!bookTicker')) {
      for (const s of this.states) {
        if (s.topBidPrice > 0 && s.topAskPrice > 0) {
          this.sink.publish('!bookTicker', this.bookTickerJson(s));
        }
      }
    }
  }

  /** Closes the open window of one speed: the diff event, then the partial-depth snapshots. */
  private flushDepth(s: SymbolState, speed: number): void {
    const w = s.windows[speed]!;
    if (w.U === 0) return;
    const head = {
      e: 'depthUpdate',
      E: this.now,
      T: w.T,
      s: s.symbol,
      U: w.U,
      u: w.u,
      pu: w.prevU,
    };
    w.prevU = w.u;
    w.U = 0;
    const skip = w.skipNext;
    w.skipNext = false;
    const diffName = s.names.diff[speed]!;
    if (!skip && this.sink.wants(diffName)) {
      const b = [...w.bids].sort((x, y) => y[0] - x[0]);
      const a = [...w.asks].sort((x, y) => x[0] - y[0]);
      this.sink.publish(
        diffName,
        JSON.stringify({
          ...head,
          b: b.map(([p, q]) => [s.price(p), s.qty(q)]),
          a: a.map(([p, q]) => [s.price(p), s.qty(q)]),
          st: 1,
        }),
      );
    }
    w.bids.clear();
    w.asks.clear();
    const partial = s.names.partial[speed]!;
    for (let k = 0; k < PARTIAL_DEPTHS.length; k++) {
      const name = partial[k]!;
      if (!this.sink.wants(name)) continue;
      const depth = PARTIAL_DEPTHS[k]!;
      this.sink.publish(
        name,
        JSON.stringify({
          ...head,
          b: s.levels(s.bids, depth),
          a: s.levels(s.asks, depth),
          st: 1,
        }),
      );
    }
  }

  private markValue(s: SymbolState): number {
    if (s.bids.length === 0 || s.asks.length === 0) return Math.exp(s.logFair);
    return ((s.bids.priceAt(0) + s.asks.priceAt(0)) / 2) * s.tickValue;
  }

  private markText(s: SymbolState): string {
    if (s.bids.length === 0 || s.asks.length === 0 || s.pd >= 8) {
      return fixed(this.markValue(s), 8);
    }
    // (bid + ask) / 2 exactly: × 5 in units one decimal finer, then padded to 8 decimals.
    const units = (s.bids.priceAt(0) + s.asks.priceAt(0)) * s.tickUnits * 5;
    return formatUnits(units, s.pd + 1) + '0'.repeat(8 - s.pd - 1);
  }

  /** Binance's funding formula on the current premium: premium + clamp(0.01 % − premium, ±0.05 %). */
  private fundingRate(s: SymbolState): number {
    const mark = this.markValue(s);
    const index = Math.exp(s.logFair);
    const premium = (mark - index) / index;
    return clamp(premium + clamp(0.0001 - premium, -0.0005, 0.0005), -0.0075, 0.0075);
  }

  /** A funding settlement at the 8 h mark just passed, at the rate the markPrice stream showed. */
  private settleFunding(s: SymbolState): void {
    s.funding.push({
      time: Math.floor(this.now / FUNDING_INTERVAL_MS) * FUNDING_INTERVAL_MS,
      rate: this.fundingRate(s),
      mark: this.markText(s),
    });
    if (s.funding.length > MAX_FUNDING_RECORDS) {
      s.funding.splice(0, s.funding.length - MAX_FUNDING_RECORDS);
    }
  }

  /** Once a second: the mark and index price samples of the minute (mark/index klines). */
  private samplePrices(s: SymbolState): void {
    const minute = Math.floor(this.now / MINUTE_MS);
    const add = (buckets: PriceBucket[], value: number): void => {
      const last = buckets[buckets.length - 1];
      if (last && last.minute === minute) {
        if (value > last.high) last.high = value;
        if (value < last.low) last.low = value;
        last.close = value;
        last.samples += 1;
        return;
      }
      buckets.push({ minute, open: value, high: value, low: value, close: value, samples: 1 });
    };
    add(s.markBuckets, this.markValue(s));
    add(s.indexBuckets, Math.exp(s.logFair));
    const oldest = minute - HISTORY_MINUTES + 1;
    for (const kind of ['mark', 'index'] as const) {
      const buckets = kind === 'mark' ? s.markBuckets : s.indexBuckets;
      const drop = firstMinuteAtOrAfter(buckets, oldest);
      if (drop === 0) continue;
      if (kind === 'mark') s.markBefore = buckets[drop - 1]!.close;
      else s.indexBefore = buckets[drop - 1]!.close;
      buckets.splice(0, drop);
    }
  }

  private markEvent(s: SymbolState): object {
    const index = Math.exp(s.logFair);
    const funding = this.fundingRate(s);
    return {
      e: 'markPriceUpdate',
      E: this.now,
      s: s.symbol,
      p: this.markText(s),
      ap: fixed(s.markAverage, 8),
      i: fixed(index, 8),
      P: fixed(index, 8),
      r: fixed(funding, 8),
      T: nextFundingTime(this.now),
      st: 1,
    };
  }

  private publishMarkPrices(oneSecond: boolean): void {
    const arrName = oneSecond ? '!markPrice@arr@1s' : '!markPrice@arr';
    const wantsArr = this.sink.wants(arrName);
    const rows: object[] = [];
    for (const s of this.states) {
      const name = oneSecond ? s.names.markPrice1s : s.names.markPrice;
      const wantsOne = this.sink.wants(name);
      if (!wantsOne && !wantsArr) continue;
      const event = this.markEvent(s);
      if (wantsOne) this.sink.publish(name, JSON.stringify(event));
      if (wantsArr) rows.push(event);
    }
    if (wantsArr && rows.length > 0) this.sink.publish(arrName, JSON.stringify(rows));
  }

  private tickerEvent(s: SymbolState, st: Stats): object {
    const f = this.tickerFields(s, st);
    return {
      e: '24hrTicker',
      E: this.now,
      s: s.symbol,
      p: f.change,
      P: f.percent,
      w: f.weighted,
      c: s.price(st.last),
      Q: s.qty(st.lastQty),
      o: s.price(st.open),
      h: s.price(st.high),
      l: s.price(st.low),
      v: s.qty(st.volume),
      q: s.quote2(st.quote),
      O: this.now - DAY_MS,
      C: this.now,
      F: st.firstId,
      L: st.lastId,
      n: st.count,
      st: 1,
    };
  }

  private miniTickerEvent(s: SymbolState, st: Stats): object {
    return {
      e: '24hrMiniTicker',
      E: this.now,
      s: s.symbol,
      c: s.price(st.last),
      o: s.price(st.open),
      h: s.price(st.high),
      l: s.price(st.low),
      v: s.qty(st.volume),
      q: s.quote2(st.quote),
      st: 1,
    };
  }

  /** `<s>@ticker` and `<s>@miniTicker`, every 2 s whether or not anything traded. */
  private publishTickers(s: SymbolState): void {
    const wantsTicker = this.sink.wants(s.names.ticker);
    const wantsMini = this.sink.wants(s.names.miniTicker);
    if (!wantsTicker && !wantsMini) return;
    const st = this.stats(s, this.now);
    if (wantsTicker) this.sink.publish(s.names.ticker, JSON.stringify(this.tickerEvent(s, st)));
    if (wantsMini) {
      this.sink.publish(s.names.miniTicker, JSON.stringify(this.miniTickerEvent(s, st)));
    }
  }

  /** `!ticker@arr` and `!miniTicker@arr`, every 1 s, symbols that traded since the last one. */
  private publishTickerArrays(): void {
    const wantsTicker = this.sink.wants('!ticker@arr');
    const wantsMini = this.sink.wants('!miniTicker@arr');
    const tickers: object[] = [];
    const minis: object[] = [];
    for (const s of this.states) {
      if (!s.tickerDirty) continue;
      s.tickerDirty = false;
      if (!wantsTicker && !wantsMini) continue;
      const st = this.stats(s, this.now);
      if (wantsTicker) tickers.push(this.tickerEvent(s, st));
      if (wantsMini) minis.push(this.miniTickerEvent(s, st));
    }
    if (tickers.length > 0) this.sink.publish('!ticker@arr', JSON.stringify(tickers));
    if (minis.length > 0) this.sink.publish('!miniTicker@arr', JSON.stringify(minis));
  }

  /**
   * `<s>@kline_1m` every 250 ms (only the 1m interval is modelled). When the minute rolls over,
   * the finished candle goes out once more with `x:true` before the new one.
   */
  private publishKline(s: SymbolState): void {
    const minute = Math.floor(this.now / MINUTE_MS);
    const previous = s.klineMinute;
    s.klineMinute = minute;
    if (!this.sink.wants(s.names.kline)) return;
    if (previous !== undefined && previous < minute) {
      this.sink.publish(s.names.kline, this.klineJson(s, previous, true));
    }
    this.sink.publish(s.names.kline, this.klineJson(s, minute, false));
  }

  private klineJson(s: SymbolState, minute: number, closed: boolean): string {
    let bucket: MinuteBucket | undefined;
    for (let i = s.buckets.length - 1; i >= 0; i--) {
      const b = s.buckets[i]!;
      if (b.minute === minute) bucket = b;
      if (b.minute <= minute) break;
    }
    const flat = s.lastPrice;
    return JSON.stringify({
      e: 'kline',
      E: this.now,
      s: s.symbol,
      k: {
        t: minute * MINUTE_MS,
        T: minute * MINUTE_MS + MINUTE_MS - 1,
        s: s.symbol,
        i: '1m',
        f: bucket ? bucket.firstId : -1,
        L: bucket ? bucket.lastId : -1,
        o: s.price(bucket ? bucket.open : flat),
        c: s.price(bucket ? bucket.close : flat),
        h: s.price(bucket ? bucket.high : flat),
        l: s.price(bucket ? bucket.low : flat),
        v: s.qty(bucket ? bucket.volume : 0),
        n: bucket ? bucket.count : 0,
        x: closed,
        q: s.quoteExact(bucket ? bucket.quote : 0n),
        V: s.qty(bucket ? bucket.takerBuyVolume : 0),
        Q: s.quoteExact(bucket ? bucket.takerBuyQuote : 0n),
        B: '0',
      },
    });
  }
}

// --- Construction helpers -------------------------------------------------------------------------

function stripUndefined(options: Partial<MarketOptions>): Partial<MarketOptions> {
  const out: Partial<MarketOptions> = {};
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) Object.assign(out, { [key]: value });
  }
  return out;
}

function validateOptions(o: MarketOptions): void {
  const positive = (name: keyof MarketOptions, value: number): void => {
    if (!(Number.isFinite(value) && value > 0)) {
      throw new RangeError(`Market option ${name} must be > 0, got ${value}`);
    }
  };
  positive('tickMs', o.tickMs);
  positive('annualVolatility', o.annualVolatility);
  positive('topLevelNotional', o.topLevelNotional);
  positive('medianTakerNotional', o.medianTakerNotional);
  if (!(o.tradeRatePerSec >= 0) || !(o.makerRatePerSec >= 0)) {
    throw new RangeError('Market options tradeRatePerSec and makerRatePerSec must be >= 0');
  }
  if (!Number.isInteger(o.tradeHistory) || o.tradeHistory < 0) {
    throw new RangeError(
      `Market option tradeHistory must be an integer >= 0, got ${o.tradeHistory}`,
    );
  }
  if (!Number.isInteger(o.bookLevels) || o.bookLevels < 20) {
    throw new RangeError(`Market option bookLevels must be an integer >= 20, got ${o.bookLevels}`);
  }
  if (o.symbols.length === 0) throw new RangeError('Market option symbols must not be empty');
}

/** Sizes of the real 2026 filters, scaled from the symbol's price where Binance varies them. */
function exchangeInfoEntry(s: SymbolState): ExchangeInfoSymbol {
  const spec = s.spec;
  const initialPrice = s.initialTicks * s.tickValue;
  const maxQty = 10 ** Math.max(0, Math.round(Math.log10(67_000_000 / initialPrice)));
  const marketMaxQty = Math.max(1, Math.round(maxQty * 0.12));
  const minPriceTicks = Math.max(1, Math.round((initialPrice * 0.004) / s.tickValue));
  const notional = initialPrice >= 10_000 ? '100' : initialPrice >= 1_000 ? '20' : '5';
  return {
    symbol: spec.symbol,
    pair: spec.symbol,
    contractType: 'PERPETUAL',
    deliveryDate: 4_133_404_800_000,
    onboardDate: 1_569_398_400_000,
    status: spec.status ?? 'TRADING',
    maintMarginPercent: '2.5000',
    requiredMarginPercent: '5.0000',
    baseAsset: spec.baseAsset,
    quoteAsset: spec.quoteAsset,
    marginAsset: spec.quoteAsset,
    pricePrecision: spec.pricePrecision,
    quantityPrecision: spec.quantityPrecision,
    baseAssetPrecision: 8,
    quotePrecision: 8,
    underlyingType: 'COIN',
    underlyingSubType: spec.baseAsset === 'BTC' ? ['PoW'] : ['Layer-1'],
    settlePlan: 0,
    triggerProtect: '0.0500',
    liquidationFee: '0.012500',
    marketTakeBound: '0.05',
    maxMoveOrderLimit: 10_000,
    filters: [
      {
        filterType: 'PRICE_FILTER',
        minPrice: s.price(minPriceTicks),
        maxPrice: String(Math.round(initialPrice * 12)),
        tickSize: spec.tickSize,
      },
      {
        filterType: 'LOT_SIZE',
        minQty: spec.stepSize,
        maxQty: String(maxQty),
        stepSize: spec.stepSize,
      },
      {
        filterType: 'MARKET_LOT_SIZE',
        minQty: spec.stepSize,
        maxQty: String(marketMaxQty),
        stepSize: spec.stepSize,
      },
      { filterType: 'MAX_NUM_ORDERS', limit: 200 },
      { filterType: 'MIN_NOTIONAL', notional },
      {
        filterType: 'PERCENT_PRICE',
        multiplierUp: '1.0500',
        multiplierDown: '0.9500',
        multiplierDecimal: '4',
      },
    ],
    orderTypes: [
      'LIMIT',
      'MARKET',
      'STOP',
      'STOP_MARKET',
      'TAKE_PROFIT',
      'TAKE_PROFIT_MARKET',
      'TRAILING_STOP_MARKET',
    ],
    timeInForce: ['GTC', 'IOC', 'FOK', 'GTX', 'GTD'],
  };
}
