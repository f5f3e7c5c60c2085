import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startStack, type Stack } from './helpers/stack.js';
import { waitFor } from './helpers/wait.js';

/**
 * The gateway's own graphql-ws glue (src/server/ws-transport.ts) keeps what graphql-ws'
 * `useServer` gave: the subprotocol check, the `connection_init` deadline, ws' `maxPayload`, and
 * a keep-alive that finds half-open sockets.
 */

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function stack(...args: Parameters<typeof startStack>): Promise<Stack> {
  const s = await startStack(...args);
  cleanups.push(() => s.close());
  return s;
}

async function open(
  url: string,
  protocols: string[] = ['graphql-transport-ws'],
): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(url, protocols);
  cleanups.push(() => ws.terminate());
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

  it('closes a socket that sends more than maxPayload with 1009', async () => {
    const s = await stack();
    const c = await open(s.wsUrl);
    c.ws.send(JSON.stringify({ type: 'connection_init', payload: { pad: 'x'.repeat(70_000) } }));
    expect((await c.closed).code).toBe(1009);
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
