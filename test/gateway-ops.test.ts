import { describe, expect, it } from 'vitest';
import { autoCleanup } from './helpers/cleanup.js';
import { collect, type Stack, stacksClosedBy, wsClient } from './helpers/stack.js';
import { sleep, waitFor } from './helpers/wait.js';

const defer = autoCleanup();

const stack = stacksClosedBy(defer);

async function post(
  s: Stack,
  query: string,
  headers: Record<string, string> = {},
): Promise<{
  data?: Record<string, unknown>;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}> {
  const res = await fetch(s.gw.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query }),
  });
  return (await res.json()) as Awaited<ReturnType<typeof post>>;
}

interface Book {
  orderBook: { lastUpdateId: number; bids: { price: string }[]; asks: { price: string }[] };
}
const BOOK =
  'subscription($s: String!) { orderBook(symbol: $s, depth: 5) { lastUpdateId bids { price } asks { price } } }';

describe('health as data', () => {
  it('status query and subscription show connections, books and weight, and no credential', async () => {
    const s = await stack();
    const client = wsClient(s.wsUrl, {
      apiKey: 'alice-demo-api-key',
      apiSecret: 'alice-demo-api-secret',
    });
    defer(() => client.dispose());
    const book = collect<Book>(client, BOOK, { s: 'BTCUSDT' });
    await book.next(1, 15_000);
    const r = await post(
      s,
      '{ status { ready restWeightUsed subscribers upstreamConnections { path state streams lastFrameAgeMs reconnects } orderBooks { symbol state resyncCount lastUpdateId } userStreams { keyHash state } } }',
    );
    expect(r.errors).toBeUndefined();
    const st = r.data!.status as {
      ready: boolean;
      restWeightUsed: number;
      upstreamConnections: { path: string; state: string; streams: number }[];
      orderBooks: { symbol: string; state: string }[];
    };
    expect(st.ready).toBe(true);
    expect(st.restWeightUsed).toBeGreaterThanOrEqual(20);
    expect(st.upstreamConnections).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: 'public', state: 'open', streams: 1 }),
      ]),
    );
    expect(st.orderBooks).toEqual([expect.objectContaining({ symbol: 'BTCUSDT', state: 'live' })]);
    const live = collect<{ status: { uptimeMs: number } }>(
      client,
      'subscription { status(intervalMs: 100) { uptimeMs } }',
    );
    await live.next(3);
    expect(live.values[2]!.status.uptimeMs).toBeGreaterThan(live.values[0]!.status.uptimeMs);
    expect(JSON.stringify(r)).not.toContain('alice-demo');
  });

  it('/healthz, /readyz and /metrics in Prometheus text format', async () => {
    const s = await stack();
    const client = wsClient(s.wsUrl);
    defer(() => client.dispose());
    const book = collect<Book>(client, BOOK, { s: 'ETHUSDT' });
    const trades = collect(client, 'subscription { trades(symbol: "ETHUSDT") { price } }');
    await book.next(2, 15_000);
    const base = s.gw.url.replace('/graphql', '');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true });
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    const value = (name: string, labels = ''): number => {
      const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
      if (!line) throw new Error(`metric ${name}${labels} missing`);
      return Number(line.split(' ').at(-1));
    };
    expect(value('gateway_upstream_connections', '{path="public"}')).toBe(1);
    expect(value('gateway_upstream_streams', '{path="public"}')).toBe(1);
    expect(value('gateway_upstream_streams', '{path="market"}')).toBe(1);
    expect(value('gateway_order_book_live', '{symbol="ETHUSDT"}')).toBe(1);
    expect(value('gateway_subscribers', '{topic="book"}')).toBe(1);
    expect(value('gateway_subscribers', '{topic="trades"}')).toBe(1);
    expect(value('gateway_rest_weight_used')).toBeGreaterThan(0);
    expect(value('gateway_messages_delivered_total')).toBeGreaterThan(0);
    // the book and trades subscriptions are shared: executed once per event, written coalesced
    expect(value('gateway_shared_executions_total')).toBeGreaterThan(0);
    expect(value('gateway_socket_writes_total')).toBeGreaterThan(0);
    expect(value('gateway_socket_writes_total')).toBeLessThanOrEqual(
      value('gateway_messages_delivered_total'),
    );
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      expect(line).toMatch(/^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?\d+(\.\d+)?$/);
    }
    trades.dispose();
  });

  it('/readyz says 503 while Binance bans the gateway', async () => {
    const s = await stack();
    s.sim.control.failRest(418, 1, 30);
    const r = await post(s, '{ orderBook(symbol: "BTCUSDT", depth: 5) { lastUpdateId } }');
    expect(r.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    const ready = await fetch(s.gw.url.replace('/graphql', '/readyz'));
    expect(ready.status).toBe(503);
  });
});

describe('readiness follows REST reachability', () => {
  it('/readyz is 503 while Binance REST answers 5xx, and 200 again once it answers', async () => {
    const s = await stack();
    const readyz = s.gw.url.replace('/graphql', '/readyz');
    await waitFor(async () => (await fetch(readyz)).status === 200, 5_000, 'ready at start');
    s.sim.control.failRest(503, 1, 0);
    const r = await post(s, '{ ticker(symbol: "BTCUSDT") { lastPrice } }');
    expect(r.errors?.[0]?.extensions?.code).toBe('UPSTREAM_UNAVAILABLE');
    expect((await fetch(readyz)).status).toBe(503);
    expect((await post(s, '{ ticker(symbol: "BTCUSDT") { lastPrice } }')).errors).toBeUndefined();
    expect((await fetch(readyz)).status).toBe(200);
  });
});

describe('operation limits, on every transport', () => {
  const normal = '{ status { upstreamConnections { path } } }';
  const cases: [string, string, string][] = [
    [
      'maxAliases',
      `{ ${Array.from({ length: 31 }, (_, i) => `a${i}: __typename`).join(' ')} }`,
      'maxAliases',
    ],
    ['maxTokens', `{ ${'__typename '.repeat(2_100)} }`, 'maxTokens'],
    [
      'maxCost',
      `{ ${Array.from({ length: 20 }, (_, i) => `s${i}: status { upstreamConnections { id path state streams reconnects ageMs malformedFrames lastFrameAgeMs } orderBooks { symbol state resyncCount lastUpdateId } userStreams { keyHash state } }`).join(' ')} }`,
      'maxCost',
    ],
  ];

  it.each(cases)('%s over HTTP fails with a coded error', async (_name, query, limit) => {
    const s = await stack();
    const r = await post(s, query);
    expect(r.data).toBeUndefined();
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', limit });
    expect((await post(s, normal)).errors).toBeUndefined();
  });

  it('an oversized HTTP request fails with 413 and a coded error', async () => {
    const s = await stack();
    const res = await fetch(s.gw.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: '{ symbols { symbol } }',
        variables: { pad: 'x'.repeat(70_000) },
      }),
    });
    expect(res.status).toBe(413);
    const body = (await res.json()) as { errors: { extensions: Record<string, unknown> }[] };
    expect(body.errors[0]!.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      limit: 'maxOperationBytes',
    });
    expect((await post(s, '{ symbols { symbol } }')).errors).toBeUndefined();
  });

  it('over WebSocket a limit fails that operation only', async () => {
    const s = await stack();
    const client = wsClient(s.wsUrl);
    defer(() => client.dispose());
    const good = collect<Book>(client, BOOK, { s: 'BTCUSDT' });
    await good.next(1, 15_000);
    const bad = collect(
      client,
      `subscription { status { ${Array.from({ length: 31 }, (_, i) => `a${i}: ready`).join(' ')} } }`,
    );
    await waitFor(() => bad.errors.length > 0, 5_000, 'limit error');
    const err = (bad.errors[0] as { extensions?: Record<string, unknown> }[])[0];
    expect(err?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', limit: 'maxAliases' });
    const n = good.values.length;
    await waitFor(() => good.values.length > n + 1, 5_000, 'good continues');
  });
});

describe('fault matrix: books, REST and bursts', () => {
  it('a pu gap resyncs that symbol alone and no view from a broken chain reaches a client', async () => {
    const s = await stack({ tickMs: 10 });
    const client = wsClient(s.wsUrl);
    defer(() => client.dispose());
    const btc = collect<Book>(client, BOOK, { s: 'BTCUSDT' });
    const eth = collect<Book>(client, BOOK, { s: 'ETHUSDT' });
    await btc.next(3, 15_000);
    await eth.next(3, 15_000);
    s.sim.control.skipDepthDiff('BTCUSDT');
    await waitFor(() => s.gw.market.books.get('BTCUSDT')!.resyncCount >= 1, 5_000, 'BTC resync');
    const n = btc.values.length;
    await waitFor(
      () => btc.values.length > n + 2 && s.gw.market.books.get('BTCUSDT')!.live,
      10_000,
      'BTC live again',
    );
    expect(s.gw.market.books.get('ETHUSDT')!.resyncCount).toBe(0);
    // every view is consistent with the simulator's book at that update id: strictly increasing ids
    const ids = btc.values.map((v) => v.orderBook.lastUpdateId);
    for (let i = 1; i < ids.length; i++) expect(ids[i]).toBeGreaterThan(ids[i - 1]!);
    expect(btc.errors).toEqual([]);
  });

  it('REST 429 with Retry-After: the gateway waits as told before calling again', async () => {
    const s = await stack();
    s.sim.control.failRest(429, 1, 2);
    const t0 = Date.now();
    const first = await post(s, '{ orderBook(symbol: "BTCUSDT", depth: 5) { lastUpdateId } }');
    expect(first.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    const calls = s.sim.rest.log.length;
    const second = await post(s, '{ orderBook(symbol: "BTCUSDT", depth: 5) { lastUpdateId } }');
    expect(second.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    expect(s.sim.rest.log.length).toBe(calls);
    await sleep(Math.max(0, 2_100 - (Date.now() - t0)));
    const third = await post(s, '{ orderBook(symbol: "BTCUSDT", depth: 5) { lastUpdateId } }');
    expect(third.errors).toBeUndefined();
  });

  it('REST 418: never retried before the ban ends; a book waiting on a snapshot comes live after it', async () => {
    const s = await stack();
    await post(s, '{ symbols { symbol } }');
    s.sim.control.failRest(418, 1, 3);
    const client = wsClient(s.wsUrl);
    defer(() => client.dispose());
    const t0 = Date.now();
    const book = collect<Book>(client, BOOK, { s: 'SOLUSDT' });
    await book.next(1, 15_000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2_900);
    const depthCalls = s.sim.rest.log.filter((l) => l.path === '/fapi/v1/depth');
    expect(depthCalls.filter((l) => l.status === 418)).toHaveLength(1);
    expect(depthCalls.filter((l) => l.status === 200)).toHaveLength(1);
  });

  it('REST 5xx on a snapshot is retried with backoff', async () => {
    const s = await stack();
    await post(s, '{ symbols { symbol } }');
    s.sim.control.failRest(503, 2, 0);
    const client = wsClient(s.wsUrl);
    defer(() => client.dispose());
    const book = collect<Book>(client, BOOK, { s: 'BTCUSDT' });
    await book.next(1, 15_000);
    const depthCalls = s.sim.rest.log
      .filter((l) => l.path === '/fapi/v1/depth')
      .map((l) => l.status);
    expect(depthCalls.slice(0, 3)).toEqual([503, 503, 200]);
  });

  it('malformed upstream frames are counted and skipped; the connection and other streams go on', async () => {
    const s = await stack({ tickMs: 10 });
    const client = wsClient(s.wsUrl);
    defer(() => client.dispose());
    const book = collect<Book>(client, BOOK, { s: 'BTCUSDT' });
    await book.next(2, 15_000);
    const reconnects = s.gw.streams.status().reconnects;
    s.sim.control.sendMalformedFrame();
    await waitFor(
      () => s.gw.streams.status().connections.some((c) => c.malformedFrames > 0),
      3_000,
      'malformed counted',
    );
    const n = book.values.length;
    await waitFor(() => book.values.length > n + 2, 5_000, 'book continues');
    expect(s.gw.streams.status().reconnects).toBe(reconnects);
    expect(s.gw.market.books.get('BTCUSDT')!.resyncCount).toBe(0);
    expect(s.logs.some((l) => l.includes('malformed'))).toBe(true);
  });

  it('hundreds of subscribes at once never exceed the per-connection message rate', async () => {
    const symbols = Array.from({ length: 120 }, (_, i) => `SYM${i}USDT`);
    const s = await stack({ symbols, tickMs: 100 });
    // 240 subscriptions arriving at once, over three connections (100 is the per-connection cap)
    const clients = [0, 1, 2].map(() => wsClient(s.wsUrl));
    defer(() => Promise.all(clients.map((c) => c.dispose())));
    const subs = symbols.flatMap((sym, i) => [
      collect(clients[i % 3]!, 'subscription($s: String!) { trades(symbol: $s) { price } }', {
        s: sym,
      }),
      collect(clients[i % 3]!, 'subscription($s: String!) { ticker(symbol: $s) { lastPrice } }', {
        s: sym,
      }),
    ]);
    await waitFor(
      () =>
        symbols.every(
          (sym) => s.sim.streams.subscriberCount(`${sym.toLowerCase()}@aggTrade`) === 1,
        ),
      15_000,
      'all subscribed upstream',
    );
    expect(s.sim.streams.stats.closedForRate).toBe(0);
    expect(s.gw.streams.status().controlMessagesSent).toBeLessThan(20);
    expect(subs.every((x) => x.errors.length === 0)).toBe(true);
  }, 30_000);

  it('a resync storm of many symbols stays inside the gateway weight budget: no 429 from Binance', async () => {
    const symbols = Array.from({ length: 30 }, (_, i) => `STORM${i}USDT`);
    const budget = 300;
    const s = await stack({ symbols, tickMs: 50 }, { restWeightBudgetPerMinute: budget });
    const client = wsClient(s.wsUrl);
    defer(() => client.dispose());
    const minute = Math.floor(Date.now() / 60_000);
    const subs = symbols.map((sym) => collect<Book>(client, BOOK, { s: sym }));
    await waitFor(
      () => subs.filter((x) => x.values.length > 0).length >= 12,
      15_000,
      'books within budget',
    );
    await sleep(1_000);
    if (Math.floor(Date.now() / 60_000) === minute) {
      // 20 weight per snapshot: the budget allows at most 15 this minute, the rest wait
      expect(subs.filter((x) => x.values.length > 0).length).toBeLessThanOrEqual(15);
      expect(s.sim.rest.weightUsed).toBeLessThanOrEqual(budget);
    }
    expect(s.sim.rest.log.filter((l) => l.status === 429 || l.status === 418)).toEqual([]);
    expect(s.gw.rest.stats.budgetWaits).toBeGreaterThan(0);
    expect(subs.every((x) => x.errors.length === 0)).toBe(true);
  }, 30_000);
});
