import { describe, expect, it } from 'vitest';
import { autoCleanup } from './helpers/cleanup.js';
import { BookSync, type DepthDiff, type DepthSnapshot } from '../src/binance/book-sync.js';
import { CAPTURES, captureDir, oracle } from './helpers/fixtures.js';
import { startSimulator, type SimulatorHandle } from '../src/simulator/index.js';
import { RecordingSocket } from './helpers/ws-client.js';
import { waitFor } from './helpers/wait.js';

const defer = autoCleanup();

/** Follows one symbol over a real socket with the project's Binance-rules book. */
function follow(
  sim: SimulatorHandle,
  socket: RecordingSocket,
  symbols: string[],
): Map<string, BookSync> {
  const syncs = new Map<string, BookSync>();
  for (const symbol of symbols) {
    syncs.set(
      symbol,
      new BookSync({
        symbol,
        fetchSnapshot: async (s) => {
          const res = await fetch(`${sim.restUrl}/fapi/v1/depth?symbol=${s}&limit=1000`);
          return (await res.json()) as DepthSnapshot;
        },
        minFetchIntervalMs: 0,
      }),
    );
  }
  socket.ws.on('message', (data) => {
    const frame = JSON.parse(data.toString()) as {
      stream?: string;
      data?: DepthDiff & { s: string };
    };
    if (!frame.stream?.includes('@depth') || !frame.data) return;
    syncs.get(frame.data.s)?.onDiff(frame.data);
  });
  defer(() => {
    for (const s of syncs.values()) s.close();
  });
  return syncs;
}

const norm = (levels: readonly (readonly [string, string])[]): string[] =>
  levels.map(([p, q]) => `${Number(p)}@${Number(q)}`);

describe('simulator: REST snapshot and diff stream agree', () => {
  it.each(['@depth@100ms', '@depth', '@depth@500ms'])(
    'a client following Binance rules on %s ends with exactly the simulator book',
    async (speed) => {
      const sim = await startSimulator({ port: 0, seed: 21, tickMs: 10 });
      defer(() => sim.close());
      const socket = await RecordingSocket.open(
        `${sim.streamUrl}/public/stream?streams=btcusdt${speed}/ethusdt${speed}`,
      );
      defer(() => socket.close());
      const syncs = follow(sim, socket, ['BTCUSDT', 'ETHUSDT']);
      await waitFor(() => [...syncs.values()].every((s) => s.live), 10_000, 'books live');
      // let the market run with the books live, then freeze it and let the last window arrive
      await new Promise((r) => setTimeout(r, 1_600));
      sim.market!.stop();
      for (const [symbol, sync] of syncs) {
        const truth = sim.market!.bookForTest(symbol);
        await waitFor(() => sync.lastUpdateId >= truth.lastUpdateId, 5_000, `${symbol} caught up`);
        expect(sync.lastUpdateId).toBe(truth.lastUpdateId);
        expect(sync.resyncCount).toBe(0);
        const bids = sync.book.top('bid', 5000).map((l) => [l.price, l.quantity] as const);
        const asks = sync.book.top('ask', 5000).map((l) => [l.price, l.quantity] as const);
        expect(norm(bids)).toEqual(norm(truth.bids));
        expect(norm(asks)).toEqual(norm(truth.asks));
        expect(truth.bids.length).toBeGreaterThanOrEqual(1000);
        expect(sync.appliedEvents).toBeGreaterThan(3);
      }
    },
  );
});

describe('simulator replay of real captures', () => {
  it.each(CAPTURES)(
    'replays capture %s over sockets and the project book reaches the oracle for every symbol',
    async (capture) => {
      const dir = captureDir(capture);
      const sim = await startSimulator({ port: 0, replay: { dir, speed: 20, startDelayMs: 100 } });
      defer(() => sim.close());
      const expected = oracle.filter((o) => o.capture === capture);
      const streams = expected.map((o) => `${o.symbol.toLowerCase()}@depth@100ms`).join('/');
      const socket = await RecordingSocket.open(
        `${sim.streamUrl}/public/stream?streams=${streams}`,
      );
      defer(() => socket.close());
      const syncs = follow(
        sim,
        socket,
        expected.map((o) => o.symbol),
      );
      for (const o of expected) {
        const sync = syncs.get(o.symbol)!;
        await waitFor(() => sync.lastUpdateId >= o.finalUpdateId, 20_000, `${o.symbol} final`);
        expect(sync.lastUpdateId).toBe(o.finalUpdateId);
        expect(sync.resyncCount).toBe(0);
        const [bp, bq] = sync.book.bestBid()!;
        const [ap, aq] = sync.book.bestAsk()!;
        expect([Number(bp), Number(bq)]).toEqual(o.bestBid.map(Number));
        expect([Number(ap), Number(aq)]).toEqual(o.bestAsk.map(Number));
      }
      // /market streams of the capture are served on /market only
      const info = (await (await fetch(`${sim.restUrl}/fapi/v1/exchangeInfo`)).json()) as {
        symbols: { symbol: string }[];
      };
      expect(info.symbols.map((s) => s.symbol)).toEqual(
        expect.arrayContaining(expected.map((o) => o.symbol)),
      );
    },
    30_000,
  );
});
