import { DEPTH_LIMITS, DEPTH_LIMIT_WEIGHT } from '../binance/rules.js';
import { BookSync, type DepthDiff, type DepthSnapshot } from '../binance/book-sync.js';
import type { ExchangeInfo, SymbolInfo } from '../binance/exchange-info.js';
import type { BinanceRest } from '../binance/rest.js';
import type { Hub, TopicSource } from '../hub/hub.js';
import type { Logger } from '../log.js';
import type { MarketApi, OrderBookView, TickerView, TradeView } from '../schema/context.js';

/** The part of the upstream stream manager the market service needs. */
export interface StreamSubscriber {
  subscribe(
    stream: string,
    listener: { onData(data: unknown): void; onGap?(reason: string): void },
  ): { release(): void };
}

export interface MarketServiceOptions {
  rest: BinanceRest;
  exchangeInfo: ExchangeInfo;
  streams: StreamSubscriber;
  hub: Hub;
  logger: Logger;
  /** Which diff stream feeds the books (Binance: 100 ms is the fastest documented speed). */
  depthStreamSuffix?: '@depth@100ms' | '@depth' | '@depth@500ms';
  /** Trades a slow subscriber may fall behind before the oldest are dropped. */
  tradeQueueCapacity?: number;
}

/** One shared order book per symbol, fed by one upstream diff stream. */
class BookTopic implements TopicSource<BookSync> {
  private sync: BookSync | undefined;
  private lease: { release(): void } | undefined;

  constructor(
    private readonly symbol: string,
    private readonly service: MarketService,
  ) {}

  start(publish: (value: BookSync) => void): void {
    const { rest, streams, logger, depthStreamSuffix } = this.service.deps;
    const log = logger.child({ symbol: this.symbol });
    const sync = new BookSync({
      symbol: this.symbol,
      // Fetched off the message path; the synchronizer buffers diffs meanwhile.
      fetchSnapshot: async (symbol) =>
        (await rest.get('/fapi/v1/depth', { symbol, limit: 1000 }, 20)) as DepthSnapshot,
      onUpdate: (view) => publish(view as BookSync),
      onResync: (reason) => log.info('order book resync', { reason }),
      onFetchError: (error, attempt, retryInMs) =>
        log.warn('order book snapshot failed', {
          attempt,
          retryInMs,
          error: error instanceof Error ? error.message : String(error),
        }),
      onError: (error) => log.error('order book callback failed', { error }),
    });
    this.sync = sync;
    this.service.books.set(this.symbol, sync);
    this.lease = streams.subscribe(`${this.symbol.toLowerCase()}${depthStreamSuffix}`, {
      onData: (data) => sync.onDiff(data as DepthDiff),
      onGap: (reason) => sync.resync(reason),
    });
  }

  current(): BookSync | undefined {
    return this.sync?.live ? this.sync : undefined;
  }

  stop(): void {
    this.lease?.release();
    this.sync?.close();
    if (this.service.books.get(this.symbol) === this.sync) this.service.books.delete(this.symbol);
  }
}

/** Aggregate trades of one symbol. */
class TradeTopic implements TopicSource<TradeView> {
  private lease: { release(): void } | undefined;
  constructor(
    private readonly symbol: string,
    private readonly streams: StreamSubscriber,
  ) {}

  start(publish: (value: TradeView) => void): void {
    this.lease = this.streams.subscribe(`${this.symbol.toLowerCase()}@aggTrade`, {
      onData: (data) => {
        const t = toTrade(data);
        if (t) publish(t);
      },
    });
  }

  stop(): void {
    this.lease?.release();
  }
}

/** 24 h statistics of one symbol: a REST value at once, then every `24hrTicker` event. */
class TickerTopic implements TopicSource<TickerView> {
  private lease: { release(): void } | undefined;
  private last: TickerView | undefined;
  private stopped = false;

  constructor(
    private readonly symbol: string,
    private readonly service: MarketService,
  ) {}

  start(publish: (value: TickerView) => void): void {
    const emit = (t: TickerView): void => {
      if (this.last && t.eventTime < this.last.eventTime) return;
      this.last = t;
      publish(t);
    };
    this.lease = this.service.deps.streams.subscribe(`${this.symbol.toLowerCase()}@ticker`, {
      onData: (data) => {
        const t = tickerFromStream(data);
        if (t) emit(t);
      },
    });
    this.service
      .restTicker(this.symbol)
      .then((t) => {
        if (!this.stopped && !this.last) emit(t);
      })
      .catch((error: unknown) =>
        this.service.deps.logger.warn('ticker snapshot failed', {
          symbol: this.symbol,
          error: error instanceof Error ? error.message : String(error),
        }),
      );
  }

  current(): TickerView | undefined {
    return this.last;
  }

  stop(): void {
    this.stopped = true;
    this.lease?.release();
  }
}

/**
 * Public market data: symbol validation against exchangeInfo, one shared book/trade/ticker
 * topic per symbol, REST fallbacks for queries.
 */
export class MarketService implements MarketApi {
  /** live books by symbol, for queries and status */
  readonly books = new Map<string, BookSync>();
  readonly deps: Required<Omit<MarketServiceOptions, 'exchangeInfo' | 'hub'>>;

  constructor(private readonly options: MarketServiceOptions) {
    this.deps = {
      rest: options.rest,
      streams: options.streams,
      logger: options.logger,
      depthStreamSuffix: options.depthStreamSuffix ?? '@depth@100ms',
      tradeQueueCapacity: options.tradeQueueCapacity ?? 1000,
    };
  }

  async symbols(): Promise<SymbolInfo[]> {
    const all = await this.options.exchangeInfo.all();
    return all.filter((s) => s.status === 'TRADING' && s.contractType.endsWith('PERPETUAL'));
  }

  async orderBook(symbolInput: string, depth: number): Promise<OrderBookView> {
    const { symbol } = await this.options.exchangeInfo.validate(symbolInput);
    const live = this.books.get(symbol);
    if (live?.live) return viewOf(live, depth);
    // the smallest allowed REST limit that covers `depth`
    const limit = DEPTH_LIMITS.find((l) => l >= depth) ?? 1000;
    const snap = (await this.deps.rest.get(
      '/fapi/v1/depth',
      { symbol, limit },
      DEPTH_LIMIT_WEIGHT[limit],
    )) as {
      lastUpdateId: number;
      E?: number;
      T?: number;
      bids: [string, string][];
      asks: [string, string][];
    };
    const level = ([price, quantity]: [string, string]): { price: string; quantity: string } => ({
      price,
      quantity,
    });
    return {
      symbol,
      lastUpdateId: snap.lastUpdateId,
      eventTime: snap.E ?? Date.now(),
      transactionTime: snap.T ?? snap.E ?? Date.now(),
      bids: snap.bids
        .filter((l) => Number(l[1]) > 0)
        .slice(0, depth)
        .map(level),
      asks: snap.asks
        .filter((l) => Number(l[1]) > 0)
        .slice(0, depth)
        .map(level),
    };
  }

  async ticker(symbolInput: string): Promise<TickerView> {
    const { symbol } = await this.options.exchangeInfo.validate(symbolInput);
    return this.restTicker(symbol);
  }

  async restTicker(symbol: string): Promise<TickerView> {
    const raw = (await this.deps.rest.get('/fapi/v1/ticker/24hr', { symbol }, 1)) as Record<
      string,
      unknown
    >;
    return tickerFromRest(raw);
  }

  async subscribeOrderBook(
    symbolInput: string,
    depth: number,
    throttleMs: number,
  ): Promise<AsyncIterableIterator<OrderBookView>> {
    const { symbol } = await this.options.exchangeInfo.validate(symbolInput);
    const signals = this.options.hub.subscribe(
      `book:${symbol}`,
      () => new BookTopic(symbol, this),
      {
        policy: 'latest',
      },
    );
    return new BookViewIterator(signals, depth, throttleMs);
  }

  async subscribeTrades(symbolInput: string): Promise<AsyncIterableIterator<TradeView>> {
    const { symbol } = await this.options.exchangeInfo.validate(symbolInput);
    return this.options.hub.subscribe(
      `trades:${symbol}`,
      () => new TradeTopic(symbol, this.deps.streams),
      {
        policy: 'drop-oldest',
        capacity: this.deps.tradeQueueCapacity,
      },
    );
  }

  async subscribeTicker(symbolInput: string): Promise<AsyncIterableIterator<TickerView>> {
    const { symbol } = await this.options.exchangeInfo.validate(symbolInput);
    return this.options.hub.subscribe(`ticker:${symbol}`, () => new TickerTopic(symbol, this), {
      policy: 'latest',
    });
  }
}

/** The top `depth` levels of a live book, as the schema's OrderBook. */
export function viewOf(sync: BookSync, depth: number): OrderBookView {
  return {
    symbol: sync.symbol,
    lastUpdateId: sync.lastUpdateId,
    eventTime: sync.eventTime,
    transactionTime: sync.transactionTime,
    bids: sync.book.top('bid', depth) as OrderBookView['bids'],
    asks: sync.book.top('ask', depth) as OrderBookView['asks'],
  };
}

/**
 * Turns "the shared book changed" signals into views for one subscriber: built at read time
 * from the live book (so a slow reader gets the latest view, never a stale one), never while
 * the book is resyncing, never twice for the same update id, and at most one per `throttleMs`.
 */
class BookViewIterator implements AsyncIterableIterator<OrderBookView> {
  private lastEmitAt = 0;
  private lastId = -1;
  private sleeping: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  private done = false;

  constructor(
    private readonly signals: AsyncIterableIterator<BookSync>,
    private readonly depth: number,
    private readonly throttleMs: number,
  ) {}

  async next(): Promise<IteratorResult<OrderBookView>> {
    for (;;) {
      if (this.done) return { value: undefined, done: true };
      const signal = await this.signals.next();
      if (signal.done || this.done) return { value: undefined, done: true };
      if (this.throttleMs > 0) {
        const wait = this.lastEmitAt + this.throttleMs - Date.now();
        if (wait > 0) await this.sleep(wait);
        if (this.done) return { value: undefined, done: true };
      }
      const sync = signal.value;
      if (!sync.live || sync.lastUpdateId === this.lastId) continue;
      this.lastId = sync.lastUpdateId;
      this.lastEmitAt = Date.now();
      return { value: viewOf(sync, this.depth), done: false };
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.sleeping = {
        timer: setTimeout(() => {
          this.sleeping = undefined;
          resolve();
        }, ms),
        resolve,
      };
    });
  }

  async return(): Promise<IteratorResult<OrderBookView>> {
    this.done = true;
    if (this.sleeping) {
      clearTimeout(this.sleeping.timer);
      this.sleeping.resolve();
      this.sleeping = undefined;
    }
    await this.signals.return?.();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<OrderBookView> {
    return this;
  }
}

function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : String(v ?? '0');
}

/** `aggTrade` → Trade; undefined for anything else. */
function toTrade(data: unknown): TradeView | undefined {
  const d = data as Record<string, unknown>;
  if (d.e !== 'aggTrade' || typeof d.s !== 'string') return undefined;
  const buyerIsMaker = d.m === true;
  return {
    symbol: d.s,
    aggregateTradeId: num(d.a),
    price: str(d.p),
    quantity: str(d.q),
    firstTradeId: num(d.f),
    lastTradeId: num(d.l),
    tradeTime: num(d.T),
    eventTime: num(d.E),
    buyerIsMaker,
    side: buyerIsMaker ? 'SELL' : 'BUY',
  };
}

function tickerFromStream(data: unknown): TickerView | undefined {
  const d = data as Record<string, unknown>;
  if (d.e !== '24hrTicker' || typeof d.s !== 'string') return undefined;
  return {
    symbol: d.s,
    lastPrice: str(d.c),
    lastQuantity: str(d.Q),
    priceChange: str(d.p),
    priceChangePercent: str(d.P),
    weightedAveragePrice: str(d.w),
    openPrice: str(d.o),
    highPrice: str(d.h),
    lowPrice: str(d.l),
    volume: str(d.v),
    quoteVolume: str(d.q),
    openTime: num(d.O),
    closeTime: num(d.C),
    firstTradeId: num(d.F),
    lastTradeId: num(d.L),
    tradeCount: num(d.n),
    eventTime: num(d.E),
  };
}

function tickerFromRest(d: Record<string, unknown>): TickerView {
  return {
    symbol: str(d.symbol),
    lastPrice: str(d.lastPrice),
    lastQuantity: str(d.lastQty),
    priceChange: str(d.priceChange),
    priceChangePercent: str(d.priceChangePercent),
    weightedAveragePrice: str(d.weightedAvgPrice),
    openPrice: str(d.openPrice),
    highPrice: str(d.highPrice),
    lowPrice: str(d.lowPrice),
    volume: str(d.volume),
    quoteVolume: str(d.quoteVolume),
    openTime: num(d.openTime),
    closeTime: num(d.closeTime),
    firstTradeId: num(d.firstId),
    lastTradeId: num(d.lastId),
    tradeCount: num(d.count),
    eventTime: num(d.closeTime),
  };
}
