import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Accounts, type AccountSpec } from './accounts.js';
import { Market, DEFAULT_SYMBOLS } from './market.js';
import { ReplaySource } from './replay.js';
import { RestServer, type RestFault } from './rest.js';
import { systemClock, type Clock, type MarketDataSource, type SimSymbolSpec } from './types.js';
import { DEFAULT_STREAM_LIMITS, StreamServer, type StreamServerLimits } from './ws-server.js';

/** Everything the simulator can be told at start; every field has a default. */
export interface SimulatorOptions {
  /** TCP port; 0 picks a free one (tests). */
  port?: number;
  host?: string;
  /** Seed of every random choice: the same seed gives the same market. */
  seed?: number;
  /** Symbols to trade: full specs, or names of the built-in ones (BTCUSDT, ETHUSDT, SOLUSDT). */
  symbols?: (SimSymbolSpec | string)[];
  clock?: Clock;
  /** Market step interval. */
  tickMs?: number;
  /** Benchmark mode: many more trades and book changes per second. */
  highRate?: boolean;
  /** Mean taker orders per second per symbol (overrides the `highRate` choice; benchmarks). */
  tradeRatePerSec?: number;
  /** Mean maker actions per second per symbol (overrides the `highRate` choice; benchmarks). */
  makerRatePerSec?: number;
  /** Aggregate trades kept per symbol for `aggTrades`/`trades`/`historicalTrades` (10 000). */
  tradeHistory?: number;
  /** Connection limits; tests shorten the lifetime and ping timings. */
  limits?: Partial<StreamServerLimits>;
  weightLimitPerMinute?: number;
  /** Extra accounts beside the two demo accounts. */
  accounts?: AccountSpec[];
  listenKeyValidityMs?: number;
  /** Demo mode: each account trades on its own every `autoTradeIntervalMs`. */
  autoTrade?: boolean;
  autoTradeIntervalMs?: number;
  /** Replay a recorded capture instead of running the market model. */
  replay?: { dir: string; speed?: number; startDelayMs?: number; autoStart?: boolean };
  /** Start the market clock at once (default true). Tests that drive `market.step()` set false. */
  autoStart?: boolean;
}

const DEFAULTS = {
  port: 4100,
  host: '127.0.0.1',
  seed: 1,
  tickMs: 50,
  weightLimitPerMinute: 2400,
  listenKeyValidityMs: 60 * 60_000,
  autoTradeIntervalMs: 4_000,
} as const;

/** Faults on demand (reference: what Binance really does). Also served over HTTP at `/_sim/`. */
export interface SimulatorControl {
  /** Cuts every stream connection at once (clients see 1006). */
  dropConnections(): number;
  /** Silence: no frames, no pings, no pongs; sockets stay open. `ms` ends it by itself. */
  silence(on: boolean, ms?: number): void;
  /** The next depth diff of the symbol is not sent, so the next event's `pu` breaks the chain. */
  skipDepthDiff(symbol: string): void;
  /** Expires the account's listenKey now (a `listenKeyExpired` event, optionally twice). */
  expireListenKey(account: string, twice?: boolean): boolean;
  /** The next `count` REST calls answer `status` with `Retry-After`. */
  failRest(status: RestFault['status'], count: number, retryAfterSec?: number): void;
  /** Sends one malformed frame on every stream connection. */
  sendMalformedFrame(): number;
  /** Depth snapshots are answered after `ms`. */
  delaySnapshots(ms: number): void;
  /** Starts a replay that waits for its first subscriber. */
  startReplay(): void;
  /** A snapshot of the simulator's state for debugging. */
  state(): object;
}

export interface SimulatorHandle {
  port: number;
  /** REST base URL, e.g. `http://127.0.0.1:4100` */
  restUrl: string;
  /** Stream base URL without a path, e.g. `ws://127.0.0.1:4100`; append `/public`, `/market`, `/private`. */
  streamUrl: string;
  control: SimulatorControl;
  /** The live market model (undefined in replay mode). */
  market: Market | undefined;
  source: MarketDataSource;
  accounts: Accounts;
  streams: StreamServer;
  rest: RestServer;
  close(): Promise<void>;
}

/** Starts the Binance-compatible simulator: REST and streams on one HTTP port. */
export async function startSimulator(options: SimulatorOptions = {}): Promise<SimulatorHandle> {
  const clock = options.clock ?? systemClock;
  const seed = options.seed ?? DEFAULTS.seed;
  const limits: StreamServerLimits = { ...DEFAULT_STREAM_LIMITS, ...options.limits };
  const symbols = resolveSymbols(options.symbols);

  // The stream server is the sink every producer publishes into.
  let replay: ReplaySource | undefined;
  const known: { source?: MarketDataSource } = {};
  const streams = new StreamServer({
    limits,
    clock,
    isKnownSymbol: (s) => known.source?.hasSymbol(s) ?? false,
    onSubscribe: () => replay?.onFirstSubscriber(),
  });

  let market: Market | undefined;
  let source: MarketDataSource;
  if (options.replay) {
    replay = new ReplaySource({
      dir: options.replay.dir,
      sink: streams,
      speed: options.replay.speed ?? 1,
      startDelayMs: options.replay.startDelayMs ?? 250,
      autoStart: options.replay.autoStart ?? true,
      clock,
    });
    source = replay;
  } else {
    market = new Market({
      symbols,
      seed,
      clock,
      sink: streams,
      tickMs: options.tickMs ?? DEFAULTS.tickMs,
      highRate: options.highRate ?? false,
      ...(options.tradeRatePerSec !== undefined && { tradeRatePerSec: options.tradeRatePerSec }),
      ...(options.makerRatePerSec !== undefined && { makerRatePerSec: options.makerRatePerSec }),
      ...(options.tradeHistory !== undefined && { tradeHistory: options.tradeHistory }),
    });
    source = market;
  }
  known.source = source;

  const accounts = new Accounts({
    market: market ?? nullMarketForAccounts(source),
    sink: streams,
    clock,
    seed,
    accounts: options.accounts ?? [],
    listenKeyValidityMs: options.listenKeyValidityMs ?? DEFAULTS.listenKeyValidityMs,
  });

  const rest = new RestServer({
    market: source,
    routes: [accounts],
    clock,
    weightLimitPerMinute: options.weightLimitPerMinute ?? DEFAULTS.weightLimitPerMinute,
    isApiKey: (apiKey) => accounts.specByApiKey(apiKey) !== undefined,
  });

  let silenceTimer: NodeJS.Timeout | undefined;
  const control: SimulatorControl = {
    dropConnections: () => streams.dropAll(),
    silence(on, ms) {
      clearTimeout(silenceTimer);
      streams.setSilent(on);
      if (on && ms !== undefined) silenceTimer = setTimeout(() => streams.setSilent(false), ms);
    },
    skipDepthDiff(symbol) {
      market?.skipNextDiff(symbol.toUpperCase());
    },
    expireListenKey: (account, twice) =>
      accounts.expireListenKey(account, { twice: twice ?? false }),
    failRest(status, count, retryAfterSec = 2) {
      rest.fault = { status, remaining: count, retryAfterSec };
    },
    sendMalformedFrame: () => streams.sendMalformed(),
    delaySnapshots(ms) {
      rest.snapshotDelayMs = ms;
    },
    startReplay() {
      replay?.start();
    },
    state: () => ({
      mode: replay ? 'replay' : 'market',
      silent: streams.silent,
      connections: streams.listConnections(),
      streamStats: streams.stats,
      restWeightUsed: rest.weightUsed,
      restFault: rest.fault ?? null,
      snapshotDelayMs: rest.snapshotDelayMs,
      replay: replay?.progress() ?? null,
      accounts: accounts.accountNames(),
    }),
  };

  const server = createServer((req, res) => {
    if (req.url?.startsWith('/_sim/')) {
      void controlEndpoint(req, res, control, accounts);
      return;
    }
    rest.handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  server.on('upgrade', (req, socket, head) => streams.handleUpgrade(req, socket, head));
  server.keepAliveTimeout = 65_000;

  const port = options.port ?? DEFAULTS.port;
  const host = options.host ?? DEFAULTS.host;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = (server.address() as AddressInfo).port;

  if (options.autoStart ?? true) source.start();
  if (options.autoTrade) {
    accounts.startAutoTrading(options.autoTradeIntervalMs ?? DEFAULTS.autoTradeIntervalMs);
  }

  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  return {
    port: actualPort,
    restUrl: `http://${hostForUrl}:${actualPort}`,
    streamUrl: `ws://${hostForUrl}:${actualPort}`,
    control,
    market,
    source,
    accounts,
    streams,
    rest,
    async close() {
      clearTimeout(silenceTimer);
      source.stop();
      accounts.stop();
      streams.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function resolveSymbols(list: (SimSymbolSpec | string)[] | undefined): SimSymbolSpec[] {
  if (!list) return DEFAULT_SYMBOLS;
  return list.map((s) => {
    if (typeof s !== 'string') return s;
    const known = DEFAULT_SYMBOLS.find((d) => d.symbol === s.toUpperCase());
    if (known) return known;
    const base = s.toUpperCase().replace(/USDT$/, '');
    return {
      symbol: s.toUpperCase(),
      baseAsset: base,
      quoteAsset: 'USDT',
      pricePrecision: 4,
      quantityPrecision: 1,
      tickSize: '0.0001',
      stepSize: '0.1',
      initialPrice: '1.0000',
    };
  });
}

/** In replay mode orders cannot trade: every order is rejected by an empty sweep. */
function nullMarketForAccounts(
  source: MarketDataSource,
): ConstructorParameters<typeof Accounts>[0]['market'] {
  return {
    hasSymbol: (s) => source.hasSymbol(s),
    spec: () => undefined,
    executeTaker: () => [],
    markPrice: (s) => source.markPrice(s),
    symbols: () =>
      source.exchangeInfoSymbols().flatMap((s) => {
        const name = (s as { symbol?: unknown }).symbol;
        return typeof name === 'string' ? [name] : [];
      }),
  };
}

/**
 * `POST /_sim/<action>` with a JSON body, `GET /_sim/state`. For the demo and for debugging:
 * `drop-connections`, `silence {on, ms}`, `skip-depth-diff {symbol}`,
 * `expire-listen-key {account, twice}`, `rest-errors {status, count, retryAfterSec}`,
 * `malformed-frame`, `delay-snapshots {ms}`, `start-replay`, `order {account, ...order params}`.
 */
async function controlEndpoint(
  req: IncomingMessage,
  res: ServerResponse,
  control: SimulatorControl,
  accounts: Accounts,
): Promise<void> {
  const send = (status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const action = (req.url ?? '').replace(/^\/_sim\//, '').replace(/\?.*$/, '');
  if (req.method === 'GET' && action === 'state') return send(200, control.state());
  if (req.method !== 'POST') return send(405, { error: 'use POST /_sim/<action>' });
  let args: Record<string, unknown> = {};
  try {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (text.trim() !== '') args = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return send(400, { error: 'body must be JSON' });
  }
  const str = (k: string): string => (typeof args[k] === 'string' ? (args[k] as string) : '');
  const num = (k: string, d: number): number =>
    typeof args[k] === 'number' ? (args[k] as number) : d;
  switch (action) {
    case 'drop-connections':
      return send(200, { dropped: control.dropConnections() });
    case 'silence':
      control.silence(args.on !== false, typeof args.ms === 'number' ? args.ms : undefined);
      return send(200, { silent: args.on !== false });
    case 'skip-depth-diff':
      control.skipDepthDiff(str('symbol'));
      return send(200, { ok: true });
    case 'expire-listen-key':
      return send(200, { expired: control.expireListenKey(str('account'), args.twice === true) });
    case 'rest-errors': {
      const status = num('status', 429);
      if (![429, 418, 500, 502, 503, 504].includes(status)) {
        return send(400, { error: 'status must be 429, 418, 500, 502, 503 or 504' });
      }
      control.failRest(status as RestFault['status'], num('count', 1), num('retryAfterSec', 2));
      return send(200, { ok: true });
    }
    case 'malformed-frame':
      return send(200, { sent: control.sendMalformedFrame() });
    case 'delay-snapshots':
      control.delaySnapshots(num('ms', 0));
      return send(200, { ok: true });
    case 'start-replay':
      control.startReplay();
      return send(200, { ok: true });
    case 'order': {
      const { account, ...params } = args;
      const answer = accounts.placeOrder(String(account), {
        newOrderRespType: 'RESULT',
        ...Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)])),
      });
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.body);
      return;
    }
    default:
      return send(404, { error: `unknown action ${action}` });
  }
}
