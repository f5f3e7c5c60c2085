import { afterEach, describe, expect, it } from 'vitest';
import type { Client } from 'graphql-ws';
import { credentialHash, type AccountStreamStatus } from '../src/account/account-service.js';
import { parseJsonExact } from '../src/binance/json.js';
import type { GatewayTuning } from '../src/gateway.js';
import { collect, startStack, wsClient, type Collected, type Stack } from './helpers/stack.js';
import { sleep, waitFor } from './helpers/wait.js';

/**
 * The listenKey incidents of reference §6 and pitfall 5, over real sockets: expiry (single and
 * doubled), a key that vanished under the keepalive (-1125), a dropped connection. Each must
 * cost exactly one new key (or none), lose no event the simulator emitted while the gateway
 * had a key, and leave balances and positions reconciled with Binance.
 */

const ALICE = { apiKey: 'alice-demo-api-key', apiSecret: 'alice-demo-api-secret' };

const EVENTS = `subscription { accountEvents {
  __typename
  ... on OrderUpdate { orderId executionType orderStatus tradeId }
  ... on AccountUpdate { reason balances { asset walletBalance } positions { symbol positionAmount } }
} }`;
const BALANCES = `subscription { balances { asset walletBalance crossWalletBalance } }`;
const POSITIONS = `subscription { positions { symbol positionSide positionAmount } }`;

interface EventsData {
  accountEvents: {
    __typename: string;
    orderId?: string;
    executionType?: string;
    orderStatus?: string;
    tradeId?: string;
  };
}
type BalancesData = { balances: { asset: string; walletBalance: string }[] };
type PositionsData = { positions: { symbol: string; positionAmount: string }[] };

let stack: Stack | undefined;
const clients: Client[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c.dispose();
  await stack?.close();
  stack = undefined;
});

interface Subscribed {
  s: Stack;
  events: Collected<EventsData>;
  balances: Collected<BalancesData>;
  positions: Collected<PositionsData>;
  /** emittedEvents('alice').length when the subscriptions were live */
  from: number;
}

async function subscribeAlice(tuning: GatewayTuning = {}): Promise<Subscribed> {
  const s = await startStack({}, tuning);
  stack = s;
  const c = wsClient(s.wsUrl, ALICE);
  clients.push(c);
  const events = collect<EventsData>(c, EVENTS);
  const balances = collect<BalancesData>(c, BALANCES);
  const positions = collect<PositionsData>(c, POSITIONS);
  await balances.next(1);
  await positions.next(1);
  await waitFor(() => statusOf(s)?.subscribers === 3, 5_000, 'three subscriptions');
  await waitFor(() => statusOf(s)?.state === 'live', 5_000, 'live');
  return { s, events, balances, positions, from: s.sim.accounts.emittedEvents('alice').length };
}

function statusOf(s: Stack): AccountStreamStatus | undefined {
  const hash = credentialHash(ALICE.apiKey).slice(0, 12);
  return s.gw.account.status().find((e) => e.keyHash === hash);
}

const restCalls = (s: Stack, method: string, path: string): number =>
  s.sim.rest.log.filter((r) => r.method === method && r.path === path).length;

const privateConnections = (s: Stack): number =>
  s.sim.streams.listConnections().filter((c) => c.route === 'private').length;

function order(s: Stack, side: 'BUY' | 'SELL', quantity = '0.010'): string {
  const res = s.sim.accounts.placeOrder('alice', {
    symbol: 'BTCUSDT',
    side,
    type: 'MARKET',
    quantity,
    newOrderRespType: 'RESULT',
  });
  expect(res.status).toBe(200);
  return /"orderId":(\d+)/.exec(String(res.body))?.[1] ?? '';
}

/** Every event the simulator emitted since `from`, as comparable keys (orders by id+status). */
function emittedKeys(s: Stack, from: number): string[] {
  return s.sim.accounts
    .emittedEvents('alice')
    .slice(from)
    .flatMap((text) => {
      const ev = parseJsonExact(text) as { e: string; o?: Record<string, unknown> };
      if (ev.e === 'ORDER_TRADE_UPDATE' && ev.o) {
        return [`order|${String(ev.o.i)}|${String(ev.o.x)}|${String(ev.o.X)}|${String(ev.o.t)}`];
      }
      return ev.e === 'ACCOUNT_UPDATE' ? ['account'] : [];
    });
}

function receivedKeys(events: Collected<EventsData>): string[] {
  return events.values.map(({ accountEvents: e }) =>
    e.__typename === 'OrderUpdate'
      ? `order|${e.orderId}|${e.executionType}|${e.orderStatus}|${e.tradeId}`
      : 'account',
  );
}

/** Waits until the client has every event emitted since `from`, then compares them exactly. */
async function expectNoLoss(sub: Subscribed): Promise<void> {
  const expected = emittedKeys(sub.s, sub.from);
  await waitFor(
    () => receivedKeys(sub.events).length >= expected.length,
    3_000,
    `${expected.length} events`,
  );
  await sleep(100);
  expect(receivedKeys(sub.events)).toEqual(expected);
  expect(sub.events.errors).toEqual([]);
}

/** Alice's USDT wallet balance as the simulator reports it over signed REST. */
async function simWallet(s: Stack): Promise<string | undefined> {
  const rows = (await s.gw.rest.signed('GET', '/fapi/v3/balance', {}, ALICE, 5)) as {
    asset: string;
    balance: string;
  }[];
  return rows.find((r) => r.asset === 'USDT')?.balance;
}

describe('listenKey incidents', () => {
  for (const twice of [false, true]) {
    it(`survives listenKeyExpired${twice ? ' sent twice' : ''} with exactly one new key and no lost event`, async () => {
      const sub = await subscribeAlice();
      const { s } = sub;
      order(s, 'BUY');
      order(s, 'BUY');
      await expectNoLoss(sub);
      const balanceGets = restCalls(s, 'GET', '/fapi/v3/balance');
      const balancesSeen = sub.balances.values.length;

      expect(s.sim.control.expireListenKey('alice', twice)).toBe(true);
      // placed while alice has no key: Binance loses these events, the snapshot must not
      order(s, 'SELL', '0.020');
      await waitFor(
        () => statusOf(s)?.listenKeyRenewals === 1 && statusOf(s)?.state === 'live',
        5_000,
        'one renewal',
      );
      // reconciled from the signed snapshot: the position the lost events closed is gone
      await waitFor(
        () => sub.positions.values.at(-1)?.positions.length === 0,
        3_000,
        'positions reconciled',
      );
      await waitFor(() => sub.balances.values.length > balancesSeen, 3_000, 'balances');
      expect(restCalls(s, 'GET', '/fapi/v3/balance')).toBeGreaterThan(balanceGets);

      order(s, 'BUY');
      order(s, 'SELL');
      await expectNoLoss(sub);
      await sleep(300);
      expect(statusOf(s)?.listenKeyRenewals).toBe(1);
      expect(restCalls(s, 'POST', '/fapi/v1/listenKey')).toBe(2);
      expect(restCalls(s, 'DELETE', '/fapi/v1/listenKey')).toBe(0);
      expect(privateConnections(s)).toBe(1);
      expect(sub.balances.values.at(-1)!.balances[0]!.walletBalance).toBe(await simWallet(s));
    });
  }

  it('obtains one new key when the keepalive answers -1125', async () => {
    const sub = await subscribeAlice({ listenKeyKeepaliveMs: 300 });
    const { s } = sub;
    order(s, 'BUY');
    await expectNoLoss(sub);
    await waitFor(() => restCalls(s, 'PUT', '/fapi/v1/listenKey') >= 1, 3_000, 'a keepalive');
    expect(statusOf(s)?.listenKeyRenewals).toBe(0);

    // another program of alice's deletes the shared key: the next PUT answers -1125
    const res = await fetch(`${s.sim.restUrl}/fapi/v1/listenKey`, {
      method: 'DELETE',
      headers: { 'X-MBX-APIKEY': ALICE.apiKey },
    });
    expect(res.status).toBe(200);
    await waitFor(
      () => statusOf(s)?.listenKeyRenewals === 1 && statusOf(s)?.state === 'live',
      5_000,
      'renewal after -1125',
    );
    expect(
      s.sim.rest.log.some(
        (r) => r.method === 'PUT' && r.path === '/fapi/v1/listenKey' && r.status === 400,
      ),
    ).toBe(true);

    order(s, 'SELL');
    order(s, 'BUY');
    await expectNoLoss(sub);
    await sleep(700); // two more keepalives on the new key: all fine, no further key
    expect(statusOf(s)?.listenKeyRenewals).toBe(1);
    expect(restCalls(s, 'POST', '/fapi/v1/listenKey')).toBe(2);
    expect(privateConnections(s)).toBe(1);
  });

  it('reconnects a dropped connection with the same key and reconciles', async () => {
    const sub = await subscribeAlice();
    const { s } = sub;
    order(s, 'BUY');
    await expectNoLoss(sub);
    const balanceGets = restCalls(s, 'GET', '/fapi/v3/balance');

    s.sim.control.dropConnections();
    await waitFor(
      () => statusOf(s)?.reconnects === 1 && statusOf(s)?.state === 'live',
      5_000,
      'reconnected',
    );
    await waitFor(
      () => restCalls(s, 'GET', '/fapi/v3/balance') > balanceGets,
      3_000,
      'snapshot after reconnect',
    );
    order(s, 'SELL');
    await expectNoLoss(sub);
    expect(statusOf(s)?.listenKeyRenewals).toBe(0);
    expect(restCalls(s, 'POST', '/fapi/v1/listenKey')).toBe(1);
    expect(privateConnections(s)).toBe(1);
  });
});
