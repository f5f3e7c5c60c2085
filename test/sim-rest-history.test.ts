/**
 * The simulator's REST history over real loopback: aggTrades, trades, historicalTrades, klines
 * (trade, mark and index), fundingRate, and the signed account history and configuration
 * endpoints (userTrades, allOrders, openOrder, positionSide/dual, symbolConfig, accountConfig,
 * multiAssetsMargin, commissionRate). Each is checked for Binance's shape, weights and error
 * codes, and against the rest of the model: klines are the sums of the aggregate trades, raw
 * trades make up the aggregate trades, and userTrades are the fills the ORDER_TRADE_UPDATE
 * events reported.
 *
 * The market runs on a fake clock from 07:50 UTC, stepped by hand for 20 minutes, so that the
 * history spans several minutes and one funding time (08:00) in well under a second.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJsonExact } from '../src/binance/json.js';
import { startSimulator, type SimulatorHandle } from '../src/simulator/index.js';
import type { Market } from '../src/simulator/market.js';

const ALICE = { key: 'alice-demo-api-key', secret: 'alice-demo-api-secret' };
const BOB = { key: 'bob-demo-api-key', secret: 'bob-demo-api-secret' };
const START = Date.UTC(2026, 0, 5, 7, 50, 0);
const TICK_MS = 250;
const MINUTE = 60_000;

let sim: SimulatorHandle;
let now = START;

function market(): Market {
  if (!sim.market) throw new Error('the market model runs in these tests');
  return sim.market;
}

/** Advances the fake clock and the market by `ms`. */
function run(ms: number): void {
  for (let i = 0; i < ms / TICK_MS; i++) {
    now += TICK_MS;
    market().step();
  }
}

interface Answer {
  status: number;
  text: string;
  body: unknown;
  weight: number;
}

async function send(
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const res = await fetch(`${sim.restUrl}${path}`, { method, headers });
  const text = await res.text();
  return {
    status: res.status,
    text,
    body: parseJsonExact(text),
    weight: Number(res.headers.get('x-mbx-used-weight-1m')),
  };
}

/** A GET and the weight it cost. */
async function get(path: string, headers: Record<string, string> = {}): Promise<Answer> {
  const before = sim.rest.weightUsed;
  const answer = await send('GET', path, headers);
  return { ...answer, weight: answer.weight - before };
}

/** A signed request (HMAC-SHA256 over the query, timestamp from the fake clock). */
async function signed(method: string, path: string, query = '', account = ALICE): Promise<Answer> {
  const q = `${query}${query ? '&' : ''}timestamp=${now}`;
  const signature = createHmac('sha256', account.secret).update(q).digest('hex');
  const before = sim.rest.weightUsed;
  const answer = await send(method, `${path}?${q}&signature=${signature}`, {
    'X-MBX-APIKEY': account.key,
  });
  return { ...answer, weight: answer.weight - before };
}

function rows(answer: Answer): Record<string, unknown>[] {
  expect(answer.status).toBe(200);
  expect(Array.isArray(answer.body)).toBe(true);
  return answer.body as Record<string, unknown>[];
}

/** An array of arrays (klines). */
function table(answer: Answer): unknown[][] {
  const list = rows(answer) as unknown[];
  for (const row of list) expect(Array.isArray(row)).toBe(true);
  return list as unknown[][];
}

function error(answer: Answer): number {
  return Number((answer.body as { code?: unknown }).code);
}

/** Decimal strings as integer units, so sums are exact. */
function units(text: unknown, decimals: number): number {
  const [whole = '', frac = ''] = String(text).split('.');
  return Number(whole + frac.padEnd(decimals, '0').slice(0, decimals));
}

type Agg = {
  a: number;
  p: string;
  q: string;
  nq: string;
  f: number;
  l: number;
  T: number;
  m: boolean;
};

beforeAll(async () => {
  sim = await startSimulator({
    port: 0,
    seed: 21,
    clock: { now: () => now },
    tickMs: TICK_MS,
    autoStart: false,
    weightLimitPerMinute: 1_000_000,
  });
  run(20 * MINUTE);
});

afterAll(async () => {
  await sim?.close();
});

describe('GET /fapi/v1/aggTrades', () => {
  it('answers the newest aggregate trades in Binance shape, ascending, weight 20', async () => {
    const answer = await get('/fapi/v1/aggTrades?symbol=BTCUSDT');
    const aggs = rows(answer) as Agg[];
    expect(answer.weight).toBe(20);
    expect(aggs).toHaveLength(500); // the default limit
    for (const t of aggs) {
      expect(Object.keys(t).sort()).toEqual(['T', 'a', 'f', 'l', 'm', 'nq', 'p', 'q']);
      expect(t.p).toMatch(/^\d+\.\d{2}$/);
      expect(t.q).toMatch(/^\d+\.\d{3}$/);
      expect(t.nq).toBe(t.q);
      expect(typeof t.m).toBe('boolean');
      expect(t.T).toBeGreaterThan(START);
      expect(t.T).toBeLessThanOrEqual(now);
    }
    for (let i = 1; i < aggs.length; i++) {
      expect(aggs[i]!.a).toBe(aggs[i - 1]!.a + 1);
      expect(aggs[i]!.f).toBe(aggs[i - 1]!.l + 1);
      expect(aggs[i]!.T).toBeGreaterThanOrEqual(aggs[i - 1]!.T);
    }
    const newest = rows(await get('/fapi/v1/aggTrades?symbol=BTCUSDT&limit=1')) as Agg[];
    expect(newest).toEqual([aggs[aggs.length - 1]]);
  });

  it('pages by fromId and by a time window (the first trades from the start)', async () => {
    const all = rows(await get('/fapi/v1/aggTrades?symbol=ETHUSDT&limit=1000')) as Agg[];
    const pick = all[100]!;
    const fromId = rows(
      await get(`/fapi/v1/aggTrades?symbol=ETHUSDT&fromId=${pick.a}&limit=10`),
    ) as Agg[];
    expect(fromId).toEqual(all.slice(100, 110));

    const startTime = pick.T;
    const endTime = startTime + 30_000;
    const window = rows(
      await get(`/fapi/v1/aggTrades?symbol=ETHUSDT&startTime=${startTime}&endTime=${endTime}`),
    ) as Agg[];
    const expected = all.filter((t) => t.T >= startTime && t.T <= endTime);
    expect(window).toEqual(expected.slice(0, 500));
    const firstFive = rows(
      await get(`/fapi/v1/aggTrades?symbol=ETHUSDT&startTime=${startTime}&limit=5`),
    );
    expect(firstFive).toEqual(all.filter((t) => t.T >= startTime).slice(0, 5));
  });

  it('refuses bad parameters with Binance codes', async () => {
    const cases: [string, number][] = [
      ['', -1102],
      ['symbol=NOPEUSDT', -1121],
      ['symbol=BTCUSDT&limit=1001', -1130],
      ['symbol=BTCUSDT&limit=0', -1130],
      ['symbol=BTCUSDT&limit=ten', -1100],
      ['symbol=BTCUSDT&fromId=-3', -1100],
      [`symbol=BTCUSDT&startTime=${now}&endTime=${now - 1}`, -1023],
      [`symbol=BTCUSDT&startTime=${now - 3_600_001}&endTime=${now}`, -1127],
      [`symbol=BTCUSDT&startTime=${now - 49 * 3_600_000}`, -4166],
    ];
    for (const [query, code] of cases) {
      const answer = await get(`/fapi/v1/aggTrades?${query}`);
      expect([query, answer.status, error(answer)]).toEqual([query, 400, code]);
    }
    // exactly one hour is accepted (ccxt sends since + 3600000)
    expect(
      (await get(`/fapi/v1/aggTrades?symbol=BTCUSDT&startTime=${now - 3_600_000}&endTime=${now}`))
        .status,
    ).toBe(200);
  });
});

describe('GET /fapi/v1/trades and historicalTrades', () => {
  it('answers the raw trades the aggregate trades are made of', async () => {
    const answer = await get('/fapi/v1/trades?symbol=BTCUSDT&limit=1000');
    expect(answer.weight).toBe(5);
    const trades = rows(answer);
    expect(trades).toHaveLength(1000);
    for (const t of trades) {
      expect(Object.keys(t).sort()).toEqual([
        'id',
        'isBuyerMaker',
        'isRPITrade',
        'price',
        'qty',
        'quoteQty',
        'time',
      ]);
      // quoteQty is price × qty exactly (2 + 3 decimals)
      expect(units(t.quoteQty, 5)).toBe(units(t.price, 2) * units(t.qty, 3));
    }
    const ids = trades.map((t) => Number(t.id));
    expect(ids).toEqual(ids.map((_, i) => ids[0]! + i));
    expect(rows(await get('/fapi/v1/trades?symbol=BTCUSDT'))).toHaveLength(500);

    // every aggregate trade wholly inside the window is the sum of its raw trades
    const aggs = rows(await get('/fapi/v1/aggTrades?symbol=BTCUSDT&limit=1000')) as Agg[];
    const inside = aggs.filter((a) => a.f >= ids[0]!);
    expect(inside.length).toBeGreaterThan(100);
    for (const a of inside) {
      const parts = trades.filter((t) => Number(t.id) >= a.f && Number(t.id) <= a.l);
      expect(parts).toHaveLength(a.l - a.f + 1);
      expect(parts.reduce((sum, t) => sum + units(t.qty, 3), 0)).toBe(units(a.q, 3));
      for (const t of parts) {
        expect(t).toMatchObject({ price: a.p, time: a.T, isBuyerMaker: a.m, isRPITrade: false });
      }
    }
  });

  it('historicalTrades needs an API key and pages from fromId', async () => {
    const recent = rows(await get('/fapi/v1/trades?symbol=SOLUSDT&limit=50'));
    const fromId = Number(recent[10]!.id);
    const key = { 'X-MBX-APIKEY': ALICE.key };
    const answer = await get(
      `/fapi/v1/historicalTrades?symbol=SOLUSDT&fromId=${fromId}&limit=5`,
      key,
    );
    expect(answer.weight).toBe(20);
    expect(rows(answer)).toEqual(recent.slice(10, 15));
    expect(rows(await get('/fapi/v1/historicalTrades?symbol=SOLUSDT', key))).toHaveLength(100);

    const noKey = await get('/fapi/v1/historicalTrades?symbol=SOLUSDT');
    expect([noKey.status, error(noKey)]).toEqual([401, -2014]);
    const badKey = await get('/fapi/v1/historicalTrades?symbol=SOLUSDT', { 'X-MBX-APIKEY': 'x' });
    expect([badKey.status, error(badKey)]).toEqual([401, -2015]);
    expect(error(await get('/fapi/v1/historicalTrades?symbol=SOLUSDT&limit=501', key))).toBe(-1130);
    expect(error(await get('/fapi/v1/trades?symbol=SOLUSDT&limit=1001'))).toBe(-1130);
    expect(error(await get('/fapi/v1/trades?symbol=NOPE'))).toBe(-1121);
    expect(error(await get('/fapi/v1/trades'))).toBe(-1102);
  });
});

describe('GET /fapi/v1/klines, markPriceKlines, indexPriceKlines', () => {
  it('1m klines are the sums of the aggregate trades of each minute', async () => {
    const klines = table(await get('/fapi/v1/klines?symbol=BTCUSDT&interval=1m'));
    // from the market's start (07:50) to the candle open now (08:10)
    expect(klines).toHaveLength(21);
    expect(klines[0]![0]).toBe(START);
    expect(klines[klines.length - 1]![0]).toBe(Math.floor(now / MINUTE) * MINUTE);
    for (const k of klines) {
      expect(k).toHaveLength(12);
      expect(k.map((v) => typeof v)).toEqual([
        'number',
        'string',
        'string',
        'string',
        'string',
        'string',
        'number',
        'string',
        'number',
        'string',
        'string',
        'string',
      ]);
      expect(k[6]).toBe(Number(k[0]) + MINUTE - 1);
      expect(k[11]).toBe('0');
    }
    for (const k of klines.slice(-4, -1)) {
      const open = Number(k[0]);
      const aggs = rows(
        await get(
          `/fapi/v1/aggTrades?symbol=BTCUSDT&startTime=${open}&endTime=${open + MINUTE - 1}&limit=1000`,
        ),
      ) as Agg[];
      expect(aggs.length).toBeGreaterThan(0);
      expect(aggs.length).toBeLessThan(1000);
      const prices = aggs.map((a) => units(a.p, 2));
      expect(units(k[1], 2)).toBe(prices[0]);
      expect(units(k[2], 2)).toBe(Math.max(...prices));
      expect(units(k[3], 2)).toBe(Math.min(...prices));
      expect(units(k[4], 2)).toBe(prices[prices.length - 1]);
      expect(units(k[5], 3)).toBe(aggs.reduce((s, a) => s + units(a.q, 3), 0));
      expect(k[8]).toBe(aggs.reduce((s, a) => s + a.l - a.f + 1, 0));
      const takerBuys = aggs.filter((a) => !a.m);
      expect(units(k[9], 3)).toBe(takerBuys.reduce((s, a) => s + units(a.q, 3), 0));
      const quote = (list: Agg[]): number =>
        list.reduce((s, a) => s + units(a.p, 2) * units(a.q, 3), 0);
      expect(units(k[7], 5)).toBe(quote(aggs));
      expect(units(k[10], 5)).toBe(quote(takerBuys));
    }
  });

  it('longer intervals aggregate the minutes; startTime, endTime and limit select candles', async () => {
    const minutes = table(await get('/fapi/v1/klines?symbol=ETHUSDT&interval=1m'));
    const fives = table(await get('/fapi/v1/klines?symbol=ETHUSDT&interval=5m'));
    expect(fives.map((k) => k[0])).toEqual([0, 5, 10, 15, 20].map((m) => START + m * MINUTE));
    for (const k of fives.slice(0, 4)) {
      const parts = minutes.filter(
        (m) => Number(m[0]) >= Number(k[0]) && Number(m[0]) < Number(k[0]) + 5 * MINUTE,
      );
      expect(parts).toHaveLength(5);
      expect(k[1]).toBe(parts[0]![1]);
      expect(units(k[2], 2)).toBe(Math.max(...parts.map((m) => units(m[2], 2))));
      expect(units(k[3], 2)).toBe(Math.min(...parts.map((m) => units(m[3], 2))));
      expect(k[4]).toBe(parts[4]![4]);
      expect(units(k[5], 3)).toBe(parts.reduce((s, m) => s + units(m[5], 3), 0));
      expect(k[8]).toBe(parts.reduce((s, m) => s + Number(m[8]), 0));
      expect(k[6]).toBe(Number(k[0]) + 5 * MINUTE - 1);
    }
    const day = table(await get('/fapi/v1/klines?symbol=ETHUSDT&interval=1d'));
    expect(day.map((k) => k[0])).toEqual([Date.UTC(2026, 0, 5)]);
    const week = table(await get('/fapi/v1/klines?symbol=ETHUSDT&interval=1w'));
    expect(week.map((k) => k[0])).toEqual([Date.UTC(2026, 0, 5)]); // a Monday
    const month = table(await get('/fapi/v1/klines?symbol=ETHUSDT&interval=1M'));
    expect(month.map((k) => [k[0], k[6]])).toEqual([
      [Date.UTC(2026, 0, 1), Date.UTC(2026, 1, 1) - 1],
    ]);
    expect(units(month[0]![5], 3)).toBe(minutes.reduce((s, m) => s + units(m[5], 3), 0));

    const from = START + 3 * MINUTE + 1; // open times >= startTime
    const picked = rows(
      await get(`/fapi/v1/klines?symbol=ETHUSDT&interval=1m&startTime=${from}&limit=2`),
    );
    expect(picked).toEqual(minutes.slice(4, 6));
    const upTo = rows(
      await get(`/fapi/v1/klines?symbol=ETHUSDT&interval=1m&endTime=${from}&limit=2`),
    );
    expect(upTo).toEqual(minutes.slice(2, 4));
  });

  it('charges weight by limit and refuses bad parameters', async () => {
    const weights: [string, number][] = [
      ['', 5],
      ['&limit=1', 1],
      ['&limit=100', 1],
      ['&limit=101', 2],
      ['&limit=500', 2],
      ['&limit=1000', 5],
      ['&limit=1500', 10],
    ];
    for (const [limit, weight] of weights) {
      const answer = await get(`/fapi/v1/klines?symbol=BTCUSDT&interval=1m${limit}`);
      expect([limit, answer.status, answer.weight]).toEqual([limit, 200, weight]);
    }
    const cases: [string, number][] = [
      ['/fapi/v1/klines?symbol=BTCUSDT&interval=1s', -1120],
      ['/fapi/v1/klines?symbol=BTCUSDT&interval=2m', -1120],
      ['/fapi/v1/klines?symbol=BTCUSDT', -1102],
      ['/fapi/v1/klines?interval=1m', -1102],
      ['/fapi/v1/klines?symbol=NOPEUSDT&interval=1m', -1121],
      ['/fapi/v1/klines?symbol=BTCUSDT&interval=1m&limit=1501', -1130],
      [`/fapi/v1/klines?symbol=BTCUSDT&interval=1m&startTime=${now}&endTime=${START}`, -1023],
      ['/fapi/v1/indexPriceKlines?symbol=BTCUSDT&interval=1m', -1102],
      ['/fapi/v1/markPriceKlines?symbol=BTCUSDT&interval=1s', -1120],
    ];
    for (const [path, code] of cases) {
      const answer = await get(path);
      expect([path, answer.status, error(answer)]).toEqual([path, 400, code]);
    }
  });

  it('mark and index price klines follow the sampled prices', async () => {
    for (const path of [
      '/fapi/v1/markPriceKlines?symbol=BTCUSDT&interval=1m',
      '/fapi/v1/indexPriceKlines?pair=BTCUSDT&interval=1m',
    ]) {
      const klines = table(await get(path));
      expect(klines).toHaveLength(21);
      // the first minute lacks its first second (the market started at 07:50:00)
      expect(klines[0]![8]).toBe(59);
      for (const k of klines.slice(1, -1)) {
        expect(k).toHaveLength(12);
        for (const i of [1, 2, 3, 4]) expect(k[i]).toMatch(/^\d+\.\d{8}$/);
        expect([k[5], k[7], k[9], k[10], k[11]]).toEqual(['0', '0', '0', '0', '0']);
        expect(k[8]).toBe(60); // one sample a second
        expect(Number(k[2])).toBeGreaterThanOrEqual(Math.max(Number(k[1]), Number(k[4])));
        expect(Number(k[3])).toBeLessThanOrEqual(Math.min(Number(k[1]), Number(k[4])));
      }
    }
    const mark = table(await get('/fapi/v1/markPriceKlines?symbol=BTCUSDT&interval=1m&limit=1'));
    const premium = (await get('/fapi/v1/premiumIndex?symbol=BTCUSDT')).body as {
      markPrice: string;
    };
    // the last sample was taken at the last step, which set the current mark price
    expect(Number(mark[0]![4])).toBe(Number(premium.markPrice));
  });
});

describe('GET /fapi/v1/fundingRate', () => {
  it('lists the funding at each 8 h mark since the start', async () => {
    const answer = await get('/fapi/v1/fundingRate?symbol=BTCUSDT');
    expect(answer.weight).toBe(1);
    const funding = rows(answer);
    expect(funding).toEqual([
      {
        symbol: 'BTCUSDT',
        fundingRate: expect.stringMatching(/^-?\d\.\d{8}$/) as unknown,
        fundingTime: Date.UTC(2026, 0, 5, 8),
        markPrice: expect.stringMatching(/^\d+\.\d{8}$/) as unknown,
      },
    ]);
    const all = rows(await get('/fapi/v1/fundingRate'));
    expect(all.map((f) => f.symbol)).toEqual(['BTCUSDT', 'ETHUSDT', 'SOLUSDT']);
    const after = Date.UTC(2026, 0, 5, 8) + 1;
    expect(rows(await get(`/fapi/v1/fundingRate?startTime=${after}`))).toEqual([]);
    expect(error(await get('/fapi/v1/fundingRate?symbol=NOPEUSDT'))).toBe(-1121);
    expect(error(await get('/fapi/v1/fundingRate?limit=1001'))).toBe(-1130);
  });
});

describe('signed account history and configuration', () => {
  let orderUpdates: Record<string, unknown>[] = [];
  let orderId = '';

  beforeAll(async () => {
    // a listenKey, so the account's events are recorded
    expect((await send('POST', '/fapi/v1/listenKey', { 'X-MBX-APIKEY': ALICE.key })).status).toBe(
      200,
    );
    // a buy that sweeps several levels, then a partial close (realized PnL)
    const buy = sim.accounts.placeOrder('alice', {
      symbol: 'BTCUSDT',
      side: 'BUY',
      type: 'MARKET',
      quantity: '2.000',
      newOrderRespType: 'RESULT',
    });
    expect(buy.status).toBe(200);
    orderId = String((parseJsonExact(buy.body) as { orderId: unknown }).orderId);
    run(5_000);
    const sell = sim.accounts.placeOrder('alice', {
      symbol: 'BTCUSDT',
      side: 'SELL',
      type: 'MARKET',
      quantity: '0.700',
    });
    expect(sell.status).toBe(200);
    orderUpdates = sim.accounts
      .emittedEvents('alice')
      .map((e) => parseJsonExact(e) as Record<string, unknown>)
      .filter((e) => e.e === 'ORDER_TRADE_UPDATE')
      .map((e) => e.o as Record<string, unknown>)
      .filter((o) => o.x === 'TRADE');
  });

  it('userTrades are the fills ORDER_TRADE_UPDATE reported, with exact order ids', async () => {
    expect(orderId).toBe('8389765489680951453');
    expect(orderUpdates.length).toBeGreaterThan(2); // several levels swept by the buy
    const answer = await signed('GET', '/fapi/v1/userTrades', 'symbol=BTCUSDT');
    expect(answer.weight).toBe(5);
    expect(answer.text).toContain('"orderId":8389765489680951453,');
    const trades = rows(answer);
    expect(trades.map((t) => Object.keys(t).sort())).toEqual(
      trades.map(() => [
        'buyer',
        'commission',
        'commissionAsset',
        'id',
        'maker',
        'orderId',
        'positionSide',
        'price',
        'qty',
        'quoteQty',
        'realizedPnl',
        'side',
        'symbol',
        'time',
      ]),
    );
    expect(
      trades.map((t) => [t.id, t.orderId, t.side, t.price, t.qty, t.commission, t.realizedPnl]),
    ).toEqual(orderUpdates.map((o) => [o.t, o.i, o.S, o.L, o.l, o.n, o.rp]));
    for (const t of trades) {
      expect(t).toMatchObject({
        symbol: 'BTCUSDT',
        commissionAsset: 'USDT',
        positionSide: 'BOTH',
        maker: false,
        buyer: t.side === 'BUY',
      });
      expect(units(t.quoteQty, 5)).toBe(units(t.price, 2) * units(t.qty, 3));
    }
    const bought = trades.filter((t) => t.side === 'BUY');
    expect(bought.reduce((s, t) => s + units(t.qty, 3), 0)).toBe(2000);
    expect(bought.every((t) => t.realizedPnl === '0.00000000')).toBe(true);
    expect(
      trades.filter((t) => t.side === 'SELL').some((t) => t.realizedPnl !== '0.00000000'),
    ).toBe(true);

    // the same trades are in the public history: one aggregate trade per fill
    const aggs = rows(await get('/fapi/v1/aggTrades?symbol=BTCUSDT&limit=1000')) as Agg[];
    for (const t of trades) {
      const agg = aggs.find((a) => a.f === t.id);
      expect(agg).toMatchObject({ l: t.id, p: t.price, q: t.qty, T: t.time, m: t.side === 'SELL' });
    }

    // filters: orderId, fromId, limit
    const ofOrder = rows(
      await signed('GET', '/fapi/v1/userTrades', `symbol=BTCUSDT&orderId=${orderId}`),
    );
    expect(ofOrder).toEqual(bought);
    const fromId = Number(trades[1]!.id);
    expect(
      rows(await signed('GET', '/fapi/v1/userTrades', `symbol=BTCUSDT&fromId=${fromId}&limit=2`)),
    ).toEqual(trades.slice(1, 3));
    expect(rows(await signed('GET', '/fapi/v1/userTrades', 'symbol=BTCUSDT&limit=1'))).toEqual(
      trades.slice(-1),
    );
    expect(rows(await signed('GET', '/fapi/v1/userTrades', 'symbol=ETHUSDT'))).toEqual([]);
  });

  it('userTrades refuses bad parameters', async () => {
    const cases: [string, number][] = [
      ['', -1102],
      ['symbol=NOPEUSDT', -1121],
      ['symbol=BTCUSDT&limit=1001', -1130],
      [`symbol=BTCUSDT&fromId=1&startTime=${START}`, -1128],
      [`symbol=BTCUSDT&startTime=${now - 8 * 86_400_000}&endTime=${now}`, -1127],
      ['symbol=BTCUSDT&orderId=12x', -1100],
    ];
    for (const [query, code] of cases) {
      const answer = await signed('GET', '/fapi/v1/userTrades', query);
      expect([query, answer.status, error(answer)]).toEqual([query, 400, code]);
    }
    const unsigned = await send('GET', '/fapi/v1/userTrades?symbol=BTCUSDT', {
      'X-MBX-APIKEY': ALICE.key,
    });
    expect(unsigned.status).toBe(400);
  });

  it('allOrders lists the account orders ascending; openOrder finds open ones only', async () => {
    const limit = sim.accounts.placeOrder('alice', {
      symbol: 'BTCUSDT',
      side: 'BUY',
      type: 'LIMIT',
      timeInForce: 'GTC',
      quantity: '0.010',
      price: '50000.0',
    });
    const limitId = String((parseJsonExact(limit.body) as { orderId: unknown }).orderId);
    const answer = await signed('GET', '/fapi/v1/allOrders', 'symbol=BTCUSDT');
    expect(answer.weight).toBe(5);
    const orders = rows(answer);
    expect(orders.map((o) => [String(o.orderId), o.status, o.type, o.side])).toEqual([
      [orderId, 'FILLED', 'MARKET', 'BUY'],
      ['8389765489680951454', 'FILLED', 'MARKET', 'SELL'],
      [limitId, 'NEW', 'LIMIT', 'BUY'],
    ]);
    expect(answer.text).toContain(`"orderId":${limitId},`);
    expect(orders[0]).toMatchObject({
      executedQty: '2.000',
      origQty: '2.000',
      positionSide: 'BOTH',
    });
    expect(
      rows(await signed('GET', '/fapi/v1/allOrders', `symbol=BTCUSDT&orderId=${limitId}`)),
    ).toEqual(orders.slice(2));
    expect(rows(await signed('GET', '/fapi/v1/allOrders', 'symbol=BTCUSDT&limit=2'))).toEqual(
      orders.slice(1),
    );
    expect(rows(await signed('GET', '/fapi/v1/allOrders', 'symbol=ETHUSDT'))).toEqual([]);
    expect(error(await signed('GET', '/fapi/v1/allOrders', 'symbol=NOPEUSDT'))).toBe(-1121);

    const open = await signed('GET', '/fapi/v1/openOrder', `symbol=BTCUSDT&orderId=${limitId}`);
    expect(open.status).toBe(200);
    expect(open.body).toMatchObject({ status: 'NEW', price: '50000.00', type: 'LIMIT' });
    const filled = await signed('GET', '/fapi/v1/openOrder', `symbol=BTCUSDT&orderId=${orderId}`);
    expect([filled.status, error(filled)]).toEqual([400, -2013]);
    const cancel = await signed('DELETE', '/fapi/v1/order', `symbol=BTCUSDT&orderId=${limitId}`);
    expect(cancel.status).toBe(200);
  });

  it('position mode: one-way, and Binance answers to a change', async () => {
    const mode = await signed('GET', '/fapi/v1/positionSide/dual');
    expect([mode.status, mode.body, mode.weight]).toEqual([200, { dualSidePosition: false }, 30]);
    const change = async (value: string, account = ALICE): Promise<[number, number]> => {
      const a = await signed(
        'POST',
        '/fapi/v1/positionSide/dual',
        `dualSidePosition=${value}`,
        account,
      );
      return [a.status, error(a)];
    };
    expect(await change('false')).toEqual([400, -4059]); // no need to change
    expect(await change('true')).toEqual([400, -4068]); // alice holds a position
    expect(await change('maybe')).toEqual([400, -1102]);
    const resting = sim.accounts.placeOrder('bob', {
      symbol: 'ETHUSDT',
      side: 'SELL',
      type: 'LIMIT',
      timeInForce: 'GTC',
      quantity: '0.100',
      price: '9000.00',
    });
    expect(resting.status).toBe(200);
    expect(await change('true', BOB)).toEqual([400, -4067]); // bob has an open order
    await signed('DELETE', '/fapi/v1/allOpenOrders', 'symbol=ETHUSDT', BOB);
    expect(await change('true', BOB)).toEqual([400, -1020]); // hedge mode is not simulated
  });

  it('answers symbolConfig, accountConfig, multiAssetsMargin and commissionRate', async () => {
    sim.accounts.publishAccountConfigUpdate('alice', 'ETHUSDT', 7);
    const config = await signed('GET', '/fapi/v1/symbolConfig');
    expect(config.weight).toBe(5);
    expect(config.body).toEqual(
      ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'].map((symbol) => ({
        symbol,
        marginType: 'CROSSED',
        isAutoAddMargin: false,
        leverage: symbol === 'ETHUSDT' ? 7 : 20,
        maxNotionalValue: '1000000',
      })),
    );
    expect((await signed('GET', '/fapi/v1/symbolConfig', 'symbol=ETHUSDT')).body).toEqual([
      expect.objectContaining({ symbol: 'ETHUSDT', leverage: 7 }),
    ]);
    expect(error(await signed('GET', '/fapi/v1/symbolConfig', 'symbol=NOPEUSDT'))).toBe(-1121);

    const account = await signed('GET', '/fapi/v1/accountConfig');
    expect([account.weight, account.body]).toEqual([
      5,
      {
        feeTier: 0,
        canTrade: true,
        canDeposit: true,
        canWithdraw: true,
        dualSidePosition: false,
        updateTime: 0,
        multiAssetsMargin: false,
        tradeGroupId: -1,
      },
    ]);
    const multi = await signed('GET', '/fapi/v1/multiAssetsMargin');
    expect([multi.weight, multi.body]).toEqual([30, { multiAssetsMargin: false }]);

    const fees = await signed('GET', '/fapi/v1/commissionRate', 'symbol=BTCUSDT');
    expect([fees.weight, fees.body]).toEqual([
      20,
      { symbol: 'BTCUSDT', makerCommissionRate: '0.0002', takerCommissionRate: '0.0005' },
    ]);
    // the commission of every fill is the taker rate on its notional
    const trades = rows(await signed('GET', '/fapi/v1/userTrades', 'symbol=BTCUSDT'));
    for (const t of trades) {
      expect(Number(t.commission)).toBeCloseTo(Number(t.quoteQty) * 0.0005, 8);
    }
    expect(error(await signed('GET', '/fapi/v1/commissionRate'))).toBe(-1102);
    expect(error(await signed('GET', '/fapi/v1/commissionRate', 'symbol=NOPEUSDT'))).toBe(-1121);
  });
});
