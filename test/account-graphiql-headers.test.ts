import { describe, expect, it } from 'vitest';
import { autoCleanup } from './helpers/cleanup.js';
import { collect, errorCode, startStack, wsClient } from './helpers/stack.js';

const defer = autoCleanup();

interface Event {
  accountEvents: { __typename: string; orderId?: string; symbol?: string };
}
const EVENTS =
  'subscription { accountEvents { __typename ... on OrderUpdate { orderId symbol orderStatus } } }';

describe('GraphiQL-style credentials (extensions.headers on each subscribe)', () => {
  it('a connection with an empty connection_init reaches the caller account through extensions.headers', async () => {
    const s = await startStack();
    defer(() => s.close());
    const client = wsClient(s.wsUrl);
    defer(() => client.dispose());
    const alice = collect<Event>(client, EVENTS, undefined, {
      headers: { 'X-MBX-APIKEY': 'alice-demo-api-key' },
    });
    const bob = collect<Event>(client, EVENTS, undefined, {
      headers: { 'x-mbx-apikey': 'bob-demo-api-key' },
    });
    const none = collect<Event>(client, EVENTS);
    await new Promise((r) => setTimeout(r, 500));
    const res = s.sim.accounts.placeOrder('alice', {
      symbol: 'BTCUSDT',
      side: 'BUY',
      type: 'MARKET',
      quantity: '0.010',
      newOrderRespType: 'RESULT',
    });
    const orderId = /"orderId":(\d+)/.exec(res.body)![1]!;
    const first = await alice.next(1, 5_000);
    expect(first.accountEvents).toMatchObject({
      __typename: 'OrderUpdate',
      orderId,
      symbol: 'BTCUSDT',
    });
    expect(errorCode(none.errors[0])).toBe('UNAUTHENTICATED');
    await new Promise((r) => setTimeout(r, 300));
    expect(bob.values).toEqual([]);
    expect(bob.errors).toEqual([]);
  });
});
