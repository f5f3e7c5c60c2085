import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { parseJsonExact } from '../src/binance/json.js';
import { Accounts, type AccountsOptions } from '../src/simulator/accounts.js';
import type {
  Fill,
  MarketForAccounts,
  SimRequest,
  SimResponse,
  SimSymbolSpec,
  StreamSink,
} from '../src/simulator/types.js';

const BTC: SimSymbolSpec = {
  symbol: 'BTCUSDT',
  baseAsset: 'BTC',
  quoteAsset: 'USDT',
  pricePrecision: 2,
  quantityPrecision: 3,
  tickSize: '0.10',
  stepSize: '0.001',
  initialPrice: '60000.00',
};

/** Fills every order in full at `price` (a LIMIT order only when its limit allows it). */
class FakeMarket implements MarketForAccounts {
  price = '60000.00';
  mark = '60000.00';
  nextTradeId = 5_000;
  readonly calls: { side: string; quantity: string; limitPrice: string | undefined }[] = [];

  hasSymbol(symbol: string): boolean {
    return symbol === 'BTCUSDT';
  }
  spec(symbol: string): SimSymbolSpec | undefined {
    return symbol === 'BTCUSDT' ? BTC : undefined;
  }
  executeTaker(
    _symbol: string,
    side: 'BUY' | 'SELL',
    quantity: string,
    limitPrice?: string,
  ): Fill[] {
    this.calls.push({ side, quantity, limitPrice });
    if (limitPrice !== undefined) {
      const p = Number(this.price);
      const l = Number(limitPrice);
      if (side === 'BUY' ? l < p : l > p) return [];
    }
    return [
      {
        tradeId: this.nextTradeId++,
        price: this.price,
        quantity,
        quote: String(Number(this.price) * Number(quantity)),
      },
    ];
  }
  markPrice(): string {
    return this.mark;
  }
}

class CapturingSink implements StreamSink {
  readonly events: { stream: string; payload: string }[] = [];
  wants(): boolean {
    return true;
  }
  publish(stream: string, payload: string): void {
    this.events.push({ stream, payload });
  }
  on(stream: string): string[] {
    return this.events.filter((e) => e.stream === stream).map((e) => e.payload);
  }
}

const ALICE = { key: 'alice-demo-api-key', secret: 'alice-demo-api-secret' };
const BOB = { key: 'bob-demo-api-key', secret: 'bob-demo-api-secret' };
const HOUR_MS = 60 * 60_000;

let now = 1_700_000_000_000;
let accounts: Accounts | undefined;

function setup(extra: Partial<AccountsOptions> = {}) {
  now = 1_700_000_000_000;
  const market = new FakeMarket();
  const sink = new CapturingSink();
  const acc = new Accounts({
    market,
    sink,
    clock: { now: () => now },
    seed: 42,
    sweepIntervalMs: 0,
    ...extra,
  });
  accounts = acc;
  return { acc, market, sink };
}

afterEach(() => {
  accounts?.stop();
  accounts = undefined;
});

function request(
  method: string,
  path: string,
  opts: { apiKey?: string; rawQuery?: string; body?: string } = {},
): SimRequest {
  const rawQuery = opts.rawQuery ?? '';
  const body = opts.body ?? '';
  const params = new URLSearchParams(body);
  for (const [k, v] of new URLSearchParams(rawQuery)) params.set(k, v);
  return {
    method,
    path,
    rawQuery,
    body,
    params,
    headers: opts.apiKey === undefined ? {} : { 'x-mbx-apikey': opts.apiKey },
  };
}

/** Signs `query` with node:crypto directly, independently of the simulator's helper. */
function signedQuery(secret: string, query: string): string {
  const sig = createHmac('sha256', secret).update(query).digest('hex');
  return `${query}&signature=${sig}`;
}

function signedGet(
  acc: Accounts,
  path: string,
  who: { key: string; secret: string },
  params = '',
): SimResponse {
  const query = `${params}${params ? '&' : ''}timestamp=${now}`;
  const res = acc.route(
    request('GET', path, { apiKey: who.key, rawQuery: signedQuery(who.secret, query) }),
  );
  if (!res) throw new Error('route not handled');
  return res;
}

function order(
  acc: Accounts,
  who: { key: string; secret: string },
  params: string,
): { res: SimResponse; json: Record<string, unknown> } {
  const body = signedQuery(who.secret, `${params}&timestamp=${now}`);
  const res = acc.route(request('POST', '/fapi/v1/order', { apiKey: who.key, body }));
  if (!res) throw new Error('route not handled');
  return { res, json: parseJsonExact(res.body) as Record<string, unknown> };
}

function json(res: SimResponse | undefined): unknown {
  if (!res) throw new Error('route not handled');
  return JSON.parse(res.body);
}

function listenKey(acc: Accounts, method: string, apiKey?: string): SimResponse {
  const res = acc.route(
    request(method, '/fapi/v1/listenKey', apiKey === undefined ? {} : { apiKey }),
  );
  if (!res) throw new Error('route not handled');
  return res;
}

type Ev = Record<string, unknown> & { e: string };
function events(texts: string[]): Ev[] {
  return texts.map((t) => parseJsonExact(t) as Ev);
}

describe('listenKey', () => {
  it('POST returns the same 64-char key while active and extends it', () => {
    const { acc } = setup();
    const first = json(listenKey(acc, 'POST', ALICE.key)) as { listenKey: string };
    expect(first.listenKey).toMatch(/^[A-Za-z0-9]{64}$/);
    now += 50 * 60_000;
    const second = json(listenKey(acc, 'POST', ALICE.key)) as { listenKey: string };
    expect(second.listenKey).toBe(first.listenKey);
    // 50 + 50 minutes: alive only because the second POST extended it
    now += 50 * 60_000;
    expect(acc.listenKeyOf('alice')).toBe(first.listenKey);
    const bobKey = json(listenKey(acc, 'POST', BOB.key)) as { listenKey: string };
    expect(bobKey.listenKey).not.toBe(first.listenKey);
  });

  it('PUT extends the key and returns it', () => {
    const { acc } = setup();
    const { listenKey: key } = json(listenKey(acc, 'POST', ALICE.key)) as { listenKey: string };
    now += 59 * 60_000;
    const put = listenKey(acc, 'PUT', ALICE.key);
    expect(put.status).toBe(200);
    expect(json(put)).toEqual({ listenKey: key });
    now += 59 * 60_000;
    expect(listenKey(acc, 'PUT', ALICE.key).status).toBe(200);
  });

  it('expires after the validity: listenKeyExpired, PUT -1125, POST gives a new key', () => {
    const { acc, sink } = setup();
    const { listenKey: key } = json(listenKey(acc, 'POST', ALICE.key)) as { listenKey: string };
    now += HOUR_MS;
    const put = listenKey(acc, 'PUT', ALICE.key);
    expect(put.status).toBe(400);
    expect(json(put)).toEqual({ code: -1125, msg: 'This listenKey does not exist.' });
    expect(sink.on(key)).toEqual([`{"e":"listenKeyExpired","E":${now},"listenKey":"${key}"}`]);
    const again = json(listenKey(acc, 'POST', ALICE.key)) as { listenKey: string };
    expect(again.listenKey).toMatch(/^[A-Za-z0-9]{64}$/);
    expect(again.listenKey).not.toBe(key);
  });

  it('the sweep timer expires keys without any call', async () => {
    const { acc, sink } = setup({ sweepIntervalMs: 5 });
    const { listenKey: key } = json(listenKey(acc, 'POST', ALICE.key)) as { listenKey: string };
    now += HOUR_MS + 1;
    await new Promise((r) => setTimeout(r, 40));
    expect(events(sink.on(key)).map((e) => e.e)).toEqual(['listenKeyExpired']);
  });

  it('DELETE closes the key; PUT then answers -1125', () => {
    const { acc } = setup();
    listenKey(acc, 'POST', ALICE.key);
    const del = listenKey(acc, 'DELETE', ALICE.key);
    expect(del.status).toBe(200);
    expect(json(del)).toEqual({});
    const put = listenKey(acc, 'PUT', ALICE.key);
    expect(put.status).toBe(400);
    expect((json(put) as { code: number }).code).toBe(-1125);
    expect(acc.listenKeyOf('alice')).toBeUndefined();
  });

  it('rejects a missing key (401 -2014) and an unknown key (401 -2015) without echoing it', () => {
    const { acc } = setup();
    const missing = listenKey(acc, 'POST');
    expect(missing.status).toBe(401);
    expect(json(missing)).toEqual({ code: -2014, msg: 'API-key format invalid.' });
    const unknown = listenKey(acc, 'POST', 'not-a-real-key');
    expect(unknown.status).toBe(401);
    expect(json(unknown)).toEqual({
      code: -2015,
      msg: 'Invalid API-key, IP, or permissions for action.',
    });
    expect(unknown.body).not.toContain('not-a-real-key');
  });

  it('expireListenKey twice publishes two listenKeyExpired events and drops the key', () => {
    const { acc, sink } = setup();
    const { listenKey: key } = json(listenKey(acc, 'POST', ALICE.key)) as { listenKey: string };
    expect(acc.expireListenKey('alice-demo-api-key', { twice: true })).toBe(true);
    const got = events(sink.on(key));
    expect(got).toEqual([
      { e: 'listenKeyExpired', E: now, listenKey: key },
      { e: 'listenKeyExpired', E: now, listenKey: key },
    ]);
    expect(acc.emittedEvents('alice')).toEqual(sink.on(key));
    expect(acc.expireListenKey('alice')).toBe(false);
    expect(listenKey(acc, 'PUT', ALICE.key).status).toBe(400);
  });
});

describe('signed requests', () => {
  it('accepts a correct signature (query form)', () => {
    const { acc } = setup();
    expect(signedGet(acc, '/fapi/v3/balance', ALICE).status).toBe(200);
  });

  it('accepts a signature over query + body (POST form)', () => {
    const { acc } = setup();
    const rawQuery = 'symbol=BTCUSDT&side=BUY';
    const unsignedBody = `type=MARKET&quantity=0.001&timestamp=${now}`;
    const sig = createHmac('sha256', ALICE.secret)
      .update(rawQuery + unsignedBody)
      .digest('hex');
    const res = acc.route(
      request('POST', '/fapi/v1/order', {
        apiKey: ALICE.key,
        rawQuery,
        body: `${unsignedBody}&signature=${sig}`,
      }),
    );
    expect(res?.status).toBe(200);
  });

  it('rejects a bad signature with -1022', () => {
    const { acc } = setup();
    const query = signedQuery('wrong-secret', `timestamp=${now}`);
    const res = acc.route(
      request('GET', '/fapi/v3/account', { apiKey: ALICE.key, rawQuery: query }),
    );
    expect(res?.status).toBe(400);
    expect(json(res)).toEqual({ code: -1022, msg: 'Signature for this request is not valid.' });
    expect(res?.body).not.toContain(ALICE.secret);
  });

  it('rejects a timestamp outside the recvWindow or >= 1000 ms ahead with -1021', () => {
    const { acc } = setup();
    const send = (query: string) =>
      acc.route(
        request('GET', '/fapi/v3/balance', {
          apiKey: ALICE.key,
          rawQuery: signedQuery(ALICE.secret, query),
        }),
      );
    const outside = {
      code: -1021,
      msg: 'Timestamp for this request is outside of the recvWindow.',
    };
    expect(json(send(`timestamp=${now - 5_001}`))).toEqual(outside);
    expect(send(`timestamp=${now - 5_000}`)?.status).toBe(200);
    expect(send(`timestamp=${now - 10_000}&recvWindow=20000`)?.status).toBe(200);
    expect(json(send(`timestamp=${now - 20_001}&recvWindow=20000`))).toEqual(outside);
    expect(json(send(`timestamp=${now + 1_001}`))).toEqual(outside);
    expect(json(send(`timestamp=${now + 1_000}`))).toEqual(outside);
    expect(send(`timestamp=${now + 999}`)?.status).toBe(200);
    expect((json(send(`timestamp=${now}&recvWindow=60001`)) as { code: number }).code).toBe(-1131);
  });

  it('reports missing timestamp / signature with -1102', () => {
    const { acc } = setup();
    const noTs = acc.route(
      request('GET', '/fapi/v3/balance', {
        apiKey: ALICE.key,
        rawQuery: signedQuery(ALICE.secret, 'recvWindow=5000'),
      }),
    );
    expect(json(noTs)).toEqual({
      code: -1102,
      msg: "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
    });
    const noSig = acc.route(
      request('GET', '/fapi/v3/balance', { apiKey: ALICE.key, rawQuery: `timestamp=${now}` }),
    );
    expect(json(noSig)).toEqual({
      code: -1102,
      msg: "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
    });
  });

  it('returns undefined for paths it does not own', () => {
    const { acc } = setup();
    expect(acc.route(request('GET', '/fapi/v1/depth'))).toBeUndefined();
    expect(acc.route(request('GET', '/fapi/v1/listenKey'))).toBeUndefined();
  });
});

describe('orders and user-data events', () => {
  it('a MARKET order emits NEW, TRADE_LITE, TRADE FILLED, ACCOUNT_UPDATE on that key only', () => {
    const { acc, sink } = setup();
    const { listenKey: aliceKey } = json(listenKey(acc, 'POST', ALICE.key)) as {
      listenKey: string;
    };
    const { listenKey: bobKey } = json(listenKey(acc, 'POST', BOB.key)) as { listenKey: string };

    const { res, json: body } = order(
      acc,
      ALICE,
      'symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.010&newClientOrderId=my-order-1',
    );
    expect(res.status).toBe(200);
    // Binance's default newOrderRespType for futures is ACK: the order as accepted
    expect(body.status).toBe('NEW');
    expect(body.clientOrderId).toBe('my-order-1');
    const idMatch = /"orderId":(\d+)[,}]/.exec(res.body);
    expect(idMatch).not.toBeNull();
    const orderId = idMatch?.[1] ?? '';
    expect(BigInt(orderId) > 2n ** 53n).toBe(true);
    expect(body.orderId).toBe(orderId); // parseJsonExact keeps the exact digits
    expect(res.headers?.['X-MBX-ORDER-COUNT-1M']).toBe('1');

    const raw = sink.on(aliceKey);
    const got = events(raw);
    expect(got.map((e) => [e.e, (e.o as Ev | undefined)?.x, (e.o as Ev | undefined)?.X])).toEqual([
      ['ORDER_TRADE_UPDATE', 'NEW', 'NEW'],
      ['TRADE_LITE', undefined, undefined],
      ['ORDER_TRADE_UPDATE', 'TRADE', 'FILLED'],
      ['ACCOUNT_UPDATE', undefined, undefined],
    ]);
    expect(sink.on(bobKey)).toEqual([]);
    expect(acc.emittedEvents('alice')).toEqual(raw);
    expect(acc.emittedEvents('bob')).toEqual([]);

    // `i` is a bare JSON integer above 2^53 in every order event
    for (const text of [raw[0], raw[1], raw[2]]) {
      expect(text).toMatch(new RegExp(`"i":${orderId}[,}]`));
    }
    const [newEv, lite, trade, update] = got;
    expect(newEv).toEqual({
      e: 'ORDER_TRADE_UPDATE',
      E: now,
      T: now,
      o: {
        s: 'BTCUSDT',
        c: 'my-order-1',
        S: 'BUY',
        o: 'MARKET',
        f: 'GTC',
        q: '0.010',
        p: '0',
        ap: '0',
        sp: '0',
        x: 'NEW',
        X: 'NEW',
        i: orderId,
        l: '0',
        z: '0.000',
        L: '0',
        N: 'USDT',
        n: '0',
        T: now,
        t: 0,
        b: '0',
        a: '0',
        m: false,
        R: false,
        wt: 'CONTRACT_PRICE',
        ot: 'MARKET',
        ps: 'BOTH',
        cp: false,
        rp: '0',
        pP: false,
        si: 0,
        ss: 0,
        V: 'NONE',
        pm: 'NONE',
        gtd: 0,
        er: '0',
      },
    });
    expect(lite).toEqual({
      e: 'TRADE_LITE',
      E: now,
      T: now,
      s: 'BTCUSDT',
      q: '0.010',
      p: '0',
      m: false,
      c: 'my-order-1',
      S: 'BUY',
      L: '60000.00',
      l: '0.010',
      t: 5000,
      i: orderId,
    });
    expect(trade?.o).toMatchObject({
      x: 'TRADE',
      X: 'FILLED',
      l: '0.010',
      z: '0.010',
      L: '60000.00',
      ap: '60000.00',
      n: '0.30000000', // 600 USDT × 0.0005
      N: 'USDT',
      t: 5000,
      rp: '0.00000000',
      m: false,
      ps: 'BOTH',
    });
    expect(update).toEqual({
      e: 'ACCOUNT_UPDATE',
      E: now,
      T: now,
      a: {
        m: 'ORDER',
        B: [{ a: 'USDT', wb: '9999.70000000', cw: '9999.70000000', bc: '0' }],
        P: [
          {
            s: 'BTCUSDT',
            pa: '0.010',
            ep: '60000.00',
            bep: '60060.03001501', // 60000 × 1.0005 / 0.9995
            cr: '0.00000000',
            up: '0.00000000',
            mt: 'cross',
            iw: '0',
            ps: 'BOTH',
          },
        ],
      },
    });
  });

  it('events of an account without an active key are lost', () => {
    const { acc, sink } = setup();
    const { res } = order(acc, BOB, 'symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.001');
    expect(res.status).toBe(200);
    expect(sink.events).toEqual([]);
    expect(acc.emittedEvents('bob')).toEqual([]);
  });

  it('keeps balances and positions exact through buy, partial sell, add and flip', () => {
    const { acc, market, sink } = setup();
    const { listenKey: key } = json(listenKey(acc, 'POST', ALICE.key)) as { listenKey: string };
    const lastAccountUpdate = (): Ev => {
      const all = events(sink.on(key)).filter((e) => e.e === 'ACCOUNT_UPDATE');
      return all[all.length - 1] as Ev;
    };

    // 1. buy 0.010 @ 60000.00: notional 600, fee 0.3 → wallet 10000 − 0.3 = 9999.7
    order(acc, ALICE, 'symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.010');

    // 2. sell 0.004 @ 61000.50: notional 244.002, fee 0.122001,
    //    realized (61000.5 − 60000) × 0.004 = 4.002 → wallet 9999.7 + 4.002 − 0.122001 = 10003.579999
    market.price = '61000.50';
    market.mark = '61000.50';
    const sell = order(
      acc,
      ALICE,
      'symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.004&newOrderRespType=RESULT',
    );
    expect(sell.json).toMatchObject({
      status: 'FILLED',
      executedQty: '0.004',
      cumQty: '0.004',
      cumQuote: '244.002',
      avgPrice: '61000.50',
      origQty: '0.004',
      type: 'MARKET',
      origType: 'MARKET',
    });
    const sellTrade = events(sink.on(key)).filter(
      (e) => e.e === 'ORDER_TRADE_UPDATE' && (e.o as Ev).x === 'TRADE',
    )[1]?.o as Ev;
    expect(sellTrade).toMatchObject({ rp: '4.00200000', n: '0.12200100', X: 'FILLED' });
    expect(lastAccountUpdate().a).toMatchObject({
      B: [{ a: 'USDT', wb: '10003.57999900', cw: '10003.57999900', bc: '0' }],
      // unrealized at mark 61000.50: 1000.5 × 0.006 = 6.003
      P: [{ s: 'BTCUSDT', pa: '0.006', ep: '60000.00', cr: '4.00200000', up: '6.00300000' }],
    });

    const balance = json(signedGet(acc, '/fapi/v3/balance', ALICE)) as Record<string, unknown>[];
    expect(balance).toEqual([
      {
        accountAlias: expect.stringMatching(/^[A-Za-z0-9]+$/),
        asset: 'USDT',
        balance: '10003.57999900',
        crossWalletBalance: '10003.57999900',
        crossUnPnl: '6.00300000',
        // margin balance 10009.582999 − initial margin 366.003 / 20 = 18.30015
        availableBalance: '9991.28284900',
        maxWithdrawAmount: '9991.28284900',
        marginAvailable: true,
        updateTime: now,
      },
    ]);

    // 3. buy 0.002 @ 62000.00: entry (0.006 × 60000 + 0.002 × 62000) / 0.008 = 60500,
    //    fee 124 × 0.0005 = 0.062 → wallet 10003.517999
    market.price = '62000.00';
    order(acc, ALICE, 'symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.002');
    expect(lastAccountUpdate().a).toMatchObject({
      B: [{ wb: '10003.51799900' }],
      P: [{ pa: '0.008', ep: '60500.00', cr: '4.00200000' }],
    });

    // 4. sell 0.010 @ 61000.00: closes 0.008 (realized (61000 − 60500) × 0.008 = 4) and opens
    //    0.002 short at 61000; fee 610 × 0.0005 = 0.305 → wallet 10003.517999 + 4 − 0.305
    market.price = '61000.00';
    market.mark = '60900.00';
    order(acc, ALICE, 'symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.010');
    expect(lastAccountUpdate().a).toMatchObject({
      B: [{ wb: '10007.21299900' }],
      // short 0.002 from 61000, mark 60900: (60900 − 61000) × −0.002 = 0.2
      P: [{ pa: '-0.002', ep: '61000.00', cr: '8.00200000', up: '0.20000000' }],
    });

    const risk = json(signedGet(acc, '/fapi/v3/positionRisk', ALICE, 'symbol=BTCUSDT')) as Record<
      string,
      unknown
    >[];
    expect(risk).toHaveLength(1);
    expect(Object.keys(risk[0] ?? {})).toEqual([
      'symbol',
      'positionSide',
      'positionAmt',
      'entryPrice',
      'breakEvenPrice',
      'markPrice',
      'unRealizedProfit',
      'liquidationPrice',
      'isolatedMargin',
      'notional',
      'marginAsset',
      'isolatedWallet',
      'initialMargin',
      'maintMargin',
      'positionInitialMargin',
      'openOrderInitialMargin',
      'adl',
      'bidNotional',
      'askNotional',
      'updateTime',
    ]);
    expect(risk[0]).toMatchObject({
      symbol: 'BTCUSDT',
      positionSide: 'BOTH',
      positionAmt: '-0.002',
      entryPrice: '61000.00',
      markPrice: '60900.00000000',
      unRealizedProfit: '0.20000000',
      notional: '-121.8',
      marginAsset: 'USDT',
      initialMargin: '6.09', // 121.8 / 20
      maintMargin: '0.4872', // 121.8 × 0.004
    });
  });

  it('account v3 shape: totals, assets, positions only with a position', () => {
    const { acc } = setup();
    const flat = json(signedGet(acc, '/fapi/v3/account', BOB)) as Record<string, unknown>;
    expect(Object.keys(flat)).toEqual([
      'totalInitialMargin',
      'totalMaintMargin',
      'totalWalletBalance',
      'totalUnrealizedProfit',
      'totalMarginBalance',
      'totalPositionInitialMargin',
      'totalOpenOrderInitialMargin',
      'totalCrossWalletBalance',
      'totalCrossUnPnl',
      'availableBalance',
      'maxWithdrawAmount',
      'assets',
      'positions',
    ]);
    expect(flat.totalWalletBalance).toBe('25000.00000000');
    expect(flat.positions).toEqual([]);
    expect(flat.assets).toEqual([
      {
        asset: 'USDT',
        walletBalance: '25000.00000000',
        unrealizedProfit: '0.00000000',
        marginBalance: '25000.00000000',
        maintMargin: '0.00000000',
        initialMargin: '0.00000000',
        positionInitialMargin: '0.00000000',
        openOrderInitialMargin: '0.00000000',
        crossWalletBalance: '25000.00000000',
        crossUnPnl: '0.00000000',
        availableBalance: '25000.00000000',
        maxWithdrawAmount: '25000.00000000',
        updateTime: now,
      },
    ]);

    order(acc, BOB, 'symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.100');
    const withPos = json(signedGet(acc, '/fapi/v3/account', BOB)) as {
      positions: Record<string, unknown>[];
      totalWalletBalance: string;
    };
    expect(withPos.totalWalletBalance).toBe('24997.00000000'); // 6000 × 0.0005 = 3
    expect(withPos.positions).toEqual([
      {
        symbol: 'BTCUSDT',
        positionSide: 'BOTH',
        positionAmt: '-0.100',
        unrealizedProfit: '0.00000000',
        isolatedMargin: '0',
        notional: '-6000',
        isolatedWallet: '0',
        initialMargin: '300',
        maintMargin: '24',
        updateTime: now,
      },
    ]);
    expect(signedGet(acc, '/fapi/v2/account', BOB).status).toBe(200);
    expect(signedGet(acc, '/fapi/v2/balance', BOB).status).toBe(200);
    expect(signedGet(acc, '/fapi/v2/positionRisk', BOB).status).toBe(200);
  });

  it('rejects bad orders with Binance codes', () => {
    const { acc } = setup();
    const code = (params: string) =>
      (order(acc, ALICE, params).json as { code?: number; msg?: string }).code;
    expect(code('symbol=NOPEUSDT&side=BUY&type=MARKET&quantity=0.001')).toBe(-1121);
    expect(code('symbol=BTCUSDT&side=BUY&type=STOP_MARKET&quantity=0.001&stopPrice=1')).toBe(-4120);
    expect(code('symbol=BTCUSDT&side=BUY&type=TRAILING_STOP_MARKET&quantity=0.001')).toBe(-4120);
    expect(code('symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.0001')).toBe(-1111);
    expect(code('symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0')).toBe(-4003);
    expect(code('symbol=BTCUSDT&side=BUY&type=MARKET')).toBe(-1102);
    expect(code('symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.001&price=60000')).toBe(-1102);
    expect(
      code('symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.001&price=60000.123&timeInForce=GTC'),
    ).toBe(-1111);
    expect(
      code('symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.001&price=60000.15&timeInForce=GTC'),
    ).toBe(-4014);
    expect(code('symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.001&positionSide=LONG')).toBe(
      -4061,
    );
    expect(code('symbol=BTCUSDT&side=BUY&type=MARKET&quantity=100')).toBe(-2019);
    expect(code('symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.001&reduceOnly=true')).toBe(-2022);
  });

  it('LIMIT orders: resting GTC, openOrders, cancel; IOC expires; GTX crossing is -5022', () => {
    const { acc, market, sink } = setup();
    const { listenKey: key } = json(listenKey(acc, 'POST', ALICE.key)) as { listenKey: string };

    const rest = order(
      acc,
      ALICE,
      'symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.010&price=59000.00&timeInForce=GTC',
    );
    expect(rest.json).toMatchObject({ status: 'NEW', price: '59000.00', timeInForce: 'GTC' });
    expect(events(sink.on(key)).map((e) => e.e)).toEqual(['ORDER_TRADE_UPDATE']);
    expect(market.calls.at(-1)).toEqual({
      side: 'BUY',
      quantity: '0.010',
      limitPrice: '59000.00',
    });

    const open = parseJsonExact(signedGet(acc, '/fapi/v1/openOrders', ALICE).body) as Record<
      string,
      unknown
    >[];
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({ orderId: rest.json.orderId, status: 'NEW', time: now });

    // GTX (post-only) that would cross the market: rejected, nothing recorded
    const gtx = order(
      acc,
      ALICE,
      'symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.001&price=60100.00&timeInForce=GTX',
    );
    expect(gtx.json.code).toBe(-5022);

    // IOC that cannot fill: NEW then EXPIRED (er 2)
    const ioc = order(
      acc,
      ALICE,
      'symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.001&price=59500.00&timeInForce=IOC&newOrderRespType=RESULT',
    );
    expect(ioc.json.status).toBe('EXPIRED');
    const last = events(sink.on(key)).at(-1)?.o as Ev;
    expect(last).toMatchObject({ x: 'EXPIRED', X: 'EXPIRED', er: '2', f: 'IOC' });

    // cancel the resting order by its exact 64-bit id
    const body = signedQuery(
      ALICE.secret,
      `symbol=BTCUSDT&orderId=${String(rest.json.orderId)}&timestamp=${now}`,
    );
    const cancel = acc.route(request('DELETE', '/fapi/v1/order', { apiKey: ALICE.key, body }));
    expect(cancel?.status).toBe(200);
    expect((parseJsonExact(cancel?.body ?? '') as Ev).status).toBe('CANCELED');
    expect(events(sink.on(key)).at(-1)?.o).toMatchObject({ x: 'CANCELED', X: 'CANCELED' });
    expect(
      parseJsonExact(signedGet(acc, '/fapi/v1/openOrders', ALICE, 'symbol=BTCUSDT').body),
    ).toEqual([]);
  });

  it('a resting order fills when the mark crosses its price (sweep)', () => {
    const { acc, market, sink } = setup();
    const { listenKey: key } = json(listenKey(acc, 'POST', ALICE.key)) as { listenKey: string };
    order(
      acc,
      ALICE,
      'symbol=BTCUSDT&side=SELL&type=LIMIT&quantity=0.002&price=60500.00&timeInForce=GTC',
    );
    acc.sweep();
    expect(events(sink.on(key))).toHaveLength(1);
    market.price = '60600.00';
    market.mark = '60600.00';
    acc.sweep();
    const got = events(sink.on(key));
    expect(got.map((e) => e.e)).toEqual([
      'ORDER_TRADE_UPDATE',
      'TRADE_LITE',
      'ORDER_TRADE_UPDATE',
      'ACCOUNT_UPDATE',
    ]);
    expect(got[2]?.o).toMatchObject({ X: 'FILLED', L: '60600.00', o: 'LIMIT', p: '60500.00' });
  });

  it('placeOrder, publishAccountConfigUpdate and auto-trading use the same event path', async () => {
    const { acc, sink } = setup();
    const { listenKey: key } = json(listenKey(acc, 'POST', ALICE.key)) as { listenKey: string };
    const res = acc.placeOrder('alice', {
      symbol: 'BTCUSDT',
      side: 'BUY',
      type: 'MARKET',
      quantity: '0.001',
      newOrderRespType: 'RESULT',
    });
    expect((parseJsonExact(res.body) as Ev).status).toBe('FILLED');
    acc.publishAccountConfigUpdate('alice', 'BTCUSDT', 25);
    expect(events(sink.on(key)).at(-1)).toEqual({
      e: 'ACCOUNT_CONFIG_UPDATE',
      E: now,
      T: now,
      ac: { s: 'BTCUSDT', l: 25 },
    });
    expect(() => acc.placeOrder('carol', {})).toThrow(/no account/);

    const before = sink.on(key).length;
    acc.startAutoTrading(10);
    await new Promise((r) => setTimeout(r, 80));
    acc.stop();
    const auto = events(sink.on(key).slice(before));
    expect(auto.filter((e) => e.e === 'TRADE_LITE').length).toBeGreaterThan(1);
    const sides = auto.filter((e) => e.e === 'TRADE_LITE').map((e) => e.S);
    expect(sides.slice(0, 2)).toEqual(['BUY', 'SELL']);
  });
});
