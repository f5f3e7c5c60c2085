import { afterEach, describe, expect, it } from 'vitest';
import {
  startSimulator,
  type SimulatorHandle,
  type SimulatorOptions,
} from '../src/simulator/index.js';
import { RecordingSocket } from './helpers/ws-client.js';
import { sleep, waitFor } from './helpers/wait.js';

const open: { sims: SimulatorHandle[]; sockets: RecordingSocket[] } = { sims: [], sockets: [] };

async function sim(options: SimulatorOptions = {}): Promise<SimulatorHandle> {
  const s = await startSimulator({ port: 0, seed: 7, tickMs: 20, ...options });
  open.sims.push(s);
  return s;
}

async function connect(
  url: string,
  options: { autoPong?: boolean } = {},
): Promise<RecordingSocket> {
  const s = await RecordingSocket.open(url, options);
  open.sockets.push(s);
  return s;
}

afterEach(async () => {
  for (const s of open.sockets.splice(0)) s.close();
  for (const s of open.sims.splice(0)) await s.close();
});

type Frame = { stream?: string; data?: { e?: string; s?: string }; e?: string; s?: string };
const frames = (s: RecordingSocket): Frame[] => s.json() as Frame[];

describe('simulator streams: paths and framing', () => {
  it('serves raw frames on /ws/<s1>/<s2> and combined {stream,data} on /stream?streams=', async () => {
    const s = await sim();
    const raw = await connect(`${s.streamUrl}/market/ws/btcusdt@aggTrade/ethusdt@aggTrade`);
    const combined = await connect(
      `${s.streamUrl}/public/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker`,
    );
    await waitFor(
      () => frames(raw).some((f) => f.e === 'aggTrade' && f.s === 'ETHUSDT'),
      8_000,
      'raw aggTrade',
    );
    const rawFrame = frames(raw).find((f) => f.e === 'aggTrade');
    expect(rawFrame?.stream).toBeUndefined();
    await waitFor(
      () =>
        frames(combined).some(
          (f) => f.stream === 'btcusdt@depth@100ms' && f.data?.e === 'depthUpdate',
        ),
      5_000,
      'combined depth',
    );
    const streamsSeen = new Set(frames(combined).map((f) => f.stream));
    expect(
      [...streamsSeen].every((n) => n === 'btcusdt@depth@100ms' || n === 'btcusdt@bookTicker'),
    ).toBe(true);
  });

  it('acknowledges but never serves a stream on the wrong path, an upper-case name or an unknown symbol', async () => {
    const s = await sim();
    const pub = await connect(`${s.streamUrl}/public/ws`);
    pub.send({
      method: 'SUBSCRIBE',
      params: ['btcusdt@aggTrade', 'BTCUSDT@depth@100ms', 'xyzusdt@depth@100ms'],
      id: 1,
    });
    expect(await pub.reply(1)).toEqual({ result: null, id: 1 });
    pub.send({ method: 'LIST_SUBSCRIPTIONS', id: 2 });
    expect((await pub.reply(2)).result).toEqual([
      'btcusdt@aggTrade',
      'BTCUSDT@depth@100ms',
      'xyzusdt@depth@100ms',
    ]);
    // a control stream on the right path proves data flows meanwhile
    const market = await connect(`${s.streamUrl}/market/ws/btcusdt@aggTrade`);
    await waitFor(
      () => frames(market).some((f) => f.e === 'aggTrade'),
      8_000,
      'aggTrade on /market',
    );
    await sleep(300);
    expect(frames(pub).filter((f) => f.e !== undefined)).toEqual([]);
  });

  it('the unrouted legacy /ws gets /public data only', async () => {
    const s = await sim();
    const legacy = await connect(`${s.streamUrl}/ws/btcusdt@bookTicker/btcusdt@aggTrade`);
    await waitFor(() => frames(legacy).some((f) => f.e === 'bookTicker'), 5_000, 'bookTicker');
    const market = await connect(`${s.streamUrl}/market/ws/btcusdt@aggTrade`);
    await waitFor(() => frames(market).some((f) => f.e === 'aggTrade'), 8_000, 'aggTrade');
    expect(frames(legacy).some((f) => f.e === 'aggTrade')).toBe(false);
  });
});

describe('simulator streams: live control messages', () => {
  it('SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY and GET_PROPERTY answer as Binance does', async () => {
    const s = await sim();
    const c = await connect(`${s.streamUrl}/public/ws`);
    c.send({ method: 'GET_PROPERTY', params: ['combined'], id: 1 });
    expect(await c.reply(1)).toEqual({ result: false, id: 1 });
    c.send({ method: 'SUBSCRIBE', params: ['btcusdt@bookTicker'], id: 2 });
    expect(await c.reply(2)).toEqual({ result: null, id: 2 });
    await waitFor(() => frames(c).some((f) => f.e === 'bookTicker'), 5_000, 'raw bookTicker');
    c.send({ method: 'SET_PROPERTY', params: ['combined', true], id: 3 });
    expect(await c.reply(3)).toEqual({ result: null, id: 3 });
    const before = c.frames.length;
    await waitFor(
      () =>
        frames(c)
          .slice(before)
          .some((f) => f.stream === 'btcusdt@bookTicker'),
      5_000,
      'combined',
    );
    c.send({ method: 'GET_PROPERTY', params: ['combined'], id: 4 });
    expect(await c.reply(4)).toEqual({ result: true, id: 4 });
    c.send({ method: 'UNSUBSCRIBE', params: ['btcusdt@bookTicker'], id: 5 });
    expect(await c.reply(5)).toEqual({ result: null, id: 5 });
    c.send({ method: 'LIST_SUBSCRIPTIONS', id: 6 });
    expect(await c.reply(6)).toEqual({ result: [], id: 6 });
    await sleep(100);
    const after = c.frames.length;
    await sleep(300);
    expect(
      frames(c)
        .slice(after)
        .filter((f) => f.stream !== undefined),
    ).toEqual([]);
  });

  it('answers malformed control messages with Binance error codes and keeps the connection', async () => {
    const s = await sim();
    const c = await connect(`${s.streamUrl}/market/ws`);
    c.send({ method: 'SET_PROPERTY', params: ['nope', true], id: 1 });
    expect(await c.reply(1)).toEqual({ error: { code: 0, msg: 'Unknown property' }, id: 1 });
    c.send({ method: 'SET_PROPERTY', params: ['combined', 'yes'], id: 2 });
    expect(await c.reply(2)).toEqual({
      error: { code: 1, msg: 'Invalid value type: expected Boolean' },
      id: 2,
    });
    c.send({ method: 'FLY', params: [], id: 3 });
    const unknown = (await c.reply(3)) as { error: { code: number; msg: string } };
    expect(unknown.error.code).toBe(2);
    expect(unknown.error.msg).toMatch(/unknown variant `FLY`/);
    c.send({ method: 'SUBSCRIBE', params: [], id: -1 });
    await waitFor(
      () =>
        c
          .json()
          .some(
            (m) =>
              (m as { error?: { code: number } }).error?.code === 2 &&
              (m as { id?: unknown }).id === null,
          ),
      3_000,
      'id error',
    );
    expect(c.closeCode).toBeUndefined();
  });

  it('invalid JSON gets error 3 and the connection is closed', async () => {
    const s = await sim();
    const c = await connect(`${s.streamUrl}/market/ws`);
    c.send('{"method": SUBSCRIBE');
    await c.closed();
    const err = c.json()[0] as { error: { code: number; msg: string } };
    expect(err.error.code).toBe(3);
    expect(err.error.msg).toMatch(/^Invalid JSON/);
  });

  it('more than 10 client messages in one second closes the connection with 1008', async () => {
    const s = await sim();
    const ok = await connect(`${s.streamUrl}/market/ws`);
    for (let i = 1; i <= 10; i++) ok.send({ method: 'LIST_SUBSCRIPTIONS', id: i });
    await ok.reply(10);
    const c = await connect(`${s.streamUrl}/market/ws`);
    for (let i = 1; i <= 11; i++) c.send({ method: 'LIST_SUBSCRIPTIONS', id: i });
    expect(await c.closed()).toBe(1008);
    expect(c.closeReason).toBe('Too many requests');
    await sleep(200);
    expect(ok.closeCode).toBeUndefined();
  });

  it('the 1025th stream gets error 4 and a 1008 close', async () => {
    const s = await sim();
    const c = await connect(`${s.streamUrl}/market/ws`);
    const names = Array.from({ length: 1024 }, (_, i) => `sym${i}usdt@aggTrade`);
    c.send({ method: 'SUBSCRIBE', params: names.slice(0, 1000), id: 1 });
    expect(await c.reply(1)).toEqual({ result: null, id: 1 });
    c.send({ method: 'SUBSCRIBE', params: names.slice(1000), id: 2 });
    expect(await c.reply(2)).toEqual({ result: null, id: 2 });
    c.send({ method: 'SUBSCRIBE', params: ['btcusdt@aggTrade'], id: 3 });
    expect(await c.reply(3)).toEqual({ error: { code: 4, msg: 'Too many subscriptions' }, id: 3 });
    expect(await c.closed()).toBe(1008);
  });
});

describe('simulator streams: keep-alive and lifetime', () => {
  it('pings at the configured interval and drops a connection that does not pong', async () => {
    const s = await sim({ limits: { pingIntervalMs: 100, pongTimeoutMs: 300 } });
    const good = await connect(`${s.streamUrl}/market/ws`);
    // `ws` answers pings automatically with their payload; this client must not.
    const mute = await connect(`${s.streamUrl}/market/ws`, { autoPong: false });
    await waitFor(() => mute.closeCode, 3_000, 'mute dropped');
    expect(good.pings).toBeGreaterThan(2);
    expect(good.closeCode).toBeUndefined();
  });

  it('closes a connection when its maximum lifetime is reached', async () => {
    const s = await sim({ limits: { maxConnectionLifetimeMs: 400 } });
    const c = await connect(`${s.streamUrl}/public/ws/btcusdt@bookTicker`);
    const opened = Date.now();
    await c.closed(3_000);
    expect(Date.now() - opened).toBeGreaterThanOrEqual(350);
    expect(s.streams.stats.closedForLifetime).toBe(1);
  });
});
