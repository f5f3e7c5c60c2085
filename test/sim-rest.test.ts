import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type SimulatorHandle } from '../src/simulator/index.js';

let sim: SimulatorHandle;

beforeAll(async () => {
  sim = await startSimulator({ port: 0, seed: 3, tickMs: 20, weightLimitPerMinute: 2400 });
});
afterAll(async () => {
  await sim.close();
});

async function get(path: string): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(`${sim.restUrl}${path}`);
  return { status: res.status, body: await res.json(), headers: res.headers };
}

describe('simulator REST market data', () => {
  it('ping and time', async () => {
    expect((await get('/fapi/v1/ping')).body).toEqual({});
    const before = Date.now();
    const t = (await get('/fapi/v1/time')).body as { serverTime: number };
    expect(t.serverTime).toBeGreaterThanOrEqual(before - 5);
    expect(t.serverTime).toBeLessThanOrEqual(Date.now() + 5);
  });

  it('exchangeInfo lists the default symbols with Binance filters', async () => {
    const info = (await get('/fapi/v1/exchangeInfo')).body as {
      futuresType: string;
      rateLimits: { rateLimitType: string; limit: number }[];
      symbols: {
        symbol: string;
        status: string;
        contractType: string;
        filters: { filterType: string; tickSize?: string; stepSize?: string }[];
      }[];
    };
    expect(info.futuresType).toBe('U_MARGINED');
    expect(info.rateLimits.find((r) => r.rateLimitType === 'REQUEST_WEIGHT')?.limit).toBe(2400);
    const names = info.symbols.map((s) => s.symbol);
    expect(names).toEqual(expect.arrayContaining(['BTCUSDT', 'ETHUSDT', 'SOLUSDT']));
    for (const s of info.symbols) {
      expect(s.status).toBe('TRADING');
      expect(s.contractType).toBe('PERPETUAL');
      expect(s.filters.find((f) => f.filterType === 'PRICE_FILTER')?.tickSize).toMatch(
        /^\d+\.\d+$/,
      );
      expect(s.filters.find((f) => f.filterType === 'LOT_SIZE')?.stepSize).toMatch(/^\d+(\.\d+)?$/);
    }
  });

  it('depth answers limit 5..1000 from a deep book with a positive spread, and charges weight by limit', async () => {
    const small = await get('/fapi/v1/depth?symbol=BTCUSDT&limit=5');
    const w1 = Number(small.headers.get('x-mbx-used-weight-1m'));
    const big = await get('/fapi/v1/depth?symbol=BTCUSDT&limit=1000');
    const w2 = Number(big.headers.get('x-mbx-used-weight-1m'));
    expect(w2 - w1).toBe(20);
    const book = big.body as {
      lastUpdateId: number;
      E: number;
      T: number;
      bids: [string, string][];
      asks: [string, string][];
    };
    expect(book.bids).toHaveLength(1000);
    expect(book.asks).toHaveLength(1000);
    expect(Number(book.bids[0]![0])).toBeLessThan(Number(book.asks[0]![0]));
    expect((small.body as { bids: unknown[] }).bids).toHaveLength(5);
    expect(typeof book.lastUpdateId).toBe('number');
  });

  it('answers Binance error bodies for bad symbols, limits and missing parameters', async () => {
    expect(await get('/fapi/v1/depth?symbol=NOPEUSDT')).toMatchObject({
      status: 400,
      body: { code: -1121, msg: 'Invalid symbol.' },
    });
    expect(await get('/fapi/v1/depth?symbol=BTCUSDT&limit=7')).toMatchObject({
      status: 400,
      body: { code: -4021 },
    });
    expect(await get('/fapi/v1/depth')).toMatchObject({ status: 400, body: { code: -1102 } });
    expect(await get('/fapi/v1/ticker/24hr?symbol=NOPEUSDT')).toMatchObject({
      status: 400,
      body: { code: -1121 },
    });
    expect((await get('/fapi/v1/nothing')).status).toBe(404);
  });

  it('24hr ticker for one symbol and for all, derived from trades', async () => {
    const one = (await get('/fapi/v1/ticker/24hr?symbol=ETHUSDT')).body as Record<string, unknown>;
    for (const k of [
      'symbol',
      'priceChange',
      'priceChangePercent',
      'weightedAvgPrice',
      'lastPrice',
      'lastQty',
      'openPrice',
      'highPrice',
      'lowPrice',
      'volume',
      'quoteVolume',
      'openTime',
      'closeTime',
      'firstId',
      'lastId',
      'count',
    ]) {
      expect(one).toHaveProperty(k);
    }
    expect(one.symbol).toBe('ETHUSDT');
    const all = await get('/fapi/v1/ticker/24hr');
    expect((all.body as unknown[]).length).toBe(3);
  });

  it('enforces the per-minute weight limit with 429 -1003 and Retry-After', async () => {
    const tight = await startSimulator({
      port: 0,
      seed: 3,
      weightLimitPerMinute: 50,
      autoStart: false,
    });
    try {
      const statuses: number[] = [];
      let retryAfter: string | null = null;
      for (let i = 0; i < 4; i++) {
        const res = await fetch(`${tight.restUrl}/fapi/v1/depth?symbol=BTCUSDT&limit=1000`);
        statuses.push(res.status);
        if (res.status === 429) {
          retryAfter = res.headers.get('retry-after');
          expect(((await res.json()) as { code: number }).code).toBe(-1003);
        } else await res.arrayBuffer();
      }
      expect(statuses).toEqual([200, 200, 429, 429]);
      expect(Number(retryAfter)).toBeGreaterThan(0);
    } finally {
      await tight.close();
    }
  });
});
