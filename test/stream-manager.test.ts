import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import type { UpstreamLogger } from '../src/binance/connection.js';
import {
  StreamManager,
  StreamManagerError,
  type Lease,
  type StreamListener,
  type StreamManagerOptions,
} from '../src/binance/stream-manager.js';
import {
  startSimulator,
  type SimulatorHandle,
  type SimulatorOptions,
} from '../src/simulator/index.js';
import { sleep, waitFor } from './helpers/wait.js';

const open: { sims: SimulatorHandle[]; managers: StreamManager[]; servers: ScriptedServer[] } = {
  sims: [],
  managers: [],
  servers: [],
};

afterEach(async () => {
  for (const m of open.managers.splice(0)) await m.close();
  for (const s of open.sims.splice(0)) await s.close();
  for (const s of open.servers.splice(0)) await s.close();
});

async function sim(options: SimulatorOptions = {}): Promise<SimulatorHandle> {
  const s = await startSimulator({ port: 0, seed: 11, tickMs: 20, ...options });
  open.sims.push(s);
  return s;
}

/** Log lines, kept for the assertion messages of failing tests. */
function memoryLogger(): UpstreamLogger & { lines: string[] } {
  const lines: string[] = [];
  const log =
    (level: string) =>
    (msg: string, fields?: Record<string, unknown>): void => {
      lines.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`);
    };
  return {
    lines,
    debug: () => undefined,
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
  };
}

function manager(
  s: { streamUrl: string },
  options: Partial<StreamManagerOptions> = {},
): StreamManager & { log: string[] } {
  const logger = memoryLogger();
  const m = new StreamManager({
    baseUrl: s.streamUrl,
    lingerMs: 200,
    staleAfterMs: 5_000,
    clientPingIntervalMs: 1_000,
    reconnect: { initialDelayMs: 100, maxDelayMs: 1_000, jitter: 0.5 },
    random: () => 0.5,
    logger,
    ...options,
  });
  open.managers.push(m);
  return Object.assign(m, { log: logger.lines });
}

/** A listener that records what it gets. */
class Recorder implements StreamListener {
  readonly events: Record<string, unknown>[] = [];
  readonly gaps: { reason: string; at: number; afterEvents: number }[] = [];

  onData(data: unknown): void {
    this.events.push(data as Record<string, unknown>);
  }

  onGap(reason: string): void {
    this.gaps.push({ reason, at: Date.now(), afterEvents: this.events.length });
  }
}

/** How many simulator connections hold `name` (acknowledged, whatever its path). */
function upstreamCopies(s: SimulatorHandle, name: string): number {
  return s.streams.listConnections().filter((c) => c.streams.includes(name)).length;
}

describe('StreamManager against the simulator', () => {
  it('opens each Binance stream once for 200 listeners, and unsubscribes after the linger', async () => {
    const s = await sim();
    const m = manager(s, { lingerMs: 300 });
    const names = ['btcusdt@aggTrade', 'btcusdt@depth@100ms', 'ethusdt@bookTicker'];
    const recorders: Recorder[] = [];
    const leases: Lease[] = [];
    for (let i = 0; i < 200; i++) {
      const r = new Recorder();
      recorders.push(r);
      leases.push(m.subscribe(names[i % 3]!, r));
    }
    await waitFor(() => recorders.every((r) => r.events.length > 0), 8_000, 'data for all 200');
    for (const name of names) {
      expect(s.streams.subscriberCount(name)).toBe(1);
      expect(upstreamCopies(s, name)).toBe(1);
    }
    const status = m.status();
    expect(status.upstreamSubscribes).toBe(3);
    expect(status.streams).toBe(3);
    expect(status.connections.map((c) => c.path).sort()).toEqual(['market', 'public']);
    expect(status.controlMessagesSent).toBe(2);

    // the same payload object reaches every listener of a stream: parsed once
    const trades = recorders.filter((_, i) => i % 3 === 0);
    const first = trades[0]!.events[0];
    expect(trades.every((r) => r.events.includes(first!))).toBe(true);

    for (const lease of leases) lease.release();
    for (const lease of leases) lease.release(); // idempotent
    // lingering: still subscribed right after the last release
    for (const name of names) expect(s.streams.subscriberCount(name)).toBe(1);
    await waitFor(
      () => names.every((n) => s.streams.subscriberCount(n) === 0),
      3_000,
      'unsubscribed after linger',
    );
    // no streams left: the connections are closed too
    await waitFor(() => s.streams.listConnections().length === 0, 3_000, 'connections closed');
    expect(m.status().connections).toEqual([]);
    expect(m.status().upstreamUnsubscribes).toBe(3);
    expect(recorders.every((r) => r.gaps.length === 0)).toBe(true);
  });

  it('a listener that comes back within the linger keeps the upstream subscription', async () => {
    const s = await sim();
    const m = manager(s, { lingerMs: 500 });
    const a = new Recorder();
    m.subscribe('btcusdt@aggTrade', a).release();
    await sleep(100);
    const b = new Recorder();
    const lease = m.subscribe('btcusdt@aggTrade', b);
    await sleep(700);
    expect(s.streams.subscriberCount('btcusdt@aggTrade')).toBe(1);
    await waitFor(() => b.events.length > 0, 5_000, 'data after re-attach');
    expect(m.status().upstreamSubscribes).toBe(1);
    expect(m.status().upstreamUnsubscribes).toBe(0);
    lease.release();
  });

  it('batches 500 streams subscribed at once into a few control messages, never hitting 1008', async () => {
    const s = await sim();
    const m = manager(s, { maxStreamsPerConnection: 300 });
    // 100 on /public, 400 on /market; unknown symbols are acknowledged and stay silent
    const names: string[] = ['ethusdt@depth@100ms'];
    for (let i = 0; names.length < 100; i++) names.push(`sym${i}usdt@depth@100ms`);
    names.push('btcusdt@aggTrade');
    for (let i = 0; names.length < 500; i++) names.push(`sym${i}usdt@aggTrade`);
    const btc = new Recorder();
    const eth = new Recorder();
    const silent: StreamListener = { onData: () => undefined };
    for (const name of names) {
      m.subscribe(name, name === 'btcusdt@aggTrade' ? btc : name.startsWith('eth') ? eth : silent);
    }
    await waitFor(
      () => s.streams.listConnections().reduce((n, c) => n + c.streams.length, 0) === 500,
      8_000,
      'all 500 acknowledged upstream',
    );
    await waitFor(() => btc.events.length > 0 && eth.events.length > 0, 5_000, 'data');
    expect(s.streams.stats.closedForRate).toBe(0);
    expect(s.streams.stats.closedForStreams).toBe(0);
    const conns = s.streams.listConnections();
    // 400 market streams over two connections (≤ 300 each), 100 public on one
    expect(conns.filter((c) => c.route === 'market').map((c) => c.streams.length)).toEqual([
      300, 100,
    ]);
    expect(conns.filter((c) => c.route === 'public').map((c) => c.streams.length)).toEqual([100]);
    for (const name of names) expect(upstreamCopies(s, name)).toBe(1);
    const status = m.status();
    // 300 → 200 + 100, 100, 100: four messages for 500 streams
    expect(status.controlMessagesSent).toBe(4);
    expect(status.connections.every((c) => c.streams <= 300)).toBe(true);
    expect(status.reconnects).toBe(0);
  });

  it('routes order-book streams to /public and trades, tickers and mark price to /market', async () => {
    const s = await sim();
    const m = manager(s);
    const publicNames = ['btcusdt@depth@100ms', 'btcusdt@bookTicker', 'ethusdt@depth5@100ms'];
    const marketNames = ['btcusdt@aggTrade', 'btcusdt@ticker', 'btcusdt@markPrice@1s'];
    const recorders = new Map<string, Recorder>();
    for (const name of [...publicNames, ...marketNames]) {
      const r = new Recorder();
      recorders.set(name, r);
      m.subscribe(name, r);
    }
    await waitFor(
      () => [...recorders.values()].every((r) => r.events.length > 0),
      8_000,
      'data on every routed stream',
    );
    const conns = s.streams.listConnections();
    expect(conns).toHaveLength(2);
    const byRoute = new Map(conns.map((c) => [c.route, c]));
    expect(byRoute.get('public')?.streams.sort()).toEqual([...publicNames].sort());
    expect(byRoute.get('market')?.streams.sort()).toEqual([...marketNames].sort());
    expect(byRoute.get('public')?.combined).toBe(true);
    const status = m.status();
    const pub = status.connections.find((c) => c.path === 'public');
    expect(pub?.streamNames.sort()).toEqual([...publicNames].sort());
    expect(pub?.state).toBe('open');
    expect(pub?.lastFrameAgeMs).toBeLessThan(2_000);

    let thrown: unknown;
    try {
      m.subscribe('btcusdt@nonsense', new Recorder());
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(StreamManagerError);
    expect((thrown as StreamManagerError).code).toBe('UNKNOWN_STREAM');
  });

  it('reconnects after a drop, resubscribes, and signals the gap before new data', async () => {
    const s = await sim();
    const m = manager(s);
    const trades = new Recorder();
    const book = new Recorder();
    m.subscribe('btcusdt@aggTrade', trades);
    m.subscribe('btcusdt@depth@100ms', book);
    await waitFor(() => trades.events.length > 0 && book.events.length > 0, 5_000, 'data');
    const opened = s.streams.stats.connectionsOpened;

    expect(s.control.dropConnections()).toBe(2);
    await waitFor(() => trades.gaps.length > 0 && book.gaps.length > 0, 3_000, 'onGap');
    expect(trades.gaps[0]!.reason).toBe('reconnect');
    expect(book.gaps[0]!.reason).toBe('reconnect');
    const before = { trades: trades.events.length, book: book.events.length };
    await waitFor(
      () => trades.events.length > before.trades && book.events.length > before.book,
      5_000,
      'data after reconnect',
    );
    expect(s.streams.subscriberCount('btcusdt@aggTrade')).toBe(1);
    expect(s.streams.subscriberCount('btcusdt@depth@100ms')).toBe(1);
    expect(s.streams.stats.connectionsOpened).toBe(opened + 2);
    const status = m.status();
    expect(status.reconnects).toBe(2);
    expect(status.connections.every((c) => c.reconnects === 1 && c.state === 'open')).toBe(true);
    // one gap per outage, and the depth chain after it is a fresh one
    expect(trades.gaps).toHaveLength(1);
    expect(book.gaps).toHaveLength(1);
  });

  it('detects a silent connection within staleAfterMs and replaces it', async () => {
    const s = await sim();
    const staleAfterMs = 1_000;
    const m = manager(s, { staleAfterMs, clientPingIntervalMs: 300 });
    const trades = new Recorder();
    m.subscribe('btcusdt@aggTrade', trades);
    await waitFor(() => trades.events.length > 0, 5_000, 'data');
    const firstOpenedAt = s.streams.listConnections()[0]!.openedAt;

    const silencedAt = Date.now();
    s.control.silence(true, 1_500);
    await waitFor(() => trades.gaps.length > 0, 3_000, 'dead connection detected');
    const detectedAfterMs = trades.gaps[0]!.at - silencedAt;
    expect(detectedAfterMs).toBeLessThanOrEqual(staleAfterMs + 250);
    expect(detectedAfterMs).toBeGreaterThanOrEqual(staleAfterMs - 300);
    expect(m.log.some((l) => l.includes('"failure":"stale"'))).toBe(true);

    const before = trades.events.length;
    await waitFor(() => trades.events.length > before, 6_000, 'data after silence');
    const conns = s.streams.listConnections();
    expect(conns).toHaveLength(1);
    expect(conns[0]!.openedAt).toBeGreaterThan(firstOpenedAt);
    expect(m.status().reconnects).toBeGreaterThanOrEqual(1);
    expect(s.streams.stats.closedForRate).toBe(0);
  });

  it('counts and skips a malformed frame; the connection and the data go on', async () => {
    const s = await sim();
    const m = manager(s);
    const trades = new Recorder();
    const book = new Recorder();
    m.subscribe('btcusdt@aggTrade', trades);
    m.subscribe('btcusdt@depth@100ms', book);
    await waitFor(() => trades.events.length > 0 && book.events.length > 0, 5_000, 'data');
    const opened = s.streams.stats.connectionsOpened;

    expect(s.control.sendMalformedFrame()).toBe(2);
    await waitFor(
      () => m.status().connections.every((c) => c.malformedFrames === 1),
      3_000,
      'malformed counted',
    );
    const before = { trades: trades.events.length, book: book.events.length };
    await waitFor(
      () => trades.events.length > before.trades && book.events.length > before.book,
      5_000,
      'data after the malformed frame',
    );
    expect(m.status().reconnects).toBe(0);
    expect(s.streams.stats.connectionsOpened).toBe(opened);
    expect(trades.gaps).toEqual([]);
    expect(m.log.some((l) => l.includes('malformed frame skipped'))).toBe(true);
  });

  it('rotates connections before the server cuts them, with no gap, no duplicate and no onGap', async () => {
    const s = await sim({ limits: { maxConnectionLifetimeMs: 3_000 }, highRate: true });
    // proof of overlap: events the simulator published to two sockets at once
    const doubled = new Map<string, number>();
    const publish = s.streams.publish.bind(s.streams);
    s.streams.publish = (stream, payload) => {
      if (s.streams.subscriberCount(stream) > 1)
        doubled.set(stream, (doubled.get(stream) ?? 0) + 1);
      publish(stream, payload);
    };
    const m = manager(s, { rotateAfterMs: 1_500 });
    const trades = new Recorder();
    const book = new Recorder();
    const top = new Recorder();
    m.subscribe('btcusdt@aggTrade', trades);
    m.subscribe('btcusdt@depth@100ms', book);
    m.subscribe('btcusdt@bookTicker', top);
    await waitFor(() => m.status().rotations >= 6, 8_500, 'three rotations per path');

    expect(trades.gaps).toEqual([]);
    expect(book.gaps).toEqual([]);
    expect(top.gaps).toEqual([]);
    expect(m.status().reconnects).toBe(0);
    expect(s.streams.stats.closedForLifetime).toBe(0);
    expect(s.streams.stats.connectionsOpened).toBeGreaterThanOrEqual(8);
    // the new socket was subscribed before the old one left, and duplicates were filtered out
    expect(doubled.get('btcusdt@aggTrade') ?? 0).toBeGreaterThan(0);
    expect(doubled.get('btcusdt@depth@100ms') ?? 0).toBeGreaterThan(0);

    const ids = trades.events.map((e) => e.a as number);
    expect(ids.length).toBeGreaterThan(20);
    for (let i = 1; i < ids.length; i++) expect(ids[i], `aggTrade #${i}`).toBe(ids[i - 1]! + 1);

    const diffs = book.events.map((e) => ({ u: e.u as number, pu: e.pu as number }));
    expect(diffs.length).toBeGreaterThan(20);
    for (let i = 1; i < diffs.length; i++) {
      expect(diffs[i]!.pu, `depth #${i}`).toBe(diffs[i - 1]!.u);
    }

    const tops = top.events.map((e) => e.u as number);
    for (let i = 1; i < tops.length; i++) expect(tops[i]!).toBeGreaterThan(tops[i - 1]!);

    // the old sockets are gone: one per path, plus at most a rotation in progress
    await waitFor(() => s.streams.listConnections().length <= 3, 2_000, 'old sockets closed');
    for (const name of ['btcusdt@aggTrade', 'btcusdt@depth@100ms']) {
      expect(s.streams.subscriberCount(name)).toBeLessThanOrEqual(2);
    }
  });

  it('close() closes every socket and refuses new leases', async () => {
    const s = await sim();
    const m = manager(s);
    const lease = m.subscribe('btcusdt@aggTrade', new Recorder());
    m.subscribe('btcusdt@depth@100ms', new Recorder());
    await waitFor(() => s.streams.listConnections().length === 2, 3_000, 'connected');
    await m.close();
    await waitFor(() => s.streams.listConnections().length === 0, 2_000, 'sockets closed');
    expect(m.status().connections).toEqual([]);
    lease.release();
    expect(() => m.subscribe('btcusdt@aggTrade', new Recorder())).toThrow(
      expect.objectContaining({ code: 'MANAGER_CLOSED' }),
    );
  });

  it('rejects options that would break Binance limits', () => {
    const bad: Partial<StreamManagerOptions>[] = [
      { maxStreamsPerConnection: 1025 },
      { controlMessagesPerSecond: 10 },
      { clientPingIntervalMs: 60_000, staleAfterMs: 60_000 },
      { baseUrl: 'http://example.com' },
    ];
    for (const options of bad) {
      expect(() => new StreamManager({ baseUrl: 'ws://127.0.0.1:1', ...options })).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTIONS' }),
      );
    }
  });
});

/** One socket accepted by the scripted server. */
interface ScriptedConnection {
  ws: WebSocket;
  path: string;
  subscribed: Set<string>;
  closed: boolean;
}

/**
 * A bare Binance-shaped endpoint whose frames the test writes itself, for orderings the
 * simulator cannot force on loopback (a rotation's new socket running ahead of the old one).
 */
class ScriptedServer {
  readonly connections: ScriptedConnection[] = [];
  private constructor(
    private readonly wss: WebSocketServer,
    readonly streamUrl: string,
  ) {}

  static async start(): Promise<ScriptedServer> {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    const server = new ScriptedServer(wss, `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
    wss.on('connection', (ws, req) => {
      const conn: ScriptedConnection = {
        ws,
        path: req.url ?? '',
        subscribed: new Set(),
        closed: false,
      };
      server.connections.push(conn);
      ws.on('message', (raw) => {
        const msg = JSON.parse(raw.toString()) as { method: string; params: string[]; id: number };
        for (const p of msg.params) {
          if (msg.method === 'SUBSCRIBE') conn.subscribed.add(p);
          else conn.subscribed.delete(p);
        }
        ws.send(JSON.stringify({ result: null, id: msg.id }));
      });
      ws.on('close', () => (conn.closed = true));
    });
    open.servers.push(server);
    return server;
  }

  async subscribed(index: number, stream: string): Promise<ScriptedConnection> {
    return waitFor(
      () => {
        const c = this.connections[index];
        return c?.subscribed.has(stream) ? c : undefined;
      },
      5_000,
      `connection ${index} subscribed to ${stream}`,
    );
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

const aggTrade = (a: number): string =>
  JSON.stringify({
    stream: 'btcusdt@aggTrade',
    data: {
      e: 'aggTrade',
      E: 1_000 + a,
      s: 'BTCUSDT',
      a,
      p: '1.0',
      q: '1',
      f: a,
      l: a,
      T: 1_000 + a,
    },
  });

describe('StreamManager against a scripted server', () => {
  it('rotation: a new socket that runs ahead waits until the old one has caught up', async () => {
    const server = await ScriptedServer.start();
    const m = manager(server, { rotateAfterMs: 300 });
    const trades = new Recorder();
    m.subscribe('btcusdt@aggTrade', trades);
    const old = await server.subscribed(0, 'btcusdt@aggTrade');
    expect(old.path).toBe('/market/stream');
    for (let a = 1; a <= 5; a++) old.ws.send(aggTrade(a));
    const next = await server.subscribed(1, 'btcusdt@aggTrade');
    // the new socket is ahead: 8 and 9 arrive before the old socket delivered 6..8
    for (const a of [8, 9]) next.ws.send(aggTrade(a));
    await sleep(50);
    expect(trades.events.map((e) => e.a)).toEqual([1, 2, 3, 4, 5]);
    for (const a of [6, 7, 8, 9, 10]) old.ws.send(aggTrade(a));
    for (const a of [10, 11, 12]) next.ws.send(aggTrade(a));
    await waitFor(() => trades.events.length >= 12, 3_000, '12 trades');
    await waitFor(() => old.closed, 3_000, 'old socket closed');
    await sleep(50);
    expect(trades.events.map((e) => e.a)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(trades.gaps).toEqual([]);
    expect(m.status().rotations).toBe(1);
  });

  it('rotation: a new socket that lags behind has its repeats dropped', async () => {
    const server = await ScriptedServer.start();
    const m = manager(server, { rotateAfterMs: 300 });
    const trades = new Recorder();
    m.subscribe('btcusdt@aggTrade', trades);
    const old = await server.subscribed(0, 'btcusdt@aggTrade');
    const next = await server.subscribed(1, 'btcusdt@aggTrade');
    for (let a = 1; a <= 6; a++) old.ws.send(aggTrade(a));
    await waitFor(() => trades.events.length === 6, 3_000, '6 trades');
    for (let a = 4; a <= 9; a++) next.ws.send(aggTrade(a));
    old.ws.send(aggTrade(7)); // late frame of the old socket, after the switch
    await waitFor(() => old.closed, 3_000, 'old socket closed');
    await sleep(50);
    expect(trades.events.map((e) => e.a)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(trades.gaps).toEqual([]);
  });

  it('filters all-market streams per symbol, and keeps user-data ids exact', async () => {
    const server = await ScriptedServer.start();
    const m = manager(server);
    const tops = new Recorder();
    m.subscribe('!bookTicker', tops);
    const pub = await server.subscribed(0, '!bookTicker');
    expect(pub.path).toBe('/public/stream');
    const top = (s: string, u: number): string =>
      JSON.stringify({ stream: '!bookTicker', data: { e: 'bookTicker', u, s, b: '1', a: '2' } });
    for (const f of [top('BTCUSDT', 1_000), top('ETHUSDT', 50), top('BTCUSDT', 1_001)]) {
      pub.ws.send(f);
    }
    await waitFor(() => tops.events.length === 3, 3_000, 'all three book tickers');

    const listenKey = 'pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1';
    const user = new Recorder();
    m.subscribe(listenKey, user, { userData: true });
    const priv = await server.subscribed(1, listenKey);
    expect(priv.path).toBe('/private/stream');
    priv.ws.send(
      `{"stream":"${listenKey}","data":{"e":"ORDER_TRADE_UPDATE","E":1,"o":{"i":8389765489680951453}}}`,
    );
    await waitFor(() => user.events.length === 1, 3_000, 'user data');
    expect((user.events[0]!.o as { i: unknown }).i).toBe('8389765489680951453');
    const status = m.status().connections.find((c) => c.path === 'private');
    expect(status?.streamNames).toEqual(['pqia…']);
  });
});
