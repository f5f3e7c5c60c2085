import { afterEach, describe, expect, it } from 'vitest';
import type { Client } from 'graphql-ws';
import { credentialHash } from '../src/account/account-service.js';
import { parseJsonExact } from '../src/binance/json.js';
import { collect, startStack, wsClient, type Collected, type Stack } from './helpers/stack.js';
import { sleep, waitFor } from './helpers/wait.js';

const ALICE = { apiKey: 'alice-demo-api-key', apiSecret: 'alice-demo-api-secret' };
const BOB = { apiKey: 'bob-demo-api-key', apiSecret: 'bob-demo-api-secret' };
const STRANGER = { apiKey: 'stranger-unknown-api-key-0001', apiSecret: 'stranger-secret-0001' };

const ORDER_FIELDS = `eventTime transactionTime symbol orderId clientOrderId side orderType
  executionType orderStatus price quantity averagePrice lastFilledQuantity lastFilledPrice
  cumulativeFilledQuantity tradeId realizedProfit`;

const EVENTS = `subscription { accountEvents {
  __typename
  ... on OrderUpdate { ${ORDER_FIELDS} }
  ... on AccountUpdate { eventTime transactionTime reason
    balances { asset walletBalance crossWalletBalance }
    positions { symbol positionSide positionAmount entryPrice unrealizedProfit } }
  ... on AccountConfigUpdate { eventTime transactionTime leverageChange { symbol leverage } multiAssetsMode }
} }`;
const ORDERS = `subscription($symbol: String) { orderUpdates(symbol: $symbol) { ${ORDER_FIELDS} } }`;
const BALANCES = `subscription { balances { asset walletBalance crossWalletBalance } }`;
const POSITIONS = `subscription { positions { symbol positionSide positionAmount entryPrice unrealizedProfit } }`;

interface OrderUpdate {
  symbol: string;
  orderId: string;
  executionType: string;
  orderStatus: string;
  tradeId: string;
}
interface AccountEvent extends Partial<OrderUpdate> {
  __typename: string;
  balances?: { asset: string; walletBalance: string }[];
  positions?: { symbol: string; positionAmount: string }[];
  leverageChange?: { symbol: string; leverage: number } | null;
}
type EventsData = { accountEvents: AccountEvent };
type OrdersData = { orderUpdates: OrderUpdate };
type BalancesData = { balances: { asset: string; walletBalance: string }[] };
type PositionsData = {
  positions: { symbol: string; positionSide: string; positionAmount: string }[];
};

let stack: Stack | undefined;
const clients: Client[] = [];
const aborts: AbortController[] = [];

afterEach(async () => {
  for (const a of aborts.splice(0)) a.abort();
  for (const c of clients.splice(0)) await c.dispose();
  await stack?.close();
  stack = undefined;
});

async function start(): Promise<Stack> {
  stack = await startStack();
  return stack;
}

function client(s: Stack, params?: Record<string, unknown>): Client {
  const c = wsClient(s.wsUrl, params);
  clients.push(c);
  return c;
}

const hashOf = (apiKey: string): string => credentialHash(apiKey).slice(0, 12);

/** Waits until the gateway's stream for a key is live with at least n subscribers. */
async function live(s: Stack, apiKey: string, subscribers = 1): Promise<void> {
  await waitFor(
    () =>
      s.gw.account
        .status()
        .some(
          (e) => e.keyHash === hashOf(apiKey) && e.state === 'live' && e.subscribers >= subscribers,
        ),
    5_000,
    `live user stream with ${subscribers} subscribers`,
  );
}

interface RawOrderEvent {
  orderId: string;
  executionType: string;
  orderStatus: string;
  tradeId: string;
}

/** The ORDER_TRADE_UPDATEs the simulator emitted for an account, ids as exact digits. */
function emittedOrders(s: Stack, account: string, from = 0): RawOrderEvent[] {
  return s.sim.accounts
    .emittedEvents(account)
    .slice(from)
    .filter((text) => text.includes('"e":"ORDER_TRADE_UPDATE"'))
    .map((text) => {
      const o = (parseJsonExact(text) as { o: Record<string, unknown> }).o;
      return {
        orderId: String(o.i),
        executionType: String(o.x),
        orderStatus: String(o.X),
        tradeId: String(o.t),
      };
    });
}

function marketOrder(s: Stack, account: string, side: 'BUY' | 'SELL', quantity = '0.010') {
  const res = s.sim.accounts.placeOrder(account, {
    symbol: 'BTCUSDT',
    side,
    type: 'MARKET',
    quantity,
    newOrderRespType: 'RESULT',
  });
  expect(res.status).toBe(200);
  const id = /"orderId":(\d+)/.exec(String(res.body))?.[1];
  expect(id).toBeDefined();
  return id as string;
}

const orderKey = (o: RawOrderEvent | OrderUpdate): string =>
  `${o.orderId}|${o.executionType}|${o.orderStatus}|${o.tradeId}`;

/** A GraphQL subscription over SSE (`POST /graphql`, `Accept: text/event-stream`). */
function sse<T>(url: string, query: string, headers: Record<string, string>): Collected<T> {
  const abort = new AbortController();
  aborts.push(abort);
  const out: Collected<T> = {
    values: [],
    errors: [],
    completed: false,
    dispose: () => abort.abort(),
    async next(n = 1, timeoutMs = 10_000) {
      await waitFor(() => out.values.length >= n || out.errors.length > 0, timeoutMs, 'sse');
      if (out.values.length < n) throw new Error(`sse failed: ${JSON.stringify(out.errors)}`);
      return out.values[n - 1]!;
    },
  };
  void (async () => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
      body: JSON.stringify({ query }),
      signal: abort.signal,
    });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut: number;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).trim())
          .join('\n');
        if (!data) continue;
        const msg = JSON.parse(data) as { data?: T; errors?: unknown[] };
        if (msg.errors) out.errors.push(...msg.errors);
        if (msg.data) out.values.push(msg.data);
      }
    }
    out.completed = true;
  })().catch((err: unknown) => {
    if (!abort.signal.aborted) out.errors.push(String(err));
  });
  return out;
}

describe('account data over real sockets', () => {
  it('delivers an order to accountEvents, orderUpdates, balances and positions within a second', async () => {
    const s = await start();
    const c = client(s, ALICE);
    const events = collect<EventsData>(c, EVENTS);
    const orders = collect<OrdersData>(c, ORDERS, { symbol: 'btcusdt' });
    const ethOrders = collect<OrdersData>(c, ORDERS, { symbol: 'ETHUSDT' });
    const balances = collect<BalancesData>(c, BALANCES);
    const positions = collect<PositionsData>(c, POSITIONS);

    const firstBalances = await balances.next(1);
    expect(firstBalances.balances).toEqual([
      { asset: 'USDT', walletBalance: '10000.00000000', crossWalletBalance: '10000.00000000' },
    ]);
    expect((await positions.next(1)).positions).toEqual([]);
    await live(s, ALICE.apiKey, 5);
    const from = s.sim.accounts.emittedEvents('alice').length;

    const placedAt = Date.now();
    const orderId = marketOrder(s, 'alice', 'BUY');
    expect(BigInt(orderId)).toBeGreaterThan(2n ** 53n);

    await waitFor(
      () =>
        orders.values.some((v) => v.orderUpdates.orderStatus === 'FILLED') &&
        events.values.some((v) => v.accountEvents.__typename === 'AccountUpdate') &&
        balances.values.length >= 2 &&
        positions.values.length >= 2,
      1_000,
      'the order on every account subscription',
    );
    expect(Date.now() - placedAt).toBeLessThan(1_000);

    // exact 64-bit ids: the digits the simulator wrote on the wire
    const raw = s.sim.accounts
      .emittedEvents('alice')
      .slice(from)
      .find((t) => t.includes('"e":"ORDER_TRADE_UPDATE"'));
    const rawId = /"i":(\d+)/.exec(raw ?? '')?.[1];
    expect(rawId).toBe(orderId);
    expect(orders.values.every((v) => v.orderUpdates.orderId === orderId)).toBe(true);
    const orderEvents = events.values.filter((v) => v.accountEvents.__typename === 'OrderUpdate');
    expect(orderEvents.map((v) => v.accountEvents.orderId)).toContain(orderId);
    expect(orders.values.map((v) => orderKey(v.orderUpdates))).toEqual(
      emittedOrders(s, 'alice', from).map(orderKey),
    );
    expect(ethOrders.values).toEqual([]);

    const update = events.values.find((v) => v.accountEvents.__typename === 'AccountUpdate');
    expect(update?.accountEvents.positions?.[0]?.symbol).toBe('BTCUSDT');
    const lastPositions = positions.values.at(-1)!.positions;
    expect(lastPositions).toHaveLength(1);
    expect(lastPositions[0]).toMatchObject({
      symbol: 'BTCUSDT',
      positionSide: 'BOTH',
      positionAmount: '0.010',
    });
    const wallet = balances.values.at(-1)!.balances[0]!.walletBalance;
    expect(wallet).not.toBe('10000.00000000');
    expect(update?.accountEvents.balances?.[0]?.walletBalance).toBe(wallet);

    // closing the position removes it from the list
    marketOrder(s, 'alice', 'SELL');
    await waitFor(() => positions.values.at(-1)!.positions.length === 0, 1_000, 'position closed');

    // ACCOUNT_CONFIG_UPDATE
    s.sim.accounts.publishAccountConfigUpdate('alice', 'BTCUSDT', 7);
    await waitFor(
      () => events.values.some((v) => v.accountEvents.__typename === 'AccountConfigUpdate'),
      1_000,
      'config update',
    );
    const config = events.values.find((v) => v.accountEvents.__typename === 'AccountConfigUpdate');
    expect(config?.accountEvents.leverageChange).toEqual({ symbol: 'BTCUSDT', leverage: 7 });
    for (const col of [events, orders, ethOrders, balances, positions]) {
      expect(col.errors).toEqual([]);
    }
  });

  it('keeps callers apart: alice, bob and an unknown key subscribed at once', async () => {
    const s = await start();
    const a = collect<EventsData>(client(s, ALICE), EVENTS);
    const b = collect<EventsData>(client(s, { apiKey: BOB.apiKey }), EVENTS);
    const bBalances = collect<BalancesData>(client(s, BOB), BALANCES);
    const stranger = collect<EventsData>(client(s, STRANGER), EVENTS);
    await live(s, ALICE.apiKey);
    await live(s, BOB.apiKey, 2);
    await waitFor(() => stranger.errors.length > 0, 5_000, 'stranger rejected');
    expect(JSON.stringify(stranger.errors)).toContain('INVALID_API_KEY');
    expect(stranger.values).toEqual([]);
    const fromA = s.sim.accounts.emittedEvents('alice').length;
    const fromB = s.sim.accounts.emittedEvents('bob').length;

    const ids = { alice: [] as string[], bob: [] as string[] };
    for (let i = 0; i < 3; i++) {
      ids.alice.push(marketOrder(s, 'alice', i % 2 === 0 ? 'BUY' : 'SELL'));
      ids.bob.push(marketOrder(s, 'bob', i % 2 === 0 ? 'SELL' : 'BUY', '0.020'));
    }
    const expectA = emittedOrders(s, 'alice', fromA).map(orderKey);
    const expectB = emittedOrders(s, 'bob', fromB).map(orderKey);
    const ordersOf = (c: Collected<EventsData>): string[] =>
      c.values
        .filter((v) => v.accountEvents.__typename === 'OrderUpdate')
        .map((v) => orderKey(v.accountEvents as OrderUpdate));
    await waitFor(
      () => ordersOf(a).length >= expectA.length && ordersOf(b).length >= expectB.length,
      2_000,
      'both accounts',
    );
    await sleep(200);
    expect(ordersOf(a)).toEqual(expectA);
    expect(ordersOf(b)).toEqual(expectB);
    const idsSeenByA = new Set(ordersOf(a).map((k) => k.split('|')[0]));
    const idsSeenByB = new Set(ordersOf(b).map((k) => k.split('|')[0]));
    for (const id of ids.bob) expect(idsSeenByA.has(id)).toBe(false);
    for (const id of ids.alice) expect(idsSeenByB.has(id)).toBe(false);
    // bob's balances follow bob's fills only
    await waitFor(() => bBalances.values.length >= 2, 2_000, 'bob balances');
    expect(bBalances.values.at(-1)!.balances[0]!.walletBalance).not.toBe('25000.00000000');
    expect(stranger.values).toEqual([]);
  });

  it('shares one listenKey and one /private connection per key across WS and SSE, and never DELETEs it', async () => {
    const s = await start();
    const ws1 = collect<EventsData>(client(s, { apiKey: ALICE.apiKey }), EVENTS);
    const ws2 = collect<OrdersData>(client(s, ALICE), ORDERS);
    const ws2b = collect<BalancesData>(clients[1]!, BALANCES);
    const viaSse = sse<EventsData>(s.gw.url, EVENTS, {
      'X-MBX-APIKEY': ALICE.apiKey,
      'X-MBX-APISECRET': ALICE.apiSecret,
    });
    const sseBalances = sse<BalancesData>(s.gw.url, BALANCES, {
      'X-MBX-APIKEY': ALICE.apiKey,
      'X-MBX-APISECRET': ALICE.apiSecret,
    });
    await ws2b.next(1);
    await sseBalances.next(1);
    await live(s, ALICE.apiKey, 5);

    const listenKeyCalls = (method: string): number =>
      s.sim.rest.log.filter((r) => r.method === method && r.path === '/fapi/v1/listenKey').length;
    const privateConnections = (): number =>
      s.sim.streams.listConnections().filter((c) => c.route === 'private').length;
    expect(listenKeyCalls('POST')).toBe(1);
    expect(privateConnections()).toBe(1);
    // one snapshot for the two balance subscriptions of the same key+secret
    expect(s.sim.rest.log.filter((r) => r.path === '/fapi/v3/balance')).toHaveLength(1);

    const orderId = marketOrder(s, 'alice', 'BUY');
    const filled = (v: Partial<OrderUpdate>): boolean =>
      v.orderId === orderId && v.orderStatus === 'FILLED';
    await waitFor(
      () =>
        ws1.values.some((v) => filled(v.accountEvents)) &&
        ws2.values.some((v) => filled(v.orderUpdates)) &&
        viaSse.values.some((v) => filled(v.accountEvents)) &&
        sseBalances.values.length >= 2,
      2_000,
      'the order on every transport',
    );

    for (const c of clients.splice(0)) await c.dispose();
    for (const a of aborts.splice(0)) a.abort();
    await waitFor(() => privateConnections() === 0, 5_000, 'private connection closed');
    expect(s.gw.account.status()).toEqual([]);
    expect(listenKeyCalls('DELETE')).toBe(0);
    expect(listenKeyCalls('POST')).toBe(1);
  });
});

describe('account errors', () => {
  it('answers missing credentials and bad keys per subscription, keeps the socket, and never leaks a credential', async () => {
    const s = await start();
    const BAD = { apiKey: 'bad-key-never-seen-by-binance-42', apiSecret: 'bad-secret-0042' };
    const WRONG_SECRET = { apiKey: ALICE.apiKey, apiSecret: 'alice-wrong-secret-9999' };

    // no key: a public subscription on the same socket keeps running
    const anon = client(s);
    const ticker = collect(anon, 'subscription { trades(symbol: "BTCUSDT") { price } }');
    const noKey = collect(anon, EVENTS);
    await waitFor(() => noKey.errors.length > 0, 5_000, 'no key error');
    expect(JSON.stringify(noKey.errors)).toContain('UNAUTHENTICATED');
    expect(JSON.stringify(noKey.errors)).toContain('API key');
    const before = ticker.values.length;
    await waitFor(() => ticker.values.length > before, 5_000, 'public data still flowing');

    // key but no secret: events work, balances say a secret is needed, on the same socket
    const keyOnly = client(s, { apiKey: ALICE.apiKey });
    const keyOnlyEvents = collect<EventsData>(keyOnly, EVENTS);
    const noSecret = collect(keyOnly, BALANCES);
    const noSecretPositions = collect(keyOnly, POSITIONS);
    await waitFor(
      () => noSecret.errors.length > 0 && noSecretPositions.errors.length > 0,
      5_000,
      'no secret error',
    );
    for (const e of [noSecret.errors, noSecretPositions.errors]) {
      expect(JSON.stringify(e)).toContain('UNAUTHENTICATED');
      expect(JSON.stringify(e)).toMatch(/secret/i);
    }
    await live(s, ALICE.apiKey);
    marketOrder(s, 'alice', 'BUY');
    await waitFor(() => keyOnlyEvents.values.length > 0, 2_000, 'events with the key only');

    // a wrong secret fails its own subscription and does not poison the right one
    const wrong = collect(client(s, WRONG_SECRET), BALANCES);
    await waitFor(() => wrong.errors.length > 0, 5_000, 'wrong secret');
    expect(JSON.stringify(wrong.errors)).toContain('INVALID_API_KEY');
    const right = collect<BalancesData>(client(s, ALICE), BALANCES);
    expect((await right.next(1)).balances[0]?.asset).toBe('USDT');

    // a bad key: INVALID_API_KEY, and five attempts cost Binance at most one POST
    const posts = (): number =>
      s.sim.rest.log.filter((r) => r.method === 'POST' && r.path === '/fapi/v1/listenKey').length;
    const postsBefore = posts();
    const badClient = client(s, BAD);
    for (let i = 0; i < 5; i++) {
      const bad = collect(badClient, i % 2 === 0 ? EVENTS : BALANCES);
      await waitFor(() => bad.errors.length > 0, 5_000, 'bad key error');
      expect(JSON.stringify(bad.errors)).toContain('INVALID_API_KEY');
      expect(bad.values).toEqual([]);
    }
    expect(posts() - postsBefore).toBeLessThanOrEqual(1);
    // the bad key's socket is still usable for public data
    const badTicker = collect(badClient, 'subscription { trades(symbol: "BTCUSDT") { price } }');
    await badTicker.next(1);

    // over SSE too: the remembered rejection, and a missing secret
    const sseBad = sse(s.gw.url, BALANCES, {
      'X-MBX-APIKEY': BAD.apiKey,
      'X-MBX-APISECRET': BAD.apiSecret,
    });
    const sseNoSecret = sse(s.gw.url, POSITIONS, { 'X-MBX-APIKEY': ALICE.apiKey });
    await waitFor(
      () => sseBad.errors.length > 0 && sseNoSecret.errors.length > 0,
      5_000,
      'sse errors',
    );
    expect(JSON.stringify(sseBad.errors)).toContain('INVALID_API_KEY');
    expect(JSON.stringify(sseNoSecret.errors)).toContain('UNAUTHENTICATED');
    expect(posts() - postsBefore).toBeLessThanOrEqual(1);

    const secrets = [ALICE, BOB, BAD, WRONG_SECRET, STRANGER].flatMap((c) => [
      c.apiKey,
      c.apiSecret,
    ]);
    const allErrors = JSON.stringify([
      noKey.errors,
      noSecret.errors,
      noSecretPositions.errors,
      wrong.errors,
      sseBad.errors,
      sseNoSecret.errors,
    ]);
    for (const secret of secrets) {
      expect(allErrors).not.toContain(secret);
      const leaking = s.logs.filter((line) => line.includes(secret));
      expect(leaking, `a log line carries ${secret.slice(0, 5)}…`).toEqual([]);
    }
    expect(s.logs.length).toBeGreaterThan(0);
  });

  it('answers UPSTREAM_UNAVAILABLE when Binance cannot be reached, without remembering it', async () => {
    const s = await start();
    s.sim.control.failRest(503, 1);
    const first = collect<EventsData>(client(s, ALICE), EVENTS);
    await waitFor(() => first.errors.length > 0, 5_000, 'unreachable');
    expect(JSON.stringify(first.errors)).toContain('UPSTREAM_UNAVAILABLE');
    expect(JSON.stringify(first.errors)).not.toContain(ALICE.apiKey);
    // not a verdict on the key: the next attempt goes to Binance again and works
    const second = collect<EventsData>(client(s, ALICE), EVENTS);
    await live(s, ALICE.apiKey);
    marketOrder(s, 'alice', 'BUY');
    await second.next(1, 2_000);
    expect(second.errors).toEqual([]);
  });
});
