import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { collect, startStack, wsClient, type Stack } from './helpers/stack.js';
import { waitFor } from './helpers/wait.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

let s: Stack;
beforeAll(async () => {
  s = await startStack({ tickMs: 20 }, { lingerMs: 1_000 });
});
afterAll(async () => {
  await s.close();
});

const OPERATIONS = [
  'subscription($s: String!) { orderBook(symbol: $s, depth: 5) { lastUpdateId } }',
  'subscription($s: String!) { trades(symbol: $s) { price } }',
  'subscription($s: String!) { ticker(symbol: $s) { lastPrice } }',
];
const SYMBOLS = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'];

/** A raw graphql-transport-ws client that subscribes and then drops its TCP connection. */
async function abruptClient(url: string, n: number): Promise<void> {
  const ws = new WebSocket(url, 'graphql-transport-ws');
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ type: 'connection_init' }));
  await new Promise<void>((resolve) => ws.once('message', () => resolve()));
  for (let i = 0; i < n; i++) {
    ws.send(
      JSON.stringify({
        id: String(i),
        type: 'subscribe',
        payload: { query: OPERATIONS[i % 3], variables: { s: SYMBOLS[i % 3] } },
      }),
    );
  }
  await new Promise<void>((resolve) => ws.once('message', () => resolve()));
  ws.terminate();
}

function upstreamStreams(): number {
  return s.gw.streams.status().streams;
}

async function drained(): Promise<void> {
  await waitFor(
    () =>
      s.gw.hub.stats().topics === 0 &&
      upstreamStreams() === 0 &&
      s.gw.hub.stats().subscribers === 0,
    15_000,
    'no topics and no upstream streams',
  );
  for (const sym of SYMBOLS) {
    const l = sym.toLowerCase();
    await waitFor(
      () =>
        s.sim.streams.subscriberCount(`${l}@depth@100ms`) +
          s.sim.streams.subscriberCount(`${l}@aggTrade`) +
          s.sim.streams.subscriberCount(`${l}@ticker`) ===
        0,
      15_000,
      `simulator unsubscribed ${sym}`,
    );
  }
}

async function cycles(count: number): Promise<void> {
  const clients = Array.from({ length: 25 }, () => wsClient(s.wsUrl));
  for (let i = 0; i < count; i += clients.length) {
    const batch = clients.map((c, j) => {
      const k = i + j;
      return collect(c, OPERATIONS[k % 3]!, { s: SYMBOLS[Math.floor(k / 3) % 3] });
    });
    // books and tickers leave after their first value (immediate on a warm topic), trades at once
    await Promise.all(
      batch.map(async (sub, j) => {
        if ((i + j) % 3 !== 1) await sub.next(1, 15_000);
        sub.dispose();
      }),
    );
  }
  await Promise.all(clients.map((c) => c.dispose()));
}

describe('no leak', () => {
  it('thousands of subscribe/unsubscribe cycles and abrupt disconnects leave zero upstream streams and the heap near its baseline', async () => {
    await cycles(60);
    await abruptClient(s.wsUrl, 6);
    await drained();
    gc();
    const baseline = process.memoryUsage().heapUsed;

    await cycles(2_000);
    for (let i = 0; i < 50; i++) await abruptClient(s.wsUrl, 6);
    await drained();
    gc();
    gc();
    const after = process.memoryUsage().heapUsed;
    const growthMb = (after - baseline) / 1024 / 1024;
    process.stdout.write(
      `heap baseline ${(baseline / 1e6).toFixed(1)} MB, after ${(after / 1e6).toFixed(1)} MB\n`,
    );
    expect(growthMb).toBeLessThan(15);
    expect(s.gw.market.books.size).toBe(0);
  }, 120_000);
});
