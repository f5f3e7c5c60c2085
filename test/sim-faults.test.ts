import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { autoCleanup } from './helpers/cleanup.js';
import { parseJsonExact } from '../src/binance/json.js';
import { startSimulator, type SimulatorHandle } from '../src/simulator/index.js';
import { RecordingSocket } from './helpers/ws-client.js';
import { sleep, waitFor } from './helpers/wait.js';

const defer = autoCleanup();

async function sim(): Promise<SimulatorHandle> {
  const s = await startSimulator({ port: 0, seed: 5, tickMs: 10 });
  defer(() => s.close());
  return s;
}

async function socket(url: string): Promise<RecordingSocket> {
  const s = await RecordingSocket.open(url);
  defer(() => s.close());
  return s;
}

async function control(
  s: SimulatorHandle,
  action: string,
  body: unknown = {},
): Promise<Record<string, unknown>> {
  const res = await fetch(`${s.restUrl}/_sim/${action}`, {
    method: 'POST',
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

type Diff = { stream: string; data: { U: number; u: number; pu: number } };

describe('simulator faults on demand (HTTP control endpoint)', () => {
  it('drop-connections cuts every stream connection abruptly', async () => {
    const s = await sim();
    const a = await socket(`${s.streamUrl}/public/ws/btcusdt@bookTicker`);
    const b = await socket(`${s.streamUrl}/market/ws/btcusdt@aggTrade`);
    expect((await control(s, 'drop-connections')).dropped).toBe(2);
    expect(await a.closed()).toBe(1006);
    expect(await b.closed()).toBe(1006);
  });

  it('silence stops frames and pongs but keeps sockets open, then recovers', async () => {
    const s = await sim();
    const c = await socket(`${s.streamUrl}/public/ws/btcusdt@bookTicker`);
    await waitFor(() => c.frames.length > 0, 5_000, 'frames');
    await control(s, 'silence', { on: true });
    await sleep(100);
    const frozen = c.frames.length;
    let pong = false;
    c.ws.on('pong', () => (pong = true));
    c.ws.ping('x');
    await sleep(500);
    expect(c.frames.length).toBe(frozen);
    expect(pong).toBe(false);
    expect(c.closeCode).toBeUndefined();
    await control(s, 'silence', { on: false });
    await waitFor(() => c.frames.length > frozen, 5_000, 'frames again');
    c.ws.ping('y');
    await waitFor(() => pong, 2_000, 'pong');
  });

  it('skip-depth-diff breaks the pu chain exactly once for that symbol only', async () => {
    const s = await sim();
    const c = await socket(
      `${s.streamUrl}/public/stream?streams=btcusdt@depth@100ms/ethusdt@depth@100ms`,
    );
    await waitFor(() => c.frames.length > 6, 5_000, 'diffs');
    await control(s, 'skip-depth-diff', { symbol: 'BTCUSDT' });
    await sleep(800);
    const diffs = c.json() as Diff[];
    const breaks = (stream: string): number => {
      const list = diffs.filter((d) => d.stream === stream);
      let n = 0;
      for (let i = 1; i < list.length; i++) if (list[i]!.data.pu !== list[i - 1]!.data.u) n++;
      return n;
    };
    expect(breaks('btcusdt@depth@100ms')).toBe(1);
    expect(breaks('ethusdt@depth@100ms')).toBe(0);
  });

  it('rest-errors answers 429/418/5xx with Retry-After for the next N calls, then recovers', async () => {
    const s = await sim();
    for (const status of [429, 418, 503]) {
      await control(s, 'rest-errors', { status, count: 2, retryAfterSec: 7 });
      for (let i = 0; i < 2; i++) {
        const res = await fetch(`${s.restUrl}/fapi/v1/ping`);
        expect(res.status).toBe(status);
        expect(res.headers.get('retry-after')).toBe('7');
        const body = (await res.json()) as { code: number };
        expect(typeof body.code).toBe('number');
      }
      expect((await fetch(`${s.restUrl}/fapi/v1/ping`)).status).toBe(200);
    }
  });

  it('malformed-frame sends one truncated JSON frame; the connection stays open', async () => {
    const s = await sim();
    const c = await socket(`${s.streamUrl}/public/ws/btcusdt@bookTicker`);
    await control(s, 'malformed-frame');
    await waitFor(
      () =>
        c.frames.some((f) => {
          try {
            JSON.parse(f);
            return false;
          } catch {
            return true;
          }
        }),
      3_000,
      'malformed frame',
    );
    const n = c.frames.length;
    await waitFor(() => c.frames.length > n, 3_000, 'frames after');
    expect(c.closeCode).toBeUndefined();
  });

  it('delay-snapshots answers depth late, other endpoints at once', async () => {
    const s = await sim();
    await control(s, 'delay-snapshots', { ms: 600 });
    const t0 = Date.now();
    await (await fetch(`${s.restUrl}/fapi/v1/depth?symbol=BTCUSDT&limit=5`)).json();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(550);
    const t1 = Date.now();
    await (await fetch(`${s.restUrl}/fapi/v1/time`)).json();
    expect(Date.now() - t1).toBeLessThan(400);
  });

  it('GET /_sim/state describes connections and faults', async () => {
    const s = await sim();
    await socket(`${s.streamUrl}/market/ws/btcusdt@aggTrade`);
    const state = (await (await fetch(`${s.restUrl}/_sim/state`)).json()) as {
      connections: { route: string; streams: string[] }[];
    };
    expect(state.connections).toEqual([
      expect.objectContaining({ route: 'market', streams: ['btcusdt@aggTrade'] }),
    ]);
  });
});

function sign(query: string, secret: string): string {
  return `${query}&signature=${createHmac('sha256', secret).update(query).digest('hex')}`;
}

describe('simulator user data over /private', () => {
  async function listenKey(s: SimulatorHandle, apiKey: string, method = 'POST'): Promise<Response> {
    return fetch(`${s.restUrl}/fapi/v1/listenKey`, { method, headers: { 'X-MBX-APIKEY': apiKey } });
  }

  it('serves each account its own events on all three URL forms, with exact 64-bit order ids', async () => {
    const s = await sim();
    const aliceKey = (
      (await (await listenKey(s, 'alice-demo-api-key')).json()) as { listenKey: string }
    ).listenKey;
    const again = (
      (await (await listenKey(s, 'alice-demo-api-key')).json()) as { listenKey: string }
    ).listenKey;
    expect(again).toBe(aliceKey);
    const bobKey = (
      (await (await listenKey(s, 'bob-demo-api-key')).json()) as { listenKey: string }
    ).listenKey;
    expect(bobKey).not.toBe(aliceKey);

    const query = await socket(`${s.streamUrl}/private/ws?listenKey=${aliceKey}`);
    const path = await socket(`${s.streamUrl}/private/ws/${aliceKey}`);
    const combined = await socket(`${s.streamUrl}/private/stream?listenKey=${aliceKey}`);
    const bob = await socket(`${s.streamUrl}/private/ws?listenKey=${bobKey}`);

    const q = sign(
      `symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.010&newOrderRespType=RESULT&timestamp=${Date.now()}`,
      'alice-demo-api-secret',
    );
    const res = await fetch(`${s.restUrl}/fapi/v1/order?${q}`, {
      method: 'POST',
      headers: { 'X-MBX-APIKEY': 'alice-demo-api-key' },
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    const orderId = /"orderId":(\d+)/.exec(text)![1]!;
    expect(BigInt(orderId) > 2n ** 53n).toBe(true);

    for (const c of [query, path]) {
      await waitFor(
        () => c.frames.some((f) => f.includes('"ACCOUNT_UPDATE"')),
        3_000,
        'account update',
      );
      const types = c.frames.map((f) => (parseJsonExact(f) as { e: string }).e);
      expect(types).toEqual(
        expect.arrayContaining(['ORDER_TRADE_UPDATE', 'TRADE_LITE', 'ACCOUNT_UPDATE']),
      );
      const otu = c.frames.find((f) => f.includes('"ORDER_TRADE_UPDATE"'))!;
      expect(otu).toContain(`"i":${orderId}`);
      expect((parseJsonExact(otu) as { o: { i: string } }).o.i).toBe(orderId);
    }
    await waitFor(
      () => combined.frames.some((f) => f.includes('"ACCOUNT_UPDATE"')),
      3_000,
      'combined',
    );
    const wrapped = combined.json()[0] as { stream: string; data: { e: string } };
    expect(wrapped.stream).toBe(aliceKey);
    await sleep(200);
    expect(bob.frames).toEqual([]);
  });

  it('expire-listen-key sends listenKeyExpired (twice when asked); PUT then answers -1125', async () => {
    const s = await sim();
    const key = ((await (await listenKey(s, 'alice-demo-api-key')).json()) as { listenKey: string })
      .listenKey;
    const c = await socket(`${s.streamUrl}/private/ws?listenKey=${key}`);
    expect((await control(s, 'expire-listen-key', { account: 'alice', twice: true })).expired).toBe(
      true,
    );
    await waitFor(() => c.frames.length >= 2, 3_000, 'two expiries');
    for (const f of c.frames) {
      expect(JSON.parse(f)).toMatchObject({ e: 'listenKeyExpired', listenKey: key });
    }
    const put = await listenKey(s, 'alice-demo-api-key', 'PUT');
    expect(put.status).toBe(400);
    expect(await put.json()).toEqual({ code: -1125, msg: 'This listenKey does not exist.' });
    const fresh = (
      (await (await listenKey(s, 'alice-demo-api-key')).json()) as { listenKey: string }
    ).listenKey;
    expect(fresh).not.toBe(key);
    expect(c.closeCode).toBeUndefined();
  });

  it('rejects a bad API key with -2015 and a bad signature with -1022', async () => {
    const s = await sim();
    const bad = await listenKey(s, 'nobody');
    expect(bad.status).toBe(401);
    expect(((await bad.json()) as { code: number }).code).toBe(-2015);
    const q = sign(`timestamp=${Date.now()}`, 'wrong-secret');
    const res = await fetch(`${s.restUrl}/fapi/v3/balance?${q}`, {
      headers: { 'X-MBX-APIKEY': 'alice-demo-api-key' },
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: number }).code).toBe(-1022);
    const old = sign(`timestamp=${Date.now() - 10_000}`, 'alice-demo-api-secret');
    const late = await fetch(`${s.restUrl}/fapi/v3/balance?${old}`, {
      headers: { 'X-MBX-APIKEY': 'alice-demo-api-key' },
    });
    expect(((await late.json()) as { code: number }).code).toBe(-1021);
  });
});
