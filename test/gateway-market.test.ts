import { describe, expect, it } from 'vitest';
import { autoCleanup } from './helpers/cleanup.js';
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

const BOOK = `subscription($symbol: String!, $depth: Int!, $throttleMs: Int! = 0) {
  orderBook(symbol: $symbol, depth: $depth, throttleMs: $throttleMs) {
    symbol lastUpdateId eventTime transactionTime bids { price quantity } asks { price quantity }
  }
}`;

function assertSane(book: Book['orderBook'], depth: number): void {
  expect(book.bids.length).toBeLessThanOrEqual(depth);
  expect(book.asks.length).toBeLessThanOrEqual(depth);
  for (let i = 1; i < book.bids.length; i++) {
    expect(Number(book.bids[i]!.price)).toBeLessThan(Number(book.bids[i - 1]!.price));
  }
  for (let i = 1; i < book.asks.length; i++) {
    expect(Number(book.asks[i]!.price)).toBeGreaterThan(Number(book.asks[i - 1]!.price));
  }
  for (const l of [...book.bids, ...book.asks]) expect(Number(l.quantity)).toBeGreaterThan(0);
  if (book.bids[0] && book.asks[0]) {
    expect(Number(book.bids[0].price)).toBeLessThan(Number(book.asks[0].price));
  }
}

describe('gateway public market data', () => {
  it('many clients on one symbol share one upstream stream; after they leave it is unsubscribed', async () => {
    const s = await stack();
    const clients = Array.from({ length: 6 }, () => wsClient(s.wsUrl));
    defer(() => clients.forEach((c) => void c.dispose()));
    const subs = clients.flatMap((c) => [
      collect<Book>(c, BOOK, { symbol: 'BTCUSDT', depth: 10 }),
      collect<Book>(c, BOOK, { symbol: 'BTCUSDT', depth: 3 }),
      collect(c, 'subscription { trades(symbol: "BTCUSDT") { aggregateTradeId price side } }'),
    ]);
    await Promise.all(subs.map((x) => x.next(1, 15_000)));
    expect(s.sim.streams.subscriberCount('btcusdt@depth@100ms')).toBe(1);
    expect(s.sim.streams.subscriberCount('btcusdt@aggTrade')).toBe(1);
    const upstream = s.sim.streams.listConnections();
    expect(upstream.filter((c) => c.route === 'public')).toHaveLength(1);
    expect(upstream.filter((c) => c.route === 'market')).toHaveLength(1);
    for (const sub of subs) sub.dispose();
    await waitFor(
      () =>
        s.sim.streams.subscriberCount('btcusdt@depth@100ms') === 0 &&
        s.sim.streams.subscriberCount('btcusdt@aggTrade') === 0,
      10_000,
      'upstream unsubscribed',
    );
  });

  it('views are sorted, uncrossed, free of zeros, limited to depth, and equal the simulator book', async () => {
    const s = await stack();
    const client = wsClient(s.wsUrl);
    defer(() => client.dispose());
    const deep = collect<Book>(client, BOOK, { symbol: 'ETHUSDT', depth: 1000 });
    const top = collect<Book>(client, BOOK, { symbol: 'ETHUSDT', depth: 5 });
    await deep.next(5, 15_000);
    await top.next(3);
    for (const v of top.values) assertSane(v.orderBook, 5);
    for (const v of deep.values.slice(-3)) assertSane(v.orderBook, 1000);
    s.sim.market!.stop();
    const truth = s.sim.market!.bookForTest('ETHUSDT');
    const last = await waitFor(
      () => deep.values.find((v) => v.orderBook.lastUpdateId === truth.lastUpdateId),
      5_000,
      'final view',
    );
    const norm = (ls: Level[] | readonly (readonly [string, string])[]): string[] =>
      ls.map((l) =>
        Array.isArray(l)
          ? `${Number(l[0])}@${Number(l[1])}`
          : `${Number((l as Level).price)}@${Number((l as Level).quantity)}`,
      );
    expect(norm(last.orderBook.bids)).toEqual(norm(truth.bids.slice(0, 1000)));
    expect(norm(last.orderBook.asks)).toEqual(norm(truth.asks.slice(0, 1000)));
  });

  it('throttleMs gives at most one view per interval, latest winning', async () => {
    const s = await stack({ tickMs: 10 });
    const client = wsClient(s.wsUrl);
    defer(() => client.dispose());
    const fast = collect<Book>(client, BOOK, { symbol: 'BTCUSDT', depth: 5 });
    const slow = collect<Book>(client, BOOK, { symbol: 'BTCUSDT', depth: 5, throttleMs: 500 });
    await slow.next(1, 15_000);
    const t0 = Date.now();
    await sleep(1_600);
    const elapsed = Date.now() - t0;
    expect(slow.values.length).toBeLessThanOrEqual(Math.ceil(elapsed / 500) + 1);
    expect(fast.values.length).toBeGreaterThan(slow.values.length);
    const ids = slow.values.map((v) => v.orderBook.lastUpdateId);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
  });

  it('trades arrive in order and tickers start with an immediate value', async () => {
    const s = await stack({ tickMs: 10 });
    const client = wsClient(s.wsUrl);
    defer(() => client.dispose());
    const trades = collect<{
      trades: { aggregateTradeId: number; side: string; buyerIsMaker: boolean };
    }>(
      client,
      'subscription { trades(symbol: "BTCUSDT") { aggregateTradeId price quantity side buyerIsMaker tradeTime } }',
    );
    const t0 = Date.now();
    const ticker = collect<{ ticker: { symbol: string; lastPrice: string } }>(
      client,
      'subscription { ticker(symbol: "SOLUSDT") { symbol lastPrice volume tradeCount eventTime } }',
    );
    await ticker.next(1);
    expect(Date.now() - t0).toBeLessThan(1_500);
    expect(ticker.values[0]!.ticker.symbol).toBe('SOLUSDT');
    await trades.next(10, 20_000);
    const ids = trades.values.map((t) => t.trades.aggregateTradeId);
    for (let i = 1; i < ids.length; i++) expect(ids[i]).toBe(ids[i - 1]! + 1);
    for (const t of trades.values)
      expect(t.trades.side).toBe(t.trades.buyerIsMaker ? 'SELL' : 'BUY');
  });

  it('queries symbols, orderBook and ticker', async () => {
    const s = await stack();
    const post = async (
      query: string,
    ): Promise<{ data?: Record<string, unknown>; errors?: unknown[] }> => {
      const res = await fetch(s.gw.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query }),
      });
      return (await res.json()) as { data?: Record<string, unknown>; errors?: unknown[] };
    };
    const r = await post(
      '{ symbols { symbol status tickSize stepSize pricePrecision } orderBook(symbol: "BTCUSDT", depth: 7) { lastUpdateId bids { price quantity } asks { price quantity } } ticker(symbol: "ETHUSDT") { symbol lastPrice openTime closeTime } }',
    );
    expect(r.errors).toBeUndefined();
    const symbols = r.data!.symbols as { symbol: string; tickSize: string }[];
    expect(symbols.map((x) => x.symbol).sort()).toEqual(['BTCUSDT', 'ETHUSDT', 'SOLUSDT']);
    expect(symbols.find((x) => x.symbol === 'BTCUSDT')!.tickSize).toBe('0.10');
    const book = r.data!.orderBook as Book['orderBook'];
    expect(book.bids).toHaveLength(7);
    assertSane({ ...book, symbol: 'BTCUSDT' }, 7);
    expect((r.data!.ticker as { symbol: string }).symbol).toBe('ETHUSDT');
  });

  it('a bad operation fails alone with a coded error; the socket and other subscriptions stay up', async () => {
    const s = await stack();
    const client = wsClient(s.wsUrl);
    defer(() => client.dispose());
    const good = collect<Book>(client, BOOK, { symbol: 'BTCUSDT', depth: 5 });
    await good.next(1, 15_000);
    const unknown = collect(client, BOOK, { symbol: 'NOPEUSDT', depth: 5 });
    const tooDeep = collect(client, BOOK, { symbol: 'BTCUSDT', depth: 1001 });
    const negative = collect(client, BOOK, { symbol: 'BTCUSDT', depth: 5, throttleMs: -1 });
    const syntax = collect(client, 'subscription { orderBook(symbol: ');
    const invalid = collect(client, 'subscription { nope }');
    await waitFor(
      () => [unknown, tooDeep, negative, syntax, invalid].every((x) => x.errors.length > 0),
      5_000,
      'errors',
    );
    const code = (x: { errors: unknown[] }): unknown =>
      (
        (x.errors[0] as { extensions?: { code?: string } }[])[0] ??
        (x.errors[0] as { extensions?: { code?: string } })
      )?.extensions?.code;
    expect(code(unknown)).toBe('BAD_USER_INPUT');
    expect(code(tooDeep)).toBe('BAD_USER_INPUT');
    expect(code(negative)).toBe('BAD_USER_INPUT');
    expect(code(syntax)).toBe('GRAPHQL_PARSE_FAILED');
    expect(code(invalid)).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(s.sim.streams.subscriberCount('nopeusdt@depth@100ms')).toBe(0);
    const before = good.values.length;
    await waitFor(() => good.values.length > before + 2, 5_000, 'good subscription continues');
  });

  it('serves subscriptions over SSE', async () => {
    const s = await stack();
    const controller = new AbortController();
    defer(() => controller.abort());
    const res = await fetch(s.gw.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({
        query:
          'subscription { orderBook(symbol: "BTCUSDT", depth: 2) { lastUpdateId bids { price } } }',
      }),
      signal: controller.signal,
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    while ((text.match(/event: next/g) ?? []).length < 2) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    const data = text
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => JSON.parse(l.slice(6)) as { data?: Book });
    expect(data[0]!.data!.orderBook.lastUpdateId).toBeGreaterThan(0);
    controller.abort();
  });
});
