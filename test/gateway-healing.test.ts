import { describe, expect, it } from 'vitest';
import { autoCleanup } from './helpers/cleanup.js';
import { CAPTURES, captureDir, oracle } from './helpers/fixtures.js';
import { collect, stacksClosedBy, wsClient } from './helpers/stack.js';
import { sleep, waitFor } from './helpers/wait.js';

const defer = autoCleanup();

const stack = stacksClosedBy(defer);

interface Level {
  price: string;
  quantity: string;
}
interface Book {
  orderBook: { symbol: string; lastUpdateId: number; bids: Level[]; asks: Level[] };
}
interface Trade {
  trades: { aggregateTradeId: number };
}

const BOOK = `subscription($symbol: String!, $depth: Int!) {
  orderBook(symbol: $symbol, depth: $depth) { symbol lastUpdateId bids { price quantity } asks { price quantity } }
}`;
const TRADES = 'subscription($symbol: String!) { trades(symbol: $symbol) { aggregateTradeId } }';

function sane(views: Book[]): void {
  let last = 0;
  for (const { orderBook: b } of views) {
    expect(b.lastUpdateId).toBeGreaterThan(last);
    last = b.lastUpdateId;
    for (let i = 1; i < b.bids.length; i++)
      expect(Number(b.bids[i]!.price)).toBeLessThan(Number(b.bids[i - 1]!.price));
    for (let i = 1; i < b.asks.length; i++)
      expect(Number(b.asks[i]!.price)).toBeGreaterThan(Number(b.asks[i - 1]!.price));
    if (b.bids[0] && b.asks[0])
      expect(Number(b.bids[0].price)).toBeLessThan(Number(b.asks[0].price));
    for (const l of [...b.bids, ...b.asks]) expect(Number(l.quantity)).toBeGreaterThan(0);
  }
}

describe('gateway heals upstream faults without the client noticing more than a pause', () => {
  it('all upstream connections dropped: subscriptions stay open, data resumes, books resync', async () => {
    const s = await stack({ tickMs: 10 });
    const client = wsClient(s.wsUrl);
    defer(() => client.dispose());
    const book = collect<Book>(client, BOOK, { symbol: 'BTCUSDT', depth: 20 });
    const trades = collect<Trade>(client, TRADES, { symbol: 'BTCUSDT' });
    await book.next(3, 15_000);
    await trades.next(1, 15_000);
    const before = { book: book.values.length, trades: trades.values.length };
    expect(s.sim.control.dropConnections()).toBeGreaterThanOrEqual(2);
    await waitFor(() => book.values.length > before.book + 3, 10_000, 'book resumes');
    await waitFor(() => trades.values.length > before.trades, 15_000, 'trades resume');
    expect(book.errors).toEqual([]);
    expect(book.completed).toBe(false);
    expect(s.gw.market.books.get('BTCUSDT')!.resyncCount).toBeGreaterThanOrEqual(1);
    sane(book.values);
  });

  it('upstream silent (no frames, no pongs): detected within staleAfterMs and replaced', async () => {
    const staleAfterMs = 1_000;
    const s = await stack({ tickMs: 10 }, { staleAfterMs, clientPingIntervalMs: 250 });
    const client = wsClient(s.wsUrl);
    defer(() => client.dispose());
    const book = collect<Book>(client, BOOK, { symbol: 'ETHUSDT', depth: 5 });
    await book.next(2, 15_000);
    const opened = s.sim.streams.stats.connectionsOpened;
    const t0 = Date.now();
    s.sim.control.silence(true);
    await waitFor(
      () => s.sim.streams.stats.connectionsOpened > opened,
      5_000,
      'replacement connection',
    );
    const detectedMs = Date.now() - t0;
    expect(detectedMs).toBeLessThan(staleAfterMs + 1_500);
    s.sim.control.silence(false);
    const n = book.values.length;
    await waitFor(() => book.values.length > n + 2, 10_000, 'data after silence');
    expect(book.errors).toEqual([]);
    sane(book.values);
  });

  it('answers Binance pings with their payload: a strict pong deadline never drops the gateway', async () => {
    const s = await stack({ tickMs: 10, limits: { pingIntervalMs: 200, pongTimeoutMs: 1_000 } });
    const client = wsClient(s.wsUrl);
    defer(() => client.dispose());
    const book = collect<Book>(client, BOOK, { symbol: 'BTCUSDT', depth: 5 });
    await book.next(1, 15_000);
    await sleep(3_000);
    expect(s.sim.streams.stats.closedForPong).toBe(0);
    expect(s.gw.streams.status().reconnects).toBe(0);
  });

  it('connection lifetime reached: rotation with no gap, no duplicate and no resync', async () => {
    const s = await stack(
      { tickMs: 10, limits: { maxConnectionLifetimeMs: 2_500 } },
      { rotateAfterMs: 1_200 },
    );
    const client = wsClient(s.wsUrl);
    defer(() => client.dispose());
    const book = collect<Book>(client, BOOK, { symbol: 'BTCUSDT', depth: 5 });
    const trades = collect<Trade>(client, TRADES, { symbol: 'BTCUSDT' });
    await book.next(1, 15_000);
    await sleep(5_000);
    expect(s.gw.streams.status().rotations).toBeGreaterThanOrEqual(2);
    expect(s.sim.streams.stats.closedForLifetime).toBe(0);
    const ids = trades.values.map((t) => t.trades.aggregateTradeId);
    expect(ids.length).toBeGreaterThan(3);
    for (let i = 1; i < ids.length; i++) expect(ids[i]).toBe(ids[i - 1]! + 1);
    expect(s.gw.market.books.get('BTCUSDT')!.resyncCount).toBe(0);
    sane(book.values);
  }, 20_000);
});

describe('gateway replaying real captures', () => {
  it.each(CAPTURES)(
    'capture %s through simulator and gateway ends on the oracle for every symbol',
    async (capture) => {
      const dir = captureDir(capture);
      const s = await stack({ replay: { dir, speed: 20, startDelayMs: 300 } });
      const client = wsClient(s.wsUrl);
      defer(() => client.dispose());
      const expected = oracle.filter((o) => o.capture === capture);
      const subs = expected.map((o) => ({
        o,
        sub: collect<Book>(client, BOOK, { symbol: o.symbol, depth: 1 }),
      }));
      for (const { o, sub } of subs) {
        const last = await waitFor(
          () => sub.values.find((v) => v.orderBook.lastUpdateId === o.finalUpdateId),
          25_000,
          `${o.symbol} final view`,
        );
        expect(sub.errors).toEqual([]);
        const bid = last.orderBook.bids[0]!;
        const ask = last.orderBook.asks[0]!;
        expect([Number(bid.price), Number(bid.quantity)]).toEqual(o.bestBid.map(Number));
        expect([Number(ask.price), Number(ask.quantity)]).toEqual(o.bestAsk.map(Number));
        sane(sub.values);
      }
    },
    40_000,
  );
});
