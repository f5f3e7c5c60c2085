import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { autoCleanup } from './helpers/cleanup.js';
import WebSocket from 'ws';
import { collect, wsClient, stacksClosedBy } from './helpers/stack.js';
import { waitFor } from './helpers/wait.js';

/**
 * The gateway's own graphql-ws glue (src/server/ws-transport.ts) keeps what graphql-ws'
 * `useServer` gave: the subprotocol check, the `connection_init` deadline, ws' `maxPayload`, and
 * a keep-alive that finds half-open sockets.
 */

const defer = autoCleanup();

const stack = stacksClosedBy(defer);

async function open(
  url: string,
  protocols: string[] = ['graphql-transport-ws'],
): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(url, protocols);
  defer(() => ws.terminate());
  ws.on('error', () => undefined);
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, closed };
}

describe('WebSocket transport', () => {
  it('closes a socket without connection_init with 4408, and one without the subprotocol with 4406', async () => {
    const s = await stack();
    const silent = await open(s.wsUrl);
    const t0 = Date.now();
    expect(await silent.closed).toEqual({
      code: 4408,
      reason: 'Connection initialisation timeout',
    });
    expect(Date.now() - t0).toBeGreaterThan(2_500);
    const bare = await open(s.wsUrl, []);
    expect(await bare.closed).toEqual({ code: 4406, reason: 'Subprotocol not acceptable' });
  });

  it('closes a socket that sends more than the 1 MiB maxPayload with 1009', async () => {
    const s = await stack();
    const c = await open(s.wsUrl);
    c.ws.send(JSON.stringify({ type: 'connection_init', payload: { pad: 'x'.repeat(1_100_000) } }));
    expect((await c.closed).code).toBe(1009);
  });

  it('an operation over 64 KiB fails alone with BAD_USER_INPUT; the socket stays up', async () => {
    const s = await stack();
    const client = wsClient(s.wsUrl);
    defer(() => client.dispose());
    const good = collect(client, 'subscription { status(intervalMs: 100) { uptimeMs } }');
    await good.next(1);
    const big = collect(client, 'subscription($pad: String) { status { uptimeMs } }', {
      pad: 'x'.repeat(70_000),
    });
    await waitFor(() => big.errors.length > 0, 3_000, 'size error');
    expect((big.errors[0] as { extensions?: unknown }[])[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      limit: 'maxOperationBytes',
    });
    const n = good.values.length;
    await waitFor(() => good.values.length > n, 3_000, 'good continues');
  });

  it('the 101st subscription on one connection fails alone with RATE_LIMITED; completing one frees a slot', async () => {
    const s = await stack();
    const client = wsClient(s.wsUrl);
    defer(() => client.dispose());
    const subs = Array.from({ length: 100 }, () =>
      collect(client, 'subscription { status(intervalMs: 60000) { uptimeMs } }'),
    );
    await Promise.all(subs.map((x) => x.next(1)));
    const extra = collect(client, 'subscription { status(intervalMs: 60000) { uptimeMs } }');
    await waitFor(() => extra.errors.length > 0, 3_000, 'limit error');
    expect((extra.errors[0] as { extensions?: unknown }[])[0]?.extensions).toMatchObject({
      code: 'RATE_LIMITED',
      limit: 'maxSubscriptionsPerConnection',
    });
    subs[0]!.dispose();
    await new Promise((r) => setTimeout(r, 100));
    const again = collect(client, 'subscription { status(intervalMs: 60000) { uptimeMs } }');
    await again.next(1);
    expect(subs.slice(1).every((x) => x.errors.length === 0 && !x.completed)).toBe(true);
  });

  it('terminates a half-open socket that stops answering pings', async () => {
    const s = await stack({}, { wsKeepAliveMs: 150 });
    const live = await open(s.wsUrl);
    const dead = await open(s.wsUrl);
    for (const c of [live, dead]) c.ws.send(JSON.stringify({ type: 'connection_init' }));
    const outlets = (): number => s.gw.http.shared!.outletStats().length;
    await waitFor(() => outlets() === 2, 2_000, 'two sockets');
    // a paused socket reads nothing, so it never sees the ping nor answers it
    (dead.ws as unknown as { _socket: Socket })._socket.pause();
    await waitFor(() => outlets() === 1, 2_000, 'half-open socket terminated');
    expect(live.ws.readyState).toBe(WebSocket.OPEN);
  });
});
