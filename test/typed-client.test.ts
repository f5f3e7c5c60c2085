import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { runExample, type BookView, type TradeView } from '../examples/typed-client/run-example.js';
import { startStack, type Stack } from './helpers/stack.js';

const DECIMAL = /^\d+(\.\d+)?$/;

describe('typed example client (examples/typed-client)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('receives typed order book views and trades from the gateway', async () => {
    const books: BookView[] = [];
    const trades: TradeView[] = [];
    const result = await runExample({
      url: stack.gw.url,
      limit: 3,
      symbol: 'BTCUSDT',
      depth: 5,
      onBook: (b) => books.push(b),
      onTrade: (t) => trades.push(t),
    });

    // The types come from schema.graphql through codegen: tsc (npm run check) enforces these.
    expectTypeOf(result.books).toEqualTypeOf<BookView[]>();
    expectTypeOf(result.trades).toEqualTypeOf<TradeView[]>();
    expectTypeOf<BookView['lastUpdateId']>().toEqualTypeOf<number>();
    expectTypeOf<BookView['bids'][number]>().toEqualTypeOf<{ price: string; quantity: string }>();
    expectTypeOf<TradeView['side']>().toEqualTypeOf<'BUY' | 'SELL'>();
    expectTypeOf<TradeView['price']>().toEqualTypeOf<string>();
    // @ts-expect-error: `bestBid` is not selected by (nor part of) the BookUpdates operation
    void result.books[0]?.bestBid;

    expect(result.books).toHaveLength(3);
    expect(result.trades).toHaveLength(3);
    expect(books).toEqual(result.books);
    expect(trades).toEqual(result.trades);

    let lastUpdateId = 0;
    for (const book of result.books) {
      expect(book.symbol).toBe('BTCUSDT');
      expect(Number.isSafeInteger(book.lastUpdateId)).toBe(true);
      expect(book.lastUpdateId).toBeGreaterThanOrEqual(lastUpdateId);
      lastUpdateId = book.lastUpdateId;
      expect(typeof book.eventTime).toBe('number');
      expect(book.bids.length).toBeGreaterThan(0);
      expect(book.asks.length).toBeGreaterThan(0);
      expect(book.bids.length).toBeLessThanOrEqual(5);
      expect(book.asks.length).toBeLessThanOrEqual(5);
      for (const level of [...book.bids, ...book.asks]) {
        expect(level.price).toMatch(DECIMAL);
        expect(level.quantity).toMatch(DECIMAL);
        expect(Number(level.quantity)).toBeGreaterThan(0);
      }
      const bidPrices = book.bids.map((l) => Number(l.price));
      const askPrices = book.asks.map((l) => Number(l.price));
      expect(bidPrices).toEqual([...bidPrices].sort((a, b) => b - a));
      expect(askPrices).toEqual([...askPrices].sort((a, b) => a - b));
      expect(bidPrices[0]).toBeLessThan(askPrices[0]!);
    }
    expect(new Set(result.books.map((b) => b.lastUpdateId)).size).toBeGreaterThan(1);

    let aggregateTradeId = 0;
    for (const trade of result.trades) {
      expect(trade.symbol).toBe('BTCUSDT');
      expect(['BUY', 'SELL']).toContain(trade.side);
      expect(trade.price).toMatch(DECIMAL);
      expect(trade.quantity).toMatch(DECIMAL);
      expect(Number.isSafeInteger(trade.aggregateTradeId)).toBe(true);
      expect(trade.aggregateTradeId).toBeGreaterThan(aggregateTradeId);
      aggregateTradeId = trade.aggregateTradeId;
      expect(typeof trade.tradeTime).toBe('number');
    }
  });

  it('rejects with the gateway error for an unknown symbol', async () => {
    await expect(
      runExample({ url: stack.gw.url, symbol: 'NOPEUSDT', limit: 1, timeoutMs: 10_000 }),
    ).rejects.toThrow(/Unknown symbol "NOPEUSDT"/);
  });

  it('`npm run example -- <url>` prints book views and trades', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/typed-client/index.ts'], {
      env: { ...process.env, GATEWAY_URL: stack.gw.url, LIMIT: '2' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.match(/^book {3}BTCUSDT #\d+ {2}bid \d/gm)).toHaveLength(2);
    expect(stdout.match(/^trade {2}BTCUSDT #\d+ {2}(BUY |SELL) \d/gm)).toHaveLength(2);
    expect(stdout).toContain('received 2 book views and 2 trades');
  });
});
