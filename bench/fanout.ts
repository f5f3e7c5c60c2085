/**
 * The fan-out benchmark: one scenario = one simulator process, one server process (the
 * gateway, the naive yoga + graphql-ws setup, or the raw `ws` broadcast), and client processes
 * holding the subscribers, all over loopback. The server runs alone on its CPU (taskset) and
 * its CPU time is read from inside it (`process.cpuUsage`, every thread), so "per core" means
 * delivered messages per second of the server's own CPU time.
 */
import { Child } from './ipc.js';
import type { ClientReport, OpenPlan } from './client-process.js';
import type { ServerKind, ServerSample } from './server-process.js';

/** Where processes run: the server alone on `server`, everything else on `others`. */
export interface CpuLayout {
  server: string | undefined;
  others: string | undefined;
  clientProcesses: number;
}

export interface FanoutSpec {
  kind: ServerKind;
  subscribers: number;
  topics: number;
  /** subscriptions per WebSocket: 1 (each subscriber its own socket) or more (multiplexed) */
  subsPerSocket: number;
  /** mean aggTrades per second per symbol offered by the simulator */
  tradeRatePerSec: number;
  warmupMs: number;
  measureMs: number;
}

export interface FanoutResult extends FanoutSpec {
  /** messages the clients received per second (each over its own window) */
  deliveredPerSec: number;
  /** frames the server wrote per second (its own window, same instants as its CPU time) */
  sentPerSec: number;
  /** server CPU time / wall time (1 = one full core) */
  serverCpu: number;
  /** server CPU time per frame it wrote */
  cpuUsPerMessage: number;
  /** delivered messages per second of server CPU time: the per-core capacity */
  messagesPerCpuSecond: number;
  p50Ms: number;
  p99Ms: number;
  latencySamples: number;
  /** client processes' CPU time / wall time, summed (to spot a client-bound run) */
  clientCpu: number;
  dropped: number;
  errors: number;
  /** GraphQL executions per delivered message (gateway only) */
  executionsPerMessage: number | undefined;
  /**
   * Upstream trades that reached the server in one TCP read: mean, and the burst size the
   * 99th-percentile trade arrived in (a trade at the end of a burst waits for the fan-out of
   * those before it, for every server alike).
   */
  tradesPerReadMean: number;
  tradesPerReadP99: number;
  /** when the row is the median of several runs: each run's messages per CPU-second */
  runsMessagesPerCpuSecond?: number[];
}

export const TRADES_QUERY =
  'subscription($symbol: String!) { trades(symbol: $symbol) { aggregateTradeId price quantity side tradeTime } }';
export const BOOK_QUERY =
  'subscription($symbol: String!) { orderBook(symbol: $symbol, depth: 20) { lastUpdateId bids { price quantity } asks { price quantity } } }';

/** Symbol names for `n` topics: the three built-in ones, then generated ones. */
export function symbolsFor(n: number): string[] {
  const base = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'];
  const out = base.slice(0, n);
  for (let i = out.length; i < n; i++) out.push(`B${String(i).padStart(3, '0')}USDT`);
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Simulator, server under test and clients for one run; always torn down. */
export async function withStack<T>(
  layout: CpuLayout,
  kind: ServerKind,
  sim: Record<string, unknown>,
  symbols: string[],
  body: (s: { server: Child; url: string; clients: Child[] }) => Promise<T>,
): Promise<T> {
  const children: Child[] = [];
  try {
    const simulator = Child.start('./sim-process.ts', 'simulator', layout.others);
    children.push(simulator);
    const urls = await simulator.call<{ restUrl: string; streamUrl: string }>('start', {
      seed: 7,
      autoTrade: false,
      symbols,
      ...sim,
    });
    const server = Child.start('./server-process.ts', kind, layout.server);
    children.push(server);
    const { url } = await server.call<{ url: string }>('start', { kind, ...urls, symbols });
    const clients: Child[] = [];
    for (let i = 0; i < layout.clientProcesses; i++) {
      const c = Child.start('./client-process.ts', `client-${i}`, layout.others);
      children.push(c);
      clients.push(c);
    }
    return await body({ server, url, clients });
  } finally {
    // the server first: clients vanishing under a live server made graphql-ws' useServer (the
    // plain reference) print a stack for every write that hit a reset socket
    const [simulator, server, ...clients] = children;
    if (server) await server.stop();
    await Promise.all(clients.map((c) => c.stop()));
    if (simulator) await simulator.stop();
  }
}

/** Splits `items` over `parts` lists, round robin. */
function split<T>(items: T[], parts: number): T[][] {
  const out: T[][] = Array.from({ length: parts }, () => []);
  items.forEach((x, i) => out[i % parts]!.push(x));
  return out;
}

export async function runFanout(spec: FanoutSpec, layout: CpuLayout): Promise<FanoutResult> {
  const symbols = symbolsFor(spec.topics);
  const sim = { tickMs: 10, tradeRatePerSec: spec.tradeRatePerSec, makerRatePerSec: 20 };
  return withStack(layout, spec.kind, sim, symbols, async ({ server, url, clients }) => {
    const socketCount = Math.ceil(spec.subscribers / spec.subsPerSocket);
    const sockets = Array.from({ length: socketCount }, () => ({ symbols: [] as string[] }));
    for (let i = 0; i < spec.subscribers; i++) {
      sockets[Math.floor(i / spec.subsPerSocket)]!.symbols.push(symbols[i % symbols.length]!);
    }
    const parts = split(sockets, Math.min(clients.length, socketCount));
    await Promise.all(
      parts.map((socketsOfClient, i) =>
        clients[i]!.call('open', {
          url,
          protocol: spec.kind === 'raw' ? 'raw' : 'graphql-ws',
          query: TRADES_QUERY,
          sockets: socketsOfClient,
        } satisfies OpenPlan),
      ),
    );
    const active = clients.slice(0, parts.length);
    await waitUntil(
      async () => {
        const st = await Promise.all(
          active.map((c) => c.call<{ sockets: number; receiving: number }>('status')),
        );
        return st.every((s) => s.receiving === s.sockets);
      },
      30_000,
      'every subscriber to receive',
    );
    await sleep(spec.warmupMs);

    await server.call('stampsStart');
    await Promise.all(active.map((c) => c.call('mark', { latency: true })));
    const s0 = await server.call<ServerSample>('sample');
    const t0 = performance.now();
    await sleep(spec.measureMs);
    const s1 = await server.call<ServerSample>('sample');
    const serverMs = performance.now() - t0;
    const reports = await Promise.all(active.map((c) => c.call<ClientReport>('report')));
    const stamps = await server.call<{ ids: Float64Array; times: Float64Array }>('stampsTake');

    const messages = reports.reduce((a, r) => a + r.messages, 0);
    const sent = s1.framesSent - s0.framesSent;
    const cpuUs = s1.cpuUserUs + s1.cpuSystemUs - (s0.cpuUserUs + s0.cpuSystemUs);
    const latencies = latenciesOf(stamps, reports);
    if (process.env.BENCH_DEBUG) debugLatency(stamps, reports);
    const executions = (s1.counters.executions ?? 0) - (s0.counters.executions ?? 0);
    return {
      ...spec,
      deliveredPerSec: reports.reduce((a, r) => a + (r.messages / r.elapsedMs) * 1e3, 0),
      sentPerSec: (sent / serverMs) * 1e3,
      serverCpu: cpuUs / (serverMs * 1e3),
      cpuUsPerMessage: sent > 0 ? cpuUs / sent : NaN,
      messagesPerCpuSecond: cpuUs > 0 ? sent / (cpuUs / 1e6) : NaN,
      p50Ms: percentile(latencies, 0.5),
      p99Ms: percentile(latencies, 0.99),
      latencySamples: latencies.length,
      clientCpu: reports.reduce((a, r) => a + r.cpuUs / (r.elapsedMs * 1e3), 0),
      dropped: (s1.counters.dropped ?? 0) - (s0.counters.dropped ?? 0),
      errors: reports.reduce((a, r) => a + r.errors, 0),
      executionsPerMessage: spec.kind === 'gateway' && sent > 0 ? executions / sent : undefined,
      ...burstsOf(stamps.times),
    };
  });
}

/** Per arrival stamp: how many trades came in the same upstream read (they share its stamp). */
function readSizes(times: Float64Array): Float64Array {
  const out = new Float64Array(times.length);
  for (let i = 0; i < times.length;) {
    let j = i + 1;
    while (j < times.length && times[j] === times[i]) j++;
    out.fill(j - i, i, j);
    i = j;
  }
  return out;
}

/** Sizes of the upstream reads: mean, and the size of the read the p99 trade came in. */
function burstsOf(times: Float64Array): { tradesPerReadMean: number; tradesPerReadP99: number } {
  const reads = times.filter((t, i) => i === 0 || t !== times[i - 1]).length;
  return {
    tradesPerReadMean: reads > 0 ? times.length / reads : NaN,
    tradesPerReadP99: percentile(readSizes(times).sort(), 0.99),
  };
}

/** BENCH_DEBUG: latency by the size of the upstream read a trade came in, on stderr. */
function debugLatency(
  stamps: { ids: Float64Array; times: Float64Array },
  reports: ClientReport[],
): void {
  const sizes = readSizes(stamps.times);
  const size = new Map<number, number>();
  const arrival = new Map<number, number>();
  stamps.ids.forEach((id, k) => {
    size.set(id, sizes[k]!);
    arrival.set(id, stamps.times[k]!);
  });
  const by = new Map<number, number[]>();
  const worst: [number, number, number][] = [];
  for (const r of reports) {
    for (let i = 0; i < r.ids.length; i++) {
      const n = size.get(r.ids[i]!);
      const at = arrival.get(r.ids[i]!);
      if (n === undefined || at === undefined) continue;
      const l = r.times[i]! - at;
      const key = Math.min(n, 10);
      (by.get(key) ?? by.set(key, []).get(key)!).push(l);
      worst.push([l, n, at]);
    }
  }
  for (const [n, ls] of [...by].sort((a, b) => a[0] - b[0])) {
    const sorted = Float64Array.from(ls).sort();
    process.stderr.write(
      `  read of ${n}${n === 10 ? '+' : ''}: ${ls.length} msgs, p50 ${percentile(sorted, 0.5).toFixed(2)} p99 ${percentile(sorted, 0.99).toFixed(2)} max ${sorted[sorted.length - 1]!.toFixed(2)}\n`,
    );
  }
  worst.sort((a, b) => b[0] - a[0]);
  const t0 = stamps.times[0] ?? 0;
  // the first events of the window: arrival (mono) and their latency spread
  const firsts = [...new Set(stamps.times)].slice(0, 4);
  for (const at of firsts) {
    const ls = worst.filter((w) => w[2] === at).map((w) => w[0]);
    process.stderr.write(
      `  event at mono ${at.toFixed(1)}: ${ls.length} msgs, min ${Math.min(...ls).toFixed(2)} max ${Math.max(...ls).toFixed(2)}\n`,
    );
  }
  const seen = new Set<number>();
  for (const [l, n, at] of worst) {
    if (seen.has(at) || seen.size >= 12) continue;
    seen.add(at);
    process.stderr.write(
      `  worst: ${l.toFixed(2)} ms, read of ${n} at +${(at - t0).toFixed(0)} ms\n`,
    );
  }
}

/** Client receipt minus upstream arrival, per delivered message that has both stamps. */
function latenciesOf(
  stamps: { ids: Float64Array; times: Float64Array },
  reports: ClientReport[],
): Float64Array {
  const arrival = new Map<number, number>();
  for (let i = 0; i < stamps.ids.length; i++) arrival.set(stamps.ids[i]!, stamps.times[i]!);
  const out: number[] = [];
  for (const r of reports) {
    for (let i = 0; i < r.ids.length; i++) {
      const at = arrival.get(r.ids[i]!);
      if (at !== undefined) out.push(r.times[i]! - at);
    }
  }
  return Float64Array.from(out).sort();
}

export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export interface MemoryResult {
  kind: ServerKind;
  connections: number;
  subscriptions: number;
  heapBytesPerConnection: number;
  rssBytesPerConnection: number;
  /** idle subscriptions of one operation, over already open connections */
  heapBytesPerIdleSubscription: number;
  rssBytesPerIdleSubscription: number;
  /** server CPU per subscribe (trades, idle topic, joining a live group when shared) */
  cpuUsPerSubscribe: number;
  /** subscribe → first view of a live top-20 book, for a burst of `bookBurst` subscribes */
  bookSubscribeP50Ms: number;
  bookSubscribeP99Ms: number;
  cpuUsPerBookSubscribe: number;
  bookBurst: number;
}

/**
 * Memory per idle connection and per idle subscription (heap and RSS after full GCs in the
 * server), and the cost of a subscribe. The simulator trades nothing, so `trades` subscriptions
 * stay idle; its book still moves, so it is live for the subscribe burst.
 */
export async function runMemory(
  kind: 'gateway' | 'naive',
  layout: CpuLayout,
  connections: number,
  subsPerConnection: number,
  bookBurst: number,
): Promise<MemoryResult> {
  const symbols = ['BTCUSDT'];
  const sim = { tickMs: 50, tradeRatePerSec: 0, makerRatePerSec: 20 };
  return withStack(layout, kind, sim, symbols, async ({ server, url, clients }) => {
    const memory = (): Promise<{ heapUsed: number; rss: number }> => server.call('memory');
    const sample = (): Promise<ServerSample> => server.call('sample');
    const cpuOf = (a: ServerSample, b: ServerSample): number =>
      b.cpuUserUs + b.cpuSystemUs - a.cpuUserUs - a.cpuSystemUs;
    const subscribed = async (n: number): Promise<boolean> => {
      const c = (await sample()).counters;
      return (kind === 'gateway' ? c.members : c.hubSubscribers) === n;
    };
    const m0 = await memory();
    const parts = split(
      Array.from({ length: connections }, () => ({ symbols: [] as string[] })),
      clients.length,
    );
    await Promise.all(
      parts.map((sockets, i) =>
        clients[i]!.call('open', {
          url,
          protocol: 'graphql-ws',
          query: TRADES_QUERY,
          sockets,
        } satisfies OpenPlan),
      ),
    );
    const m1 = await memory();
    const subs = connections * subsPerConnection;
    const c0 = await sample();
    await Promise.all(
      parts.map((sockets, i) =>
        clients[i]!.call('more', {
          query: TRADES_QUERY,
          symbols: Array.from({ length: sockets.length * subsPerConnection }, () => 'BTCUSDT'),
        }),
      ),
    );
    await waitUntil(() => subscribed(subs), 60_000, `${subs} subscriptions`);
    const c1 = await sample();
    const m2 = await memory();

    // warm the book topic, then a burst of subscribes that each want the current view at once
    await clients[0]!.call('burst', {
      query: BOOK_QUERY,
      variables: { symbol: 'BTCUSDT' },
      count: 1,
      timeoutMs: 20_000,
    });
    const b0 = await sample();
    const bursts = await Promise.all(
      clients.map((c) =>
        c.call<{ latencies: Float64Array; missing: number }>('burst', {
          query: BOOK_QUERY,
          variables: { symbol: 'BTCUSDT' },
          count: Math.ceil(bookBurst / clients.length),
          timeoutMs: 30_000,
        }),
      ),
    );
    const b1 = await sample();
    const lat = Float64Array.from(bursts.flatMap((b) => [...b.latencies])).sort();
    const burstCount = Math.ceil(bookBurst / clients.length) * clients.length;
    return {
      kind,
      connections,
      subscriptions: subs,
      heapBytesPerConnection: (m1.heapUsed - m0.heapUsed) / connections,
      rssBytesPerConnection: (m1.rss - m0.rss) / connections,
      heapBytesPerIdleSubscription: (m2.heapUsed - m1.heapUsed) / subs,
      rssBytesPerIdleSubscription: (m2.rss - m1.rss) / subs,
      cpuUsPerSubscribe: cpuOf(c0, c1) / subs,
      bookSubscribeP50Ms: percentile(lat, 0.5),
      bookSubscribeP99Ms: percentile(lat, 0.99),
      cpuUsPerBookSubscribe: cpuOf(b0, b1) / burstCount,
      bookBurst: burstCount,
    };
  });
}
