/**
 * Benchmark child: the server under test, alone on its process so its CPU time
 * (`process.cpuUsage`, all threads) is its own.
 *
 * - `gateway`: the gateway as shipped (shared delivery on).
 * - `naive`: the same gateway with `sharedDelivery: false`: every subscriber executes its own
 *   operation through graphql-ws and yoga, which is what a plain yoga + graphql-ws server does.
 * - `plain`: the textbook setup, as yoga's documentation wires graphql-ws: a fresh `createYoga`
 *   with the gateway's schema and services (no plugins of ours) and graphql-ws' own `useServer`
 *   on a `ws` server; every subscriber executes its own operation. It checks that `naive` (which
 *   keeps the gateway's transport and limits) is a fair stand-in for "plain yoga + graphql-ws".
 * - `raw`: a bare `ws` server that, for each upstream aggTrade, builds the gateway's frame once
 *   and broadcasts the same Buffer to every socket of that symbol: the practical limit on this
 *   runtime.
 *
 * Latency side channel: each upstream aggTrade's arrival is stamped with the monotonic clock
 * (`process.hrtime`, CLOCK_MONOTONIC, the same clock in every process on the machine) by its
 * aggregate trade id; clients stamp their receipt of the same id. For the gateway the stamp is
 * taken where the stream manager hands the parsed frame to its listener (JSON parse included).
 */
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { ExecutionArgs } from 'graphql';
import type { OperationResult } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { createYoga } from 'graphql-yoga';
import WebSocket, { WebSocketServer } from 'ws';
import { schema } from '../src/schema/schema.js';
import type { GatewayContext } from '../src/schema/context.js';
import { startGateway, type GatewayHandle } from '../src/gateway.js';
import type { StreamListener } from '../src/binance/stream-manager.js';
import { createLogger } from '../src/log.js';
import { monoMs } from './clock.js';
import { serve } from './ipc.js';

export type ServerKind = 'gateway' | 'naive' | 'plain' | 'raw';

export interface ServerStart {
  kind: ServerKind;
  restUrl: string;
  streamUrl: string;
  /** symbols the raw server follows (the gateway follows what its clients ask) */
  symbols: string[];
}

export interface ServerSample {
  cpuUserUs: number;
  cpuSystemUs: number;
  heapUsed: number;
  rss: number;
  framesSent: number;
  counters: Record<string, number>;
}

/**
 * Stamping is on from the start (the window only resets it): code that first runs when the
 * window opens is cold or gets deoptimized there, and the trades right after the opening paid
 * for it (a first event of 5000 messages at 2-3x the usual latency, enough to move a p99).
 */
const stamps = { on: true, ids: [] as number[], times: [] as number[] };

/**
 * Frames that arrive in one TCP read are parsed and handed on in one synchronous pass: they all
 * get the time the first of them was seen, so a frame that waits behind its predecessors'
 * fan-out counts that wait (for every server alike; the raw server fans out synchronously per
 * frame and the gateway after the pass).
 */
let readStamp: number | undefined;
function arrival(): number {
  if (readStamp === undefined) {
    readStamp = monoMs();
    queueMicrotask(() => {
      readStamp = undefined;
    });
  }
  return readStamp;
}

function stamp(data: unknown): void {
  if (!stamps.on) return;
  const id = (data as { a?: unknown }).a;
  if (typeof id === 'number') {
    stamps.ids.push(id);
    stamps.times.push(arrival());
  }
}

/**
 * Every WebSocket frame this process sends through `ws.send` (all kinds alike); the gateway's
 * shared path frames its messages itself and counts them (`delivered`). Together: the
 * denominator of "CPU per delivered message", read at the same instants as the CPU time.
 */
let framesSent = 0;
type Send = (this: WebSocket, ...args: unknown[]) => void;
const proto = WebSocket.prototype as unknown as { send: Send };
const send = proto.send;
proto.send = function countedSend(this: WebSocket, ...args: unknown[]): void {
  framesSent += 1;
  send.apply(this, args);
};

let gateway: GatewayHandle | undefined;
let raw: { wss: WebSocketServer; upstream: WebSocket } | undefined;
let counters: () => Record<string, number> = () => ({});
let ownFrames: () => number = () => 0;

async function startGatewayKind(start: ServerStart): Promise<string> {
  const logger = createLogger({ level: 'error' });
  gateway = await startGateway(
    {
      port: 0,
      host: '127.0.0.1',
      binanceEnv: 'mainnet',
      restUrl: start.restUrl,
      streamUrl: start.streamUrl,
      logLevel: 'error',
    },
    {
      logger,
      tuning:
        start.kind === 'naive'
          ? { sharedDelivery: false }
          : process.env.BENCH_COALESCE_MS
            ? { sharedDelivery: { coalesceMs: Number(process.env.BENCH_COALESCE_MS) } }
            : {},
    },
  );
  const streams = gateway.streams;
  const subscribe = streams.subscribe.bind(streams);
  streams.subscribe = (stream, listener, options) => {
    const tapped: StreamListener = {
      onData: (data) => {
        stamp(data);
        listener.onData(data);
      },
      ...(listener.onGap && { onGap: (reason: string) => listener.onGap?.(reason) }),
    };
    return subscribe(stream, tapped, options);
  };
  const gw = gateway;
  ownFrames = () => gw.http.deliveryCounters().delivered;
  counters = () => {
    const d = gw.http.deliveryCounters();
    const h = gw.hub.stats();
    return {
      groups: d.groups,
      members: d.members,
      executions: d.executions,
      sharedDelivered: d.delivered,
      conflated: d.conflated,
      dropped: d.dropped + h.dropped,
      hubDelivered: h.delivered,
      hubSubscribers: h.subscribers,
    };
  };
  return gateway.url.replace(/^http/, 'ws');
}

/** What `onSubscribe` hands graphql-ws: yoga's enveloped execute/subscribe ride on rootValue. */
interface Enveloped {
  execute: (args: ExecutionArgs) => OperationResult;
  subscribe: (args: ExecutionArgs) => OperationResult;
}

let plainServer: Server | undefined;

/**
 * The gateway runs for its services (stream manager, books, hub); subscribers talk to a second
 * server on its own port: yoga + graphql-ws `useServer`, as in yoga's documentation.
 */
async function startPlainKind(start: ServerStart): Promise<string> {
  await startGatewayKind({ ...start, kind: 'naive' });
  const gw = gateway!;
  const yoga = createYoga<Record<string, unknown>, GatewayContext>({
    schema,
    context: () => ({
      market: gw.market,
      account: gw.account,
      status: gw.status,
      credentials: undefined,
    }),
    logging: false,
  });
  const server = createServer(yoga);
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint });
  useServer(
    {
      execute: (args) => (args.rootValue as Enveloped).execute(args),
      subscribe: (args) => (args.rootValue as Enveloped).subscribe(args),
      onSubscribe: async (ctx, _id, params) => {
        const {
          schema: s,
          execute,
          subscribe,
          contextFactory,
          parse,
          validate,
        } = yoga.getEnveloped({ ...ctx, req: ctx.extra.request, socket: ctx.extra.socket, params });
        const args: ExecutionArgs = {
          schema: s,
          operationName: params.operationName ?? null,
          document: parse(params.query),
          variableValues: params.variables ?? null,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe } satisfies Enveloped,
        };
        const errors = validate(args.schema, args.document);
        if (errors.length) return errors;
        return args;
      },
    },
    wss,
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  plainServer = server;
  const addr = server.address();
  if (typeof addr === 'string' || addr === null) throw new Error('no address');
  return `ws://127.0.0.1:${addr.port}/graphql`;
}

const TEXT = { binary: false } as const;

async function startRawKind(start: ServerStart): Promise<string> {
  /** per symbol: each socket and how many subscriptions it holds of that symbol */
  const topics = new Map<string, Map<WebSocket, { tcp: Socket; count: number }>>();
  for (const s of start.symbols) topics.set(s, new Map());
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  wss.on('connection', (ws, req) => {
    const symbols = new URL(req.url ?? '/', 'http://x').searchParams.getAll('symbol');
    for (const symbol of symbols) {
      const subs = topics.get(symbol);
      if (!subs) {
        ws.close(4400, 'unknown symbol');
        return;
      }
      const entry = subs.get(ws);
      if (entry) entry.count += 1;
      else subs.set(ws, { tcp: req.socket, count: 1 });
    }
    ws.on('close', () => {
      for (const subs of topics.values()) subs.delete(ws);
    });
    ws.on('error', () => undefined);
  });
  const names = start.symbols.map((s) => `${s.toLowerCase()}@aggTrade`).join('/');
  const upstream = new WebSocket(`${start.streamUrl}/market/stream?streams=${names}`);
  upstream.on('message', (frame) => {
    const msg = JSON.parse(String(frame)) as { data?: Record<string, unknown> };
    const d = msg.data;
    if (!d || d.e !== 'aggTrade') return;
    stamp(d);
    const subs = topics.get(String(d.s));
    if (!subs || subs.size === 0) return;
    // the bytes the gateway would send (its field order), serialized once for everyone
    const buf = Buffer.from(
      JSON.stringify({
        id: '1',
        type: 'next',
        payload: {
          data: {
            trades: {
              aggregateTradeId: d.a,
              price: d.p,
              quantity: d.q,
              side: d.m === true ? 'SELL' : 'BUY',
              tradeTime: d.T,
            },
          },
        },
      }),
    );
    for (const [ws, { tcp, count }] of subs) {
      if (count === 1) {
        ws.send(buf, TEXT);
        continue;
      }
      // several subscriptions on one socket: their frames leave in one writev, as the gateway's
      tcp.cork();
      for (let i = 0; i < count; i++) ws.send(buf, TEXT);
      tcp.uncork();
    }
  });
  await new Promise<void>((resolve, reject) => {
    upstream.once('open', () => resolve());
    upstream.once('error', reject);
  });
  await new Promise<void>((resolve) => {
    if (wss.address()) resolve();
    else wss.once('listening', () => resolve());
  });
  raw = { wss, upstream };
  counters = () => ({});
  const addr = wss.address();
  if (typeof addr === 'string' || addr === null) throw new Error('no address');
  return `ws://127.0.0.1:${addr.port}`;
}

serve({
  async start(arg) {
    const start = arg as ServerStart;
    const url =
      start.kind === 'raw'
        ? await startRawKind(start)
        : start.kind === 'plain'
          ? await startPlainKind(start)
          : await startGatewayKind(start);
    return { url, pid: process.pid };
  },
  sample(): ServerSample {
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    return {
      cpuUserUs: cpu.user,
      cpuSystemUs: cpu.system,
      heapUsed: mem.heapUsed,
      rss: mem.rss,
      framesSent: framesSent + ownFrames(),
      counters: counters(),
    };
  },
  /** Memory after full collections (the process runs with --expose-gc). */
  async memory() {
    for (let i = 0; i < 4; i++) {
      global.gc?.();
      await new Promise((r) => setTimeout(r, 50));
    }
    const mem = process.memoryUsage();
    return { heapUsed: mem.heapUsed, rss: mem.rss };
  },
  stampsStart() {
    if (process.env.BENCH_DEBUG) {
      process.stderr.write(
        `  server: window opens at ${performance.now().toFixed(0)} ms (mono ${monoMs().toFixed(1)})\n`,
      );
    }
    stamps.on = true;
    stamps.ids = [];
    stamps.times = [];
  },
  stampsTake() {
    stamps.on = false;
    const out = { ids: Float64Array.from(stamps.ids), times: Float64Array.from(stamps.times) };
    stamps.ids = [];
    stamps.times = [];
    return out;
  },
  async close() {
    plainServer?.closeAllConnections();
    plainServer?.close();
    if (gateway) await gateway.close();
    if (raw) {
      raw.upstream.terminate();
      for (const c of raw.wss.clients) c.terminate();
      raw.wss.close();
    }
    setImmediate(() => process.exit(0));
  },
});
