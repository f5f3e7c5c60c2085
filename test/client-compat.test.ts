/**
 * Independent clients against the simulator: well-known Binance USDⓈ-M client libraries from
 * the npm registry, pointed at a simulator on loopback, run their normal futures flows (markets,
 * order book, ticker, live book, live trades, signed account, a MARKET order and the user-data
 * stream that reports it, then trade and kline history, the account's own trades and orders,
 * position mode and fees). Apart from freezing the market model for a moment and reading the
 * simulator's state back for the assertions, every request and frame is the library's own. The
 * last block checks, on the wire, what the simulator had to add for these libraries.
 *
 * - ccxt (`pro.binanceusdm`): every `urls.api` entry rewritten to the simulator (REST and WS).
 * - binance (tiagosiebler): `USDMClient({ baseUrl })`, `WebsocketClient({ wsUrl, restOptions })`.
 * - @binance/derivatives-trading-usds-futures (the official connector): `basePath`, `wsURL`.
 */
import {
  DerivativesTradingUsdsFutures,
  DerivativesTradingUsdsFuturesRestAPI as RestApi,
  DerivativesTradingUsdsFuturesWebsocketStreams as Streams,
} from '@binance/derivatives-trading-usds-futures';
import { USDMClient, WebsocketClient } from 'binance';
import { pro } from 'ccxt';
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { startSimulator, type SimulatorHandle } from '../src/simulator/index.js';
import type { Market } from '../src/simulator/market.js';
import { sleep, waitFor } from './helpers/wait.js';
import { RecordingSocket } from './helpers/ws-client.js';

const SYMBOL = 'BTCUSDT';
const UNIFIED = 'BTC/USDT:USDT';
const ALICE = { key: 'alice-demo-api-key', secret: 'alice-demo-api-secret' };
/** Levels compared between a client's book and the simulator's own book. */
const LEVELS = 20;

type NumLevel = [number, number];

function numeric(levels: readonly (readonly unknown[])[], n: number): NumLevel[] {
  return levels.slice(0, n).map((l) => [Number(l[0]), Number(l[1])]);
}

function marketOf(sim: SimulatorHandle): Market {
  const market = sim.market;
  if (!market) throw new Error('the simulator runs its market model in these tests');
  return market;
}

/** The simulator's own top of book, as numbers. */
function simTop(sim: SimulatorHandle, n = LEVELS): { bids: NumLevel[]; asks: NumLevel[] } {
  const book = marketOf(sim).bookForTest(SYMBOL);
  return { bids: numeric(book.bids, n), asks: numeric(book.asks, n) };
}

/** Waits until the simulator's private stream has a subscriber for the account's listenKey. */
async function privateStreamOpen(sim: SimulatorHandle, account: string): Promise<string> {
  return waitFor(
    () => {
      const key = sim.accounts.listenKeyOf(account);
      return key !== undefined && sim.streams.subscriberCount(key) > 0 ? key : undefined;
    },
    5_000,
    `a /private subscriber for ${account}'s listenKey`,
  );
}

function record(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null) throw new Error('expected an object');
  return value as Record<string, unknown>;
}

/** Every REST call a library made: all USDⓈ-M (`/fapi/`) and all answered without error. */
function expectOnlyServedFapiCalls(sim: SimulatorHandle): void {
  const calls = sim.rest.log.map((l) => `${l.method} ${l.path} ${l.status}`);
  expect(calls.length).toBeGreaterThan(0);
  expect(calls.filter((c) => !/^\w+ \/fapi\/\S+ [23]\d\d$/.test(c))).toEqual([]);
}

/**
 * A local book kept by Binance's USDⓈ-M rules (reference §5) from a client library's parsed
 * diff events and REST snapshot: buffer, drop `u < lastUpdateId`, first event straddles the
 * snapshot, then `pu` must equal the previous `u`.
 */
class LocalBook {
  readonly bids = new Map<number, number>();
  readonly asks = new Map<number, number>();
  private buffer: Record<string, unknown>[] = [];
  private lastU: number | undefined;
  synced = false;
  applied = 0;

  onDiff(event: Record<string, unknown>): void {
    if (!this.synced) {
      this.buffer.push(event);
      return;
    }
    this.apply(event);
  }

  onSnapshot(snapshot: {
    lastUpdateId: number;
    bids: readonly (readonly unknown[])[];
    asks: readonly (readonly unknown[])[];
  }): void {
    for (const [p, q] of numeric(snapshot.bids, snapshot.bids.length)) this.bids.set(p, q);
    for (const [p, q] of numeric(snapshot.asks, snapshot.asks.length)) this.asks.set(p, q);
    const pending = this.buffer.filter((e) => Number(e.u) >= snapshot.lastUpdateId);
    this.buffer = [];
    const first = pending[0];
    if (first && !(Number(first.U) <= snapshot.lastUpdateId)) {
      throw new Error('the first diff after the snapshot does not straddle it');
    }
    this.synced = true;
    for (const e of pending) this.apply(e);
  }

  private apply(e: Record<string, unknown>): void {
    if (this.lastU !== undefined && Number(e.pu) !== this.lastU) {
      throw new Error(`pu ${String(e.pu)} does not follow u ${this.lastU}`);
    }
    this.lastU = Number(e.u);
    for (const [side, levels] of [
      [this.bids, e.b],
      [this.asks, e.a],
    ] as const) {
      if (!Array.isArray(levels)) throw new Error('a diff without levels');
      for (const [p, q] of numeric(levels as unknown[][], levels.length)) {
        if (q === 0) side.delete(p);
        else side.set(p, q);
      }
    }
    this.applied += 1;
  }

  top(n = LEVELS): { bids: NumLevel[]; asks: NumLevel[] } {
    const sorted = (m: Map<number, number>, desc: boolean): NumLevel[] =>
      [...m.entries()].sort((x, y) => (desc ? y[0] - x[0] : x[0] - y[0])).slice(0, n);
    return { bids: sorted(this.bids, true), asks: sorted(this.asks, false) };
  }
}

// ---------------------------------------------------------------------------------------------

describe('ccxt pro binanceusdm against the simulator', () => {
  let sim: SimulatorHandle;
  let ex: InstanceType<typeof pro.binanceusdm>;

  beforeAll(async () => {
    sim = await startSimulator({ port: 0, seed: 11 });
    ex = new pro.binanceusdm({
      apiKey: ALICE.key,
      secret: ALICE.secret,
      // fetchCurrencies would ask sapi (spot wallet) for coin details: not a futures endpoint
      options: { fetchCurrencies: false },
    });
    // Every REST base (fapi public/private v1–v3, and the spot/delivery/options ones it never
    // needs here) and every stream base go to the simulator: nothing can reach binance.com.
    pointAtSimulator(ex.urls.api, sim);
    expect(JSON.stringify(ex.urls.api)).not.toMatch(/binance/);
    // ccxt refuses plain ws:// URLs until its http agent is loaded
    await ex.loadHttpProxyAgent();
  });

  afterAll(async () => {
    await ex.close();
    await sim.close();
  });

  it('loads the markets from exchangeInfo with their filters', async () => {
    const markets = await ex.loadMarkets();
    expect(Object.keys(markets).sort()).toEqual([
      'BTC/USDT:USDT',
      'ETH/USDT:USDT',
      'SOL/USDT:USDT',
    ]);
    const btc = ex.market(UNIFIED);
    expect(btc).toMatchObject({ id: SYMBOL, linear: true, swap: true, settle: 'USDT' });
    expect(btc.precision).toMatchObject({ price: 0.1, amount: 0.001 });
    expect(btc.limits.amount?.min).toBe(0.001);
  });

  it('fetches an order book snapshot and the 24h ticker', async () => {
    const book = await ex.fetchOrderBook(UNIFIED, 5);
    expect(book.bids).toHaveLength(5);
    expect(book.asks).toHaveLength(5);
    expect(Number(book.bids[0]?.[0])).toBeLessThan(Number(book.asks[0]?.[0]));
    expect(book.nonce).toBeGreaterThan(0);

    const ticker = await ex.fetchTicker(UNIFIED);
    expect(ticker.symbol).toBe(UNIFIED);
    expect(ticker.last).toBeGreaterThan(0);
    expect(ticker.high).toBeGreaterThanOrEqual(ticker.low ?? Infinity);
    expect(record(ticker.info).symbol).toBe(SYMBOL);
  });

  it('keeps a live order book (snapshot + diffs) equal to the simulator book', async () => {
    let nonce = 0;
    for (let i = 0; i < 4; i++) {
      const book = await ex.watchOrderBook(UNIFIED);
      expect(Number(book.bids[0]?.[0])).toBeLessThan(Number(book.asks[0]?.[0]));
      expect(book.nonce ?? 0).toBeGreaterThan(nonce);
      nonce = book.nonce ?? 0;
    }
    // Freeze the market: stop() sends the open diff windows, so a client that follows the diffs
    // ends exactly on the simulator's own book.
    marketOf(sim).stop();
    const expected = simTop(sim);
    await waitFor(
      () => {
        const book = ex.orderbooks[UNIFIED];
        return book && JSON.stringify(numeric(book.bids, LEVELS)) === JSON.stringify(expected.bids);
      },
      3_000,
      "ccxt's book to reach the frozen book",
    );
    const book = ex.orderbooks[UNIFIED];
    expect(numeric(book?.bids ?? [], LEVELS)).toEqual(expected.bids);
    expect(numeric(book?.asks ?? [], LEVELS)).toEqual(expected.asks);
    expect(book?.nonce).toBe(marketOf(sim).bookForTest(SYMBOL).lastUpdateId);
    marketOf(sim).start();
  });

  it('watches live trades (ccxt default: the raw <symbol>@trade stream on /public)', async () => {
    const trades = await ex.watchTrades(UNIFIED);
    expect(trades.length).toBeGreaterThan(0);
    const t = trades[0];
    expect(t?.symbol).toBe(UNIFIED);
    expect(t?.price).toBeGreaterThan(0);
    expect(t?.amount).toBeGreaterThan(0);
    expect(['buy', 'sell']).toContain(t?.side);
    expect(record(t?.info).e).toBe('trade');

    const agg = await ex.watchTrades(UNIFIED, undefined, undefined, { name: 'aggTrade' });
    expect(record(agg[0]?.info).e).toBe('aggTrade');
  });

  it('reads the signed balance and positions, places a MARKET order and sees it on the user stream', async () => {
    const balance = await ex.fetchBalance();
    expect(balance.USDT).toMatchObject({ free: 10000, used: 0, total: 10000 });
    const positions = await ex.fetchPositions([UNIFIED]);
    expect(positions.every((p) => !p.contracts)).toBe(true);

    // First call: the REST snapshot of positions; later calls wait for ACCOUNT_UPDATE.
    expect(await ex.watchPositions([UNIFIED])).toEqual([]);
    const ordersP = ex.watchOrders(UNIFIED);
    const balanceP = ex.watchBalance();
    const positionsP = ex.watchPositions([UNIFIED]);
    await privateStreamOpen(sim, 'alice');

    const order = await ex.createOrder(UNIFIED, 'market', 'buy', 0.01);
    expect(order).toMatchObject({ status: 'closed', filled: 0.01, side: 'buy', type: 'market' });
    // ids above 2^53 survive ccxt's parsing
    expect(order.id).toBe('8389765489680951453');

    let orders = await ordersP;
    while (!orders.some((o) => o.id === order.id && o.status === 'closed')) {
      orders = await ex.watchOrders(UNIFIED);
    }
    const streamed = orders.find((o) => o.id === order.id && o.status === 'closed');
    expect(streamed).toMatchObject({ filled: 0.01, average: order.average });
    expect(streamed?.clientOrderId).toBe(order.clientOrderId);

    // ACCOUNT_UPDATE carries the wallet balance (`wb`); REST totals add the unrealized PnL.
    const streamedBalance = await balanceP;
    const account = record((await ex.fetchBalance()).info);
    const usdt = (account.assets as unknown[]).map(record).find((a) => a.asset === 'USDT');
    expect(streamedBalance.USDT?.total).toBe(Number(usdt?.walletBalance));
    expect(streamedBalance.USDT?.total).toBeLessThan(10000); // the taker fee

    const live = await positionsP;
    expect(live.find((p) => p.symbol === UNIFIED)).toMatchObject({ contracts: 0.01, side: 'long' });
    const [rest] = await ex.fetchPositions([UNIFIED]);
    expect(rest).toMatchObject({ contracts: 0.01, side: 'long', entryPrice: order.average });
  });

  it('fetches trades, candles, its own trades and orders, the position mode and its fees', async () => {
    // ccxt spaces calls by Binance's weights (aggTrades 20, positionSide/dual 30, …: seconds);
    // the simulator's own weight limit still applies
    ex.enableRateLimit = false;
    onTestFinished(() => {
      ex.enableRateLimit = true;
    });
    // public history: aggTrades (ccxt's default for linear swaps), raw trades, klines
    const trades = await ex.fetchTrades(UNIFIED, undefined, 5);
    expect(trades.length).toBeGreaterThan(0);
    expect(trades.length).toBeLessThanOrEqual(5);
    for (const t of trades) {
      expect(t).toMatchObject({ symbol: UNIFIED });
      expect(t.price).toBeGreaterThan(0);
      expect(t.amount).toBeGreaterThan(0);
      expect(['buy', 'sell']).toContain(t.side);
      expect(record(t.info)).toHaveProperty('a');
    }
    const ids = trades.map((t) => Number(t.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const since = (trades[0]?.timestamp ?? Date.now()) - 60_000;
    const window = await ex.fetchTrades(UNIFIED, since); // startTime, endTime = since + 1 h
    expect(window.length).toBeGreaterThanOrEqual(trades.length);
    expect(window.every((t) => (t.timestamp ?? 0) >= since)).toBe(true);
    const raw = await ex.fetchTrades(UNIFIED, undefined, 3, {
      fetchTradesMethod: 'fapiPublicGetTrades',
    });
    expect(raw.length).toBeGreaterThan(0);
    expect(record(raw[0]?.info)).toHaveProperty('isBuyerMaker');

    const candles = await ex.fetchOHLCV(UNIFIED, '1m', undefined, 3);
    expect(candles.length).toBeGreaterThan(0);
    const last = candles[candles.length - 1] ?? [];
    expect(last).toHaveLength(6);
    expect(Number(last[0]) % 60_000).toBe(0);
    expect(Number(last[2])).toBeGreaterThanOrEqual(Number(last[3]));
    // the simulator started less than a minute or two ago: these candles hold all its trades
    expect(candles.reduce((sum, c) => sum + Number(c[5]), 0)).toBeGreaterThan(0);
    const mark = await ex.fetchOHLCV(UNIFIED, '1m', undefined, 2, { price: 'mark' });
    expect(Number(mark[mark.length - 1]?.[4])).toBeGreaterThan(0);
    expect(await ex.fetchFundingRateHistory(UNIFIED)).toEqual([]); // no 8 h mark passed yet

    // private history: the MARKET order of the previous test and its fills
    const mine = await ex.fetchMyTrades(UNIFIED);
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((t) => t.order === '8389765489680951453' && t.side === 'buy')).toBe(true);
    expect(mine.reduce((sum, t) => sum + (t.amount ?? 0), 0)).toBeCloseTo(0.01, 9);
    expect(mine[0]).toMatchObject({ takerOrMaker: 'taker', fee: { currency: 'USDT' } });
    const orders = await ex.fetchOrders(UNIFIED);
    expect(orders).toHaveLength(1);
    expect(orders[0]).toMatchObject({ id: '8389765489680951453', status: 'closed', filled: 0.01 });

    expect(await ex.fetchPositionMode(UNIFIED)).toMatchObject({ hedged: false });
    expect(await ex.fetchTradingFee(UNIFIED)).toMatchObject({ maker: 0.0002, taker: 0.0005 });
    const [marginMode] = Object.values(await ex.fetchMarginModes([UNIFIED]));
    expect(marginMode).toMatchObject({ symbol: UNIFIED, marginMode: 'cross' });
  });

  it('asked only for /fapi endpoints, every one served', () => {
    expectOnlyServedFapiCalls(sim);
  });
});

/** Rewrites every https/wss base in ccxt's `urls.api` tree to the simulator's host. */
function pointAtSimulator(tree: Record<string, unknown>, sim: SimulatorHandle): void {
  for (const [k, v] of Object.entries(tree)) {
    if (typeof v === 'string') {
      tree[k] = v.replace(/^https:\/\/[^/]+/, sim.restUrl).replace(/^wss:\/\/[^/]+/, sim.streamUrl);
    } else if (typeof v === 'object' && v !== null) {
      pointAtSimulator(v as Record<string, unknown>, sim);
    }
  }
}

// ---------------------------------------------------------------------------------------------

/** The library logs every connection at `info`; keep errors only. */
const quietLogger = {
  trace: () => {},
  info: () => {},
  error: (...a: unknown[]) => console.error(...a),
};

/** A frame as the library hands it over: the bare event, or a combined `{stream, data}`. */
function eventOf(message: unknown): Record<string, unknown> | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const m = message as Record<string, unknown>;
  const data = 'data' in m && typeof m.data === 'object' && m.data !== null ? m.data : m;
  return data as Record<string, unknown>;
}

describe('binance (tiagosiebler) USDMClient and WebsocketClient against the simulator', () => {
  let sim: SimulatorHandle;
  let rest: USDMClient;
  let ws: WebsocketClient;
  const events: Record<string, unknown>[] = [];
  const book = new LocalBook();

  beforeAll(async () => {
    sim = await startSimulator({ port: 0, seed: 12 });
    const keys = { api_key: ALICE.key, api_secret: ALICE.secret };
    rest = new USDMClient({ ...keys, baseUrl: sim.restUrl });
    // wsUrl replaces the stream host; the library appends /public/stream, /market/stream and
    // /private/stream?listenKey=…; restOptions.baseUrl is for its own listenKey calls.
    ws = new WebsocketClient(
      { ...keys, wsUrl: sim.streamUrl, restOptions: { baseUrl: sim.restUrl } },
      quietLogger,
    );
    ws.on('message', (message) => {
      const e = eventOf(message);
      if (!e) return;
      if (e.e === 'depthUpdate' && e.s === SYMBOL) book.onDiff(e);
      else events.push(e);
    });
  });

  afterAll(async () => {
    ws.closeAll(true);
    await sim.close();
  });

  it('reads exchangeInfo, a depth snapshot and the 24h ticker', async () => {
    const info = await rest.getExchangeInfo();
    const btc = info.symbols.find((s) => s.symbol === SYMBOL);
    expect(btc?.filters).toContainEqual(
      expect.objectContaining({ filterType: 'PRICE_FILTER', tickSize: '0.10' }),
    );
    const depth = await rest.getOrderBook({ symbol: SYMBOL, limit: 5 });
    expect(depth.bids).toHaveLength(5);
    expect(Number(depth.bids[0]?.[0])).toBeLessThan(Number(depth.asks[0]?.[0]));
    const ticker = await rest.get24hrChangeStatistics({ symbol: SYMBOL });
    expect(ticker.symbol).toBe(SYMBOL);
    expect(Number(ticker.lastPrice)).toBeGreaterThan(0);
  });

  it('follows diff depth on /public and aggTrade on /market, ending on the simulator book', async () => {
    await ws.subscribeDiffBookDepth('btcusdt', 100, 'usdm');
    await ws.subscribeAggregateTrades('btcusdt', 'usdm');
    await waitFor(() => sim.streams.subscriberCount('btcusdt@depth@100ms') > 0, 5_000, 'depth');
    await sleep(150); // let diffs buffer, as a client that subscribes first must
    book.onSnapshot(await rest.getOrderBook({ symbol: SYMBOL, limit: 1000 }));
    await waitFor(() => book.applied >= 3, 5_000, 'three diffs applied');
    marketOf(sim).stop();
    const expected = simTop(sim);
    await waitFor(
      () => JSON.stringify(book.top()) === JSON.stringify(expected),
      3_000,
      'the local book to reach the frozen book',
    );
    expect(book.top()).toEqual(expected);
    marketOf(sim).start();

    const trade = await waitFor(() => events.find((e) => e.e === 'aggTrade'), 5_000, 'aggTrade');
    expect(trade).toMatchObject({ s: SYMBOL, st: 1 });
    expect(Number(trade.p)).toBeGreaterThan(0);
  });

  it('reads balance and positions, places a MARKET order and gets it on the user stream', async () => {
    const [usdt] = await rest.getBalanceV3();
    expect(usdt).toMatchObject({ asset: 'USDT', balance: '10000.00000000' });
    expect(await rest.getPositionsV3({ symbol: SYMBOL })).toEqual([]);

    await ws.subscribeUsdFuturesUserDataStream();
    await privateStreamOpen(sim, 'alice');
    const ack = await rest.submitNewOrder({
      symbol: SYMBOL,
      side: 'BUY',
      type: 'MARKET',
      quantity: 0.01,
    });
    expect(ack).toMatchObject({ status: 'NEW', origQty: '0.010', type: 'MARKET' });
    // The library parses with JSON.parse, so the >2^53 orderId is rounded: match on the
    // client order id (the library's own `x-…` id), as its users must.
    const filled = await waitFor(
      () =>
        events.find((e) => {
          if (e.e !== 'ORDER_TRADE_UPDATE') return false;
          const o = record(e.o);
          return o.c === ack.clientOrderId && o.X === 'FILLED';
        }),
      5_000,
      'ORDER_TRADE_UPDATE FILLED',
    );
    expect(record(filled.o)).toMatchObject({ s: SYMBOL, S: 'BUY', o: 'MARKET', z: '0.010' });
    const update = await waitFor(
      () => events.find((e) => e.e === 'ACCOUNT_UPDATE'),
      5_000,
      'ACCOUNT_UPDATE',
    );
    expect(record(update.a).m).toBe('ORDER');

    const [position] = await rest.getPositionsV3({ symbol: SYMBOL });
    expect(position).toMatchObject({ symbol: SYMBOL, positionAmt: '0.010' });
    expect(Number(position?.entryPrice)).toBe(Number(record(filled.o).ap));
  });

  it('reads trade history, klines, its trades and orders, the position mode and its fees', async () => {
    marketOf(sim).stop(); // no trade between the reads compared below
    onTestFinished(() => marketOf(sim).start());
    const aggs = await rest.getAggregateTrades({ symbol: SYMBOL, limit: 5 });
    expect(aggs.length).toBeGreaterThan(0);
    expect(Object.keys(aggs[0] ?? {}).sort()).toEqual(['T', 'a', 'f', 'l', 'm', 'nq', 'p', 'q']);
    const recent = await rest.getRecentTrades({ symbol: SYMBOL, limit: 5 });
    expect(recent.length).toBeGreaterThan(0);
    expect(recent[recent.length - 1]?.id).toBe(aggs[aggs.length - 1]?.l);
    const klines = await rest.getKlines({ symbol: SYMBOL, interval: '1m', limit: 3 });
    expect(klines.length).toBeGreaterThan(0);
    expect(klines.every((k) => k.length === 12)).toBe(true);

    // the MARKET order of the previous test: one order, its fills add up to 0.010
    const mine = await rest.getAccountTrades({ symbol: SYMBOL });
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.reduce((sum, t) => sum + Math.round(Number(t.qty) * 1000), 0)).toBe(10);
    expect(mine.every((t) => t.side === 'BUY' && t.commissionAsset === 'USDT')).toBe(true);
    const orders = await rest.getAllOrders({ symbol: SYMBOL });
    expect(orders).toHaveLength(1);
    expect(orders[0]).toMatchObject({ status: 'FILLED', executedQty: '0.010', type: 'MARKET' });

    expect(await rest.getCurrentPositionMode()).toEqual({ dualSidePosition: false });
    expect(await rest.getMultiAssetsMode()).toEqual({ multiAssetsMargin: false });
    expect(await rest.getAccountCommissionRate({ symbol: SYMBOL })).toMatchObject({
      takerCommissionRate: '0.0005',
    });
    expect(await rest.getFuturesAccountConfig()).toMatchObject({ dualSidePosition: false });
    const [config] = await rest.getFuturesSymbolConfig({ symbol: SYMBOL });
    expect(config).toMatchObject({ symbol: SYMBOL, marginType: 'CROSSED', leverage: 20 });
    expect(await rest.getFundingRateHistory({ symbol: SYMBOL })).toEqual([]);
  });

  it('asked only for /fapi endpoints, every one served', () => {
    expectOnlyServedFapiCalls(sim);
  });
});

// ---------------------------------------------------------------------------------------------

describe('@binance/derivatives-trading-usds-futures (official connector) against the simulator', () => {
  let sim: SimulatorHandle;
  let client: DerivativesTradingUsdsFutures;
  let streams: Awaited<ReturnType<Streams.WebsocketStreams['connect']>>;
  const events: Record<string, unknown>[] = [];
  const book = new LocalBook();

  beforeAll(async () => {
    // the connector logs every connection through console.info
    vi.spyOn(console, 'info').mockImplementation(() => undefined);
    sim = await startSimulator({ port: 0, seed: 13 });
    client = new DerivativesTradingUsdsFutures({
      configurationRestAPI: { apiKey: ALICE.key, apiSecret: ALICE.secret, basePath: sim.restUrl },
      // the connector opens <wsURL>/market/stream, /public/stream and /private/stream
      configurationWebsocketStreams: { wsURL: sim.streamUrl },
    });
  });

  afterAll(async () => {
    await streams?.disconnect();
    await sim.close();
    vi.restoreAllMocks();
  });

  it('reads exchangeInfo, a depth snapshot and the 24h ticker', async () => {
    const info = await (await client.restAPI.exchangeInformation()).data();
    expect(info.symbols?.map((s) => s.symbol)).toContain(SYMBOL);
    const depth = await (await client.restAPI.orderBook({ symbol: SYMBOL, limit: 5 })).data();
    expect(depth.bids).toHaveLength(5);
    expect(Number(depth.bids?.[0]?.[0])).toBeLessThan(Number(depth.asks?.[0]?.[0]));
    const ticker = await (
      await client.restAPI.ticker24hrPriceChangeStatistics({ symbol: SYMBOL })
    ).data();
    expect(Array.isArray(ticker)).toBe(false);
    expect(record(ticker)).toMatchObject({ symbol: SYMBOL });
  });

  it('subscribes diff depth and aggTrade (string request ids) and ends on the simulator book', async () => {
    streams = await client.websocketStreams.connect();
    streams
      .diffBookDepthStreams({
        symbol: 'btcusdt',
        updateSpeed: Streams.DiffBookDepthStreamsUpdateSpeedEnum.UPDATE_SPEED_100ms,
      })
      .on('message', (e) => book.onDiff(record(e)));
    streams.aggregateTradeStreams({ symbol: 'btcusdt' }).on('message', (e) => {
      events.push(record(e));
    });
    await waitFor(() => sim.streams.subscriberCount('btcusdt@depth@100ms') > 0, 5_000, 'depth');
    await sleep(150);
    const snapshot = await (await client.restAPI.orderBook({ symbol: SYMBOL, limit: 1000 })).data();
    book.onSnapshot({
      lastUpdateId: Number(snapshot.lastUpdateId),
      bids: snapshot.bids ?? [],
      asks: snapshot.asks ?? [],
    });
    await waitFor(() => book.applied >= 3, 5_000, 'three diffs applied');
    marketOf(sim).stop();
    const expected = simTop(sim);
    await waitFor(
      () => JSON.stringify(book.top()) === JSON.stringify(expected),
      3_000,
      'the local book to reach the frozen book',
    );
    expect(book.top()).toEqual(expected);
    marketOf(sim).start();

    const trade = await waitFor(() => events.find((e) => e.e === 'aggTrade'), 5_000, 'aggTrade');
    expect(trade).toMatchObject({ s: SYMBOL });
  });

  it('reads balance and positions, places a MARKET order and gets it on the user stream', async () => {
    const balances = await (await client.restAPI.futuresAccountBalanceV3()).data();
    expect(balances.find((b) => b.asset === 'USDT')?.balance).toBe('10000.00000000');
    const positions = await (await client.restAPI.positionInformationV3({ symbol: SYMBOL })).data();
    expect(positions).toEqual([]);

    const { listenKey } = await (await client.restAPI.startUserDataStream()).data();
    if (!listenKey) throw new Error('no listenKey');
    const user: Record<string, unknown>[] = [];
    // the connector SUBSCRIBEs the listenKey on its /private/stream connection
    streams.userData(listenKey).on('message', (e) => {
      user.push(record(e));
    });
    expect(await privateStreamOpen(sim, 'alice')).toBe(listenKey);

    const order = await (
      await client.restAPI.newOrder({
        symbol: SYMBOL,
        side: RestApi.NewOrderSideEnum.BUY,
        type: RestApi.NewOrderTypeEnum.MARKET,
        quantity: 0.01,
      })
    ).data();
    expect(order).toMatchObject({ status: 'NEW', origQty: '0.010' });
    // the connector parses with json-with-bigint: the >2^53 id arrives exact on both sides
    expect(order.orderId).toBe(8389765489680951453n);
    const filled = await waitFor(
      () =>
        user.find((e) => {
          if (e.e !== 'ORDER_TRADE_UPDATE') return false;
          const o = record(e.o);
          return o.i === order.orderId && o.X === 'FILLED';
        }),
      5_000,
      'ORDER_TRADE_UPDATE FILLED',
    );
    expect(record(filled.o)).toMatchObject({ c: order.clientOrderId, z: '0.010' });
    await waitFor(() => user.find((e) => e.e === 'TRADE_LITE'), 5_000, 'TRADE_LITE');
    await waitFor(() => user.find((e) => e.e === 'ACCOUNT_UPDATE'), 5_000, 'ACCOUNT_UPDATE');

    const after = await (await client.restAPI.positionInformationV3({ symbol: SYMBOL })).data();
    expect(after[0]).toMatchObject({ symbol: SYMBOL, positionAmt: '0.010' });
  });

  it('reads trade history, klines, its trades and orders (exact 64-bit ids) and the position mode', async () => {
    const api = client.restAPI;
    marketOf(sim).stop(); // no trade between the reads compared below
    onTestFinished(() => marketOf(sim).start());
    const aggs = await (
      await api.compressedAggregateTradesList({ symbol: SYMBOL, limit: 5 })
    ).data();
    expect(aggs.length).toBeGreaterThan(0);
    const recent = await (await api.recentTradesList({ symbol: SYMBOL, limit: 5 })).data();
    expect(recent[recent.length - 1]?.id).toBe(aggs[aggs.length - 1]?.l);
    const klines = await (
      await api.klineCandlestickData({
        symbol: SYMBOL,
        interval: RestApi.KlineCandlestickDataIntervalEnum.INTERVAL_1m,
        limit: 3,
      })
    ).data();
    expect(klines.length).toBeGreaterThan(0);
    expect(klines[klines.length - 1]).toHaveLength(12);

    const mine = await (await api.accountTradeList({ symbol: SYMBOL })).data();
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((t) => t.orderId === 8389765489680951453n)).toBe(true);
    const orders = await (await api.allOrders({ symbol: SYMBOL })).data();
    expect(orders.map((o) => [o.orderId, o.status])).toEqual([[8389765489680951453n, 'FILLED']]);
    const mode = await (await api.getCurrentPositionMode()).data();
    expect(mode).toEqual({ dualSidePosition: false });
    const fees = await (await api.userCommissionRate({ symbol: SYMBOL })).data();
    expect(fees).toMatchObject({ makerCommissionRate: '0.0002', takerCommissionRate: '0.0005' });
  });

  it('asked only for /fapi endpoints, every one served', () => {
    expectOnlyServedFapiCalls(sim);
  });
});

// ---------------------------------------------------------------------------------------------

/** The simulator behaviours these libraries rely on, checked on the wire without a library. */
describe('what the client libraries need from the simulator, on the wire', () => {
  let sim: SimulatorHandle;
  const sockets: RecordingSocket[] = [];

  beforeAll(async () => {
    sim = await startSimulator({ port: 0, seed: 14 });
  });

  afterAll(async () => {
    for (const s of sockets) s.close();
    await sim.close();
  });

  async function open(path: string): Promise<RecordingSocket> {
    const s = await RecordingSocket.open(`${sim.streamUrl}${path}`);
    sockets.push(s);
    return s;
  }

  function replyTo(s: RecordingSocket, id: unknown): Promise<unknown> {
    return waitFor(
      () => s.json().find((m) => typeof m === 'object' && m !== null && 'id' in m && m.id === id),
      3_000,
      `reply ${String(id)}`,
    );
  }

  it('accepts alphanumeric string request ids (the official connector sends 32 hex chars)', async () => {
    const s = await open('/public/stream');
    const hex = '0123456789abcdef0123456789abcdef';
    s.send({ method: 'SUBSCRIBE', params: ['btcusdt@bookTicker'], id: hex });
    expect(await replyTo(s, hex)).toEqual({ result: null, id: hex });
    s.send({ method: 'LIST_SUBSCRIPTIONS', id: 'list1' });
    expect(await replyTo(s, 'list1')).toEqual({ result: ['btcusdt@bookTicker'], id: 'list1' });
    for (const bad of ['has space', 'x'.repeat(37), -1, 1.5, true]) {
      s.frames.length = 0;
      s.send({ method: 'SUBSCRIBE', params: ['btcusdt@aggTrade'], id: bad });
      expect(await replyTo(s, null)).toEqual({
        error: { code: 2, msg: 'Invalid request: request ID must be an unsigned integer' },
        id: null,
      });
    }
  });

  it('serves the raw <symbol>@trade stream on /public only, one event per aggregated trade', async () => {
    const pub = await open('/public/stream?streams=btcusdt@trade');
    const market = await open('/market/stream?streams=btcusdt@trade/btcusdt@aggTrade');
    await waitFor(() => sim.streams.subscriberCount('btcusdt@aggTrade') > 0, 3_000, 'aggTrade');
    const data = (s: RecordingSocket, stream: string): Record<string, unknown>[] =>
      s
        .json()
        .map(record)
        .filter((f) => f.stream === stream)
        .map((f) => record(f.data));
    const agg = await waitFor(
      () => {
        const trades = data(pub, 'btcusdt@trade');
        // an aggTrade whose underlying trades have all arrived on /public
        return data(market, 'btcusdt@aggTrade').find((a) => trades.some((t) => t.t === a.l));
      },
      10_000,
      'an aggTrade and its trades',
    );
    const parts = data(pub, 'btcusdt@trade').filter(
      (t) => Number(t.t) >= Number(agg.f) && Number(t.t) <= Number(agg.l),
    );
    expect(parts.map((t) => t.t)).toEqual(
      Array.from({ length: Number(agg.l) - Number(agg.f) + 1 }, (_, i) => Number(agg.f) + i),
    );
    const steps = parts.reduce((sum, t) => sum + Math.round(Number(t.q) * 1000), 0);
    expect(steps).toBe(Math.round(Number(agg.q) * 1000));
    for (const t of parts) {
      expect(t).toMatchObject({ e: 'trade', s: SYMBOL, p: agg.p, m: agg.m, X: 'MARKET' });
      expect(Object.keys(t).sort()).toEqual(['E', 'T', 'X', 'e', 'm', 'p', 'q', 's', 't']);
    }
    // acknowledged on /market, as any stream on the wrong path, but never served there
    expect(data(market, 'btcusdt@trade')).toEqual([]);
  });

  it('answers GET /fapi/v1/leverageBracket (signed) for one symbol or all', async () => {
    const get = async (query: string): Promise<{ status: number; body: unknown }> => {
      const q = `${query}${query ? '&' : ''}timestamp=${Date.now()}`;
      const signature = createHmac('sha256', ALICE.secret).update(q).digest('hex');
      const res = await fetch(
        `${sim.restUrl}/fapi/v1/leverageBracket?${q}&signature=${signature}`,
        {
          headers: { 'X-MBX-APIKEY': ALICE.key },
        },
      );
      return { status: res.status, body: (await res.json()) as unknown };
    };
    const bracket = {
      bracket: 1,
      initialLeverage: 125,
      notionalCap: 1000000,
      notionalFloor: 0,
      maintMarginRatio: 0.004,
      cum: 0,
    };
    expect(await get('symbol=BTCUSDT')).toEqual({
      status: 200,
      body: { symbol: SYMBOL, brackets: [bracket] },
    });
    const all = await get('');
    expect(all.status).toBe(200);
    expect((all.body as unknown[]).map((e) => record(e).symbol)).toEqual([
      'BTCUSDT',
      'ETHUSDT',
      'SOLUSDT',
    ]);
    expect(await get('symbol=NOPEUSDT')).toEqual({
      status: 400,
      body: { code: -1121, msg: 'Invalid symbol.' },
    });
    const unsigned = await fetch(`${sim.restUrl}/fapi/v1/leverageBracket`, {
      headers: { 'X-MBX-APIKEY': ALICE.key },
    });
    expect(unsigned.status).toBe(400);
  });
});
