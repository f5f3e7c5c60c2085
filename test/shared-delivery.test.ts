import type { Socket } from 'node:net';
import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { autoCleanup } from './helpers/cleanup.js';
import WebSocket from 'ws';
import {
  SLOW_CONSUMER_CLOSE_CODE,
  SLOW_CONSUMER_CLOSE_REASON,
  contextKey,
  groupKey,
  sharePlan,
  type SharedDelivery,
} from '../src/server/shared-subscriptions.js';
import { collect, wsClient, type Stack, stacksClosedBy } from './helpers/stack.js';
import { sleep, waitFor } from './helpers/wait.js';

const ALICE = { apiKey: 'alice-demo-api-key', apiSecret: 'alice-demo-api-secret' };
const BOB = { apiKey: 'bob-demo-api-key', apiSecret: 'bob-demo-api-secret' };

const defer = autoCleanup();

const stack = stacksClosedBy(defer);

function client(s: Stack, params?: Record<string, unknown>): ReturnType<typeof wsClient> {
  const c = wsClient(s.wsUrl, params);
  defer(() => c.dispose());
  return c;
}

function shared(s: Stack): SharedDelivery {
  const layer = s.gw.http.shared;
  if (!layer) throw new Error('shared delivery is off');
  return layer;
}

const TRADES = `subscription($symbol: String!) {
  trades(symbol: $symbol) { aggregateTradeId price quantity side tradeTime }
}`;
const BOOK = `subscription($symbol: String!, $depth: Int!) {
  orderBook(symbol: $symbol, depth: $depth) {
    lastUpdateId bids { price quantity } asks { price quantity }
  }
}`;
const EVENTS = `subscription { accountEvents {
  __typename
  ... on OrderUpdate { eventTime transactionTime symbol orderId clientOrderId side orderType
    executionType orderStatus price quantity averagePrice lastFilledQuantity lastFilledPrice
    cumulativeFilledQuantity tradeId realizedProfit }
  ... on AccountUpdate { eventTime transactionTime reason
    balances { asset walletBalance crossWalletBalance }
    positions { symbol positionSide positionAmount entryPrice unrealizedProfit } }
} }`;

/**
 * A bare graphql-transport-ws client on `ws`, so a test can stop reading its socket
 * (`pause()`), and see close codes and raw frames.
 */
class RawClient {
  readonly frames: string[] = [];
  /** frames that arrived as binary (graphql-transport-ws is text only) */
  binaryFrames = 0;
  closeCode: number | undefined;
  closeReason = '';
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) this.binaryFrames += 1;
      this.frames.push(String(data));
    });
    ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = String(reason);
    });
    ws.on('error', () => undefined);
  }

  static async open(url: string, payload: Record<string, unknown> = {}): Promise<RawClient> {
    const ws = new WebSocket(url, 'graphql-transport-ws');
    const c = new RawClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send(JSON.stringify({ type: 'connection_init', payload }));
    await waitFor(() => c.frames.some((f) => f.includes('connection_ack')), 5_000, 'ack');
    return c;
  }

  subscribe(id: string, query: string, variables?: Record<string, unknown>): void {
    this.ws.send(JSON.stringify({ id, type: 'subscribe', payload: { query, variables } }));
  }

  nextCount(id: string): number {
    const prefix = `{"id":${JSON.stringify(id)},"type":"next"`;
    return this.frames.filter((f) => f.startsWith(prefix)).length;
  }

  /** Stops reading the TCP socket: the kernel buffers fill, then the gateway's. */
  pause(): void {
    (this.ws as unknown as { _socket: Socket })._socket.pause();
  }

  resume(): void {
    (this.ws as unknown as { _socket: Socket })._socket.resume();
  }

  close(): void {
    this.ws.terminate();
  }
}

async function raw(s: Stack, payload?: Record<string, unknown>): Promise<RawClient> {
  const c = await RawClient.open(s.wsUrl, payload);
  defer(() => c.close());
  return c;
}

describe('grouping rules', () => {
  it('shares public operations by document, name and variables; private ones by credentials', () => {
    const doc = parse(TRADES);
    const plan = sharePlan(doc, undefined)!;
    expect(plan).toMatchObject({ scope: 'public', policy: 'drop-oldest', replayLast: false });
    expect(sharePlan(parse(BOOK), undefined)).toMatchObject({ policy: 'latest', replayLast: true });
    const a = groupKey(doc, undefined, { symbol: 'BTCUSDT' }, contextKey(plan, ALICE));
    const b = groupKey(doc, undefined, { symbol: 'BTCUSDT' }, contextKey(plan, BOB));
    expect(a).toBe(b); // public: credentials play no part
    expect(groupKey(doc, undefined, { symbol: 'ETHUSDT' }, '')).not.toBe(a);
    const obj = { b: 1, a: { y: 2, x: 1 } };
    const swapped = { a: { x: 1, y: 2 }, b: 1 };
    expect(groupKey(doc, null, obj, '')).toBe(groupKey(doc, null, swapped, ''));

    const events = parse(EVENTS);
    const priv = sharePlan(events, undefined)!;
    expect(priv).toMatchObject({ scope: 'private', policy: 'disconnect' });
    const ka = contextKey(priv, ALICE);
    expect(ka).not.toBe(contextKey(priv, BOB));
    expect(ka).not.toBe(contextKey(priv, { apiKey: ALICE.apiKey, apiSecret: 'other' }));
    expect(ka).not.toContain(ALICE.apiKey);
    expect(groupKey(events, null, null, ka)).not.toBe(
      groupKey(events, null, null, contextKey(priv, BOB)),
    );
  });

  it('does not share what it cannot prove shareable', () => {
    expect(sharePlan(parse('subscription { status { ready } }'), undefined)).toBeUndefined();
    expect(sharePlan(parse('{ ticker(symbol: "BTCUSDT") { lastPrice } }'), undefined)).toBe(
      undefined,
    );
    expect(
      sharePlan(parse('subscription { trades(symbol: "X") @custom { price } }'), undefined),
    ).toBeUndefined();
    const viaFragment = parse(
      'subscription { ...F } fragment F on Subscription { balances { asset } }',
    );
    expect(sharePlan(viaFragment, undefined)).toMatchObject({ scope: 'private' });
  });
});

describe('shared delivery over real sockets', () => {
  it('two clients of the same operation get identical bytes from one execution per event', async () => {
    const s = await stack({ tickMs: 10, highRate: true });
    const a = await raw(s);
    const b = await raw(s);
    a.subscribe('a1', TRADES, { symbol: 'BTCUSDT' });
    b.subscribe('b-7', TRADES, { symbol: 'BTCUSDT' });
    await waitFor(() => a.nextCount('a1') >= 5 && b.nextCount('b-7') >= 5, 20_000, 'trades');
    const layer = shared(s);
    expect(layer.groupSizes()).toEqual([{ fields: 'trades', members: 2 }]);
    expect(s.gw.hub.subscriberCount('trades:BTCUSDT')).toBe(1);

    const before = layer.stats();
    await waitFor(() => layer.stats().executions >= before.executions + 10, 20_000, 'events');
    const after = layer.stats();
    // every execution was written exactly twice: once per member
    expect(after.delivered - before.delivered).toBe(2 * (after.executions - before.executions));

    // the payloads are byte-identical apart from the id
    const payloads = (c: RawClient, id: string): Map<number, string> =>
      new Map(
        c.frames
          .filter((f) => f.startsWith(`{"id":"${id}","type":"next"`))
          .map((f) => {
            const payload = f.slice(f.indexOf('"payload":') + 10, -1);
            const trade = (
              JSON.parse(payload) as { data: { trades: { aggregateTradeId: number } } }
            ).data.trades;
            return [trade.aggregateTradeId, payload];
          }),
      );
    const pa = payloads(a, 'a1');
    const pb = payloads(b, 'b-7');
    const common = [...pb.keys()].filter((k) => pa.has(k));
    expect(common.length).toBeGreaterThan(5);
    for (const k of common) expect(pb.get(k)).toBe(pa.get(k));

    // the frames are exactly what graphql-ws would send
    const frame = JSON.parse(b.frames.find((f) => f.includes('"b-7"'))!) as Record<string, unknown>;
    expect(Object.keys(frame)).toEqual(['id', 'type', 'payload']);
    expect(frame.type).toBe('next');
    expect(a.binaryFrames + b.binaryFrames).toBe(0);
  });

  it('many subscriptions on one socket: every frame intact and in order, protocol messages between', async () => {
    const s = await stack({ tickMs: 10, highRate: true });
    const c = await raw(s);
    const ids = ['t1', 't2', 't3', 't4', 't5', 't6'];
    for (const id of ids) c.subscribe(id, TRADES, { symbol: 'BTCUSDT' });
    c.subscribe('book', BOOK, { symbol: 'BTCUSDT', depth: 5 });
    await waitFor(() => ids.every((id) => c.nextCount(id) >= 20), 20_000, 'trades on every id');
    // while data flows: an operation that fails alone, one that completes, one more that joins
    c.subscribe('bad', TRADES, { symbol: 'NOPEUSDT' });
    c.ws.send(JSON.stringify({ id: 't6', type: 'complete' }));
    c.subscribe('t7', TRADES, { symbol: 'BTCUSDT' });
    await waitFor(() => c.frames.includes('{"id":"bad","type":"complete"}'), 5_000, 'complete');
    await waitFor(() => c.nextCount('t7') >= 20, 20_000, 'trades on the late id');
    const layer = shared(s);
    const before = layer.stats().executions;
    await waitFor(() => layer.stats().executions >= before + 20, 20_000, 'more events');

    // every frame is one whole JSON message (frames of a batch are built into one buffer)
    const messages = c.frames.map(
      (f) => JSON.parse(f) as { id?: string; type: string; payload?: unknown },
    );
    const tradeIds = new Map<string, number[]>();
    for (const m of messages) {
      if (m.type !== 'next' || !m.id || m.id === 'book' || m.id === 'bad') continue;
      const trade = (m.payload as { data: { trades: { aggregateTradeId: number } } }).data.trades;
      const list = tradeIds.get(m.id) ?? [];
      list.push(trade.aggregateTradeId);
      tradeIds.set(m.id, list);
    }
    // per subscription: strictly increasing ids, no gap, and the same sequence as its neighbours
    for (const [id, list] of tradeIds) {
      for (let i = 1; i < list.length; i++) {
        expect(list[i], `${id} #${i}`).toBe(list[i - 1]! + 1);
      }
    }
    const t1 = tradeIds.get('t1')!;
    for (const id of ['t2', 't3', 't4', 't5']) {
      expect(tradeIds.get(id)!.slice(0, t1.length)).toEqual(t1.slice(0, tradeIds.get(id)!.length));
    }
    // the completed one got nothing after its complete, the late one joins mid-stream
    expect(tradeIds.get('t6')!.length).toBeLessThan(t1.length);
    expect(tradeIds.get('t7')![0]).toBeGreaterThan(t1[0]!);
    // the bad one: its coded error, then its complete, in that order
    const bad = c.frames.filter((f) => f.startsWith('{"id":"bad"'));
    expect(bad).toHaveLength(2);
    expect(bad[0]).toContain('"type":"next"');
    expect(bad[0]).toContain('BAD_USER_INPUT');
    expect(bad[1]).toBe('{"id":"bad","type":"complete"}');
    expect(c.nextCount('book')).toBeGreaterThan(0);
    expect(c.closeCode).toBeUndefined();
  });

  it('a socket costs one write per upstream read, however many subscriptions it holds', async () => {
    const s = await stack({ tickMs: 10, highRate: true });
    const many = await raw(s);
    const one = await raw(s);
    for (let i = 0; i < 10; i++) many.subscribe(`m${i}`, TRADES, { symbol: 'BTCUSDT' });
    one.subscribe('o', TRADES, { symbol: 'BTCUSDT' });
    await waitFor(() => one.nextCount('o') >= 3 && many.nextCount('m9') >= 3, 20_000, 'trades');
    const layer = shared(s);
    const before = layer.stats();
    await waitFor(() => layer.stats().executions >= before.executions + 30, 20_000, 'events');
    const after = layer.stats();
    const executions = after.executions - before.executions;
    const frames = after.delivered - before.delivered;
    const writes = after.socketWrites - before.socketWrites;
    expect(frames).toBe(11 * executions);
    // at most one write per socket per event (fewer when events share an upstream read) ...
    expect(writes).toBeLessThanOrEqual(2 * executions);
    // ... and at least one per socket per batch: never zero, never one per frame
    expect(writes).toBeGreaterThan(0);
    expect(writes).toBeLessThan(frames / 5);
  });

  it('different variables or selections make different groups; a group ends with its last member', async () => {
    const s = await stack();
    const c = client(s);
    const btc = collect(c, TRADES, { symbol: 'BTCUSDT' });
    const eth = collect(c, TRADES, { symbol: 'ETHUSDT' });
    const book5 = collect(c, BOOK, { symbol: 'BTCUSDT', depth: 5 });
    const book10 = collect(c, BOOK, { symbol: 'BTCUSDT', depth: 10 });
    const book5again = collect(c, BOOK, { depth: 5, symbol: 'BTCUSDT' });
    await Promise.all([book5.next(1, 15_000), book10.next(1), book5again.next(1)]);
    const layer = shared(s);
    const sizes = layer
      .groupSizes()
      .map((g) => `${g.fields}:${g.members}`)
      .sort();
    expect(sizes).toEqual(['orderBook:1', 'orderBook:2', 'trades:1', 'trades:1']);
    for (const x of [btc, eth, book5, book10, book5again]) x.dispose();
    await waitFor(() => layer.stats().groups === 0 && layer.stats().members === 0, 5_000, 'empty');
  });

  it('private operations share per credentials only, and never across accounts', async () => {
    const s = await stack();
    const alice1 = client(s, ALICE);
    const alice2 = client(s, ALICE);
    const bob = client(s, BOB);
    const a1 = collect<{ accountEvents: { __typename: string; orderId?: string } }>(alice1, EVENTS);
    const a2 = collect<{ accountEvents: { __typename: string; orderId?: string } }>(alice2, EVENTS);
    const b = collect<{ accountEvents: { __typename: string } }>(bob, EVENTS);
    const layer = shared(s);
    await waitFor(
      () => layer.groupSizes().filter((g) => g.fields === 'accountEvents').length === 2,
      10_000,
      'two private groups',
    );
    await waitFor(
      () => s.gw.account.status().filter((e) => e.state === 'live').length === 2,
      10_000,
      'user streams live',
    );
    const sizes = layer
      .groupSizes()
      .map((g) => g.members)
      .sort();
    expect(sizes).toEqual([1, 2]);
    const res = s.sim.accounts.placeOrder('alice', {
      symbol: 'BTCUSDT',
      side: 'BUY',
      type: 'MARKET',
      quantity: '0.010',
      newOrderRespType: 'RESULT',
    });
    expect(res.status).toBe(200);
    await a1.next(1);
    await a2.next(a1.values.length);
    expect(a2.values).toEqual(a1.values);
    await sleep(300);
    expect(b.values).toEqual([]);
  });

  it('a late joiner gets the current book view at once', async () => {
    const s = await stack({ tickMs: 10 });
    const first = client(s);
    const early = collect<{ orderBook: { lastUpdateId: number } }>(first, BOOK, {
      symbol: 'BTCUSDT',
      depth: 5,
    });
    await early.next(3, 15_000);
    s.sim.market!.stop();
    // wait until the last diff has reached the early subscriber and nothing more comes
    let seen = -1;
    await waitFor(
      async () => {
        const n = early.values.length;
        await sleep(300);
        if (n === early.values.length && n === seen) return true;
        seen = early.values.length;
        return false;
      },
      10_000,
      'quiet book',
    );
    const last = early.values.at(-1)!.orderBook.lastUpdateId;
    const replayedBefore = shared(s).stats().replayed;
    const t0 = Date.now();
    const late = collect<{ orderBook: { lastUpdateId: number } }>(client(s), BOOK, {
      symbol: 'BTCUSDT',
      depth: 5,
    });
    const view = await late.next(1, 2_000);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(view.orderBook.lastUpdateId).toBe(last);
    expect(view).toEqual(early.values.at(-1));
    expect(shared(s).stats().replayed).toBe(replayedBefore + 1);
  });

  it('a client that stops reading costs bounded memory and does not slow the others', async () => {
    const highWater = 64 * 1024;
    const s = await stack(
      { tickMs: 10, highRate: true },
      { sharedDelivery: { sendHighWaterBytes: highWater, pendingCapacity: 50 } },
    );
    const reader = await raw(s);
    const stalled = await raw(s);
    for (const c of [reader, stalled]) {
      c.subscribe('deep', BOOK, { symbol: 'BTCUSDT', depth: 1000 });
      c.subscribe('trades', TRADES, { symbol: 'BTCUSDT' });
    }
    await waitFor(() => reader.nextCount('deep') >= 2 && stalled.nextCount('deep') >= 2, 20_000);
    stalled.pause();
    const layer = shared(s);
    const stalledStats = (): { bufferedBytes: number; pending: number } =>
      layer.outletStats().reduce((a, b) => (b.bufferedBytes > a.bufferedBytes ? b : a));
    // the kernel's buffers fill first, then the gateway's outlet backs up
    await waitFor(
      () => layer.stats().conflated > 0 && layer.stats().dropped > 0,
      30_000,
      'the stalled socket backs up',
    );
    const maxFrame = Math.max(...reader.frames.map((f) => Buffer.byteLength(f)));
    const trades0 = reader.nextCount('trades');
    const books0 = reader.nextCount('deep');
    let peak = 0;
    let peakPending = 0;
    for (let i = 0; i < 20; i++) {
      await sleep(100);
      const st = stalledStats();
      peak = Math.max(peak, st.bufferedBytes);
      peakPending = Math.max(peakPending, st.pending);
    }
    // bounded: the high-water mark plus the frames of one fan-out, and the kept payloads
    expect(peak).toBeLessThan(highWater + 4 * maxFrame);
    expect(peakPending).toBeLessThanOrEqual(50 + 1);
    // the reading client goes on at full rate: every trade, in order, and fresh book views
    expect(reader.nextCount('trades') - trades0).toBeGreaterThan(50);
    expect(reader.nextCount('deep') - books0).toBeGreaterThan(5);
    const ids = reader.frames
      .filter((f) => f.startsWith('{"id":"trades","type":"next"'))
      .map(
        (f) =>
          (JSON.parse(f) as { payload: { data: { trades: { aggregateTradeId: number } } } }).payload
            .data.trades.aggregateTradeId,
      );
    for (let i = 1; i < ids.length; i++) expect(ids[i]).toBe(ids[i - 1]! + 1);
    expect(s.logs.some((l) => l.includes('slow subscriber: dropping the oldest messages'))).toBe(
      true,
    );
    expect(stalled.closeCode).toBeUndefined();
  });

  it(`a subscriber too slow for account data is disconnected with ${SLOW_CONSUMER_CLOSE_CODE}`, async () => {
    const s = await stack(
      {},
      { sharedDelivery: { sendHighWaterBytes: 16 * 1024, pendingCapacity: 20 } },
    );
    const slow = await raw(s, ALICE);
    const fine = client(s, ALICE);
    slow.subscribe('ev', EVENTS);
    const other = collect(fine, EVENTS);
    const layer = shared(s);
    await waitFor(
      () =>
        layer.groupSizes().some((g) => g.fields === 'accountEvents' && g.members === 2) &&
        s.gw.account.status().some((e) => e.state === 'live'),
      10_000,
      'private group with two members',
    );
    slow.pause();
    let side: 'BUY' | 'SELL' = 'BUY';
    for (let i = 0; i < 3_000 && layer.stats().disconnected === 0; i++) {
      const res = s.sim.accounts.placeOrder('alice', {
        symbol: 'BTCUSDT',
        side,
        type: 'MARKET',
        quantity: '0.001',
        newOrderRespType: 'RESULT',
      });
      expect(res.status).toBe(200);
      side = side === 'BUY' ? 'SELL' : 'BUY';
      if (i % 20 === 19) await sleep(5);
    }
    await waitFor(() => layer.stats().disconnected === 1, 10_000, 'slow subscriber disconnected');
    slow.resume();
    await waitFor(() => slow.closeCode, 10_000, 'close frame');
    expect(slow.closeCode).toBe(SLOW_CONSUMER_CLOSE_CODE);
    expect(slow.closeReason).toBe(SLOW_CONSUMER_CLOSE_REASON);
    expect(s.logs.some((l) => l.includes('slow subscriber disconnected'))).toBe(true);
    // the other subscriber of the same account was not touched
    const n = other.values.length;
    s.sim.accounts.placeOrder('alice', {
      symbol: 'BTCUSDT',
      side: 'BUY',
      type: 'MARKET',
      quantity: '0.001',
      newOrderRespType: 'RESULT',
    });
    await other.next(n + 1);
    expect(other.errors).toEqual([]);
  });
});
