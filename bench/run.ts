/**
 * `npm run bench`: the gateway's fan-out, latency, memory and book figures beside two
 * references built in (a raw `ws` broadcast of the same pre-serialized bytes, and the naive
 * yoga + graphql-ws setup where every subscriber executes its own operation), all offline
 * against the simulator over loopback. Prints a table, writes `docs/benchmarks.md` (+ its SVG
 * chart) from the run, and prints a JSON summary as the last stdout line.
 *
 * `npm run bench -- --quick` (under a minute) runs the headline scenarios only and leaves the
 * docs alone unless `--write-docs` is given.
 */
import { execFile } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  runFanout,
  runMemory,
  type CpuLayout,
  type FanoutResult,
  type FanoutSpec,
  type MemoryResult,
} from './fanout.js';
import { pin, pinning } from './ipc.js';
import { SCENARIOS, machine, summarize, table, writeDocs, type BookResult } from './report.js';

const quick = process.argv.includes('--quick');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const writeDocsToo = !only && (!quick || process.argv.includes('--write-docs'));

function layout(): CpuLayout {
  const cpus = availableParallelism();
  if (cpus < 2 || !pin(process.pid, `1-${cpus - 1}`)) {
    return { server: undefined, others: undefined, clientProcesses: 2 };
  }
  // the server under test alone on CPU 0; simulator, clients and this process on the rest
  return {
    server: '0',
    others: `1-${cpus - 1}`,
    clientProcesses: Math.max(2, Math.min(4, cpus - 2)),
  };
}

type Kind = FanoutSpec['kind'];

/** One scenario of the table, run for each of `kinds`. */
interface Scenario {
  name: string;
  kinds: Kind[];
  spec: Omit<FanoutSpec, 'kind'>;
  /**
   * Runs per server (fresh processes each, servers interleaved); the row is the run with the
   * median messages per CPU-second. For the rows the throughput targets are read from: one
   * run's figure moves by ±10–20 % from run to run on this kind of machine.
   */
  repeat?: number;
}

function scenarios(): Scenario[] {
  const timing = quick
    ? { warmupMs: 500, measureMs: 2_500 }
    : { warmupMs: 1_500, measureMs: 5_000 };
  const all: Kind[] = ['gateway', 'raw', 'naive', 'plain'];
  const fast: Kind[] = ['gateway', 'raw'];
  const one = { topics: 1, ...timing };
  // Comparison rows offer a load all three servers carry (the naive one stalls far beyond it),
  // so they are measured side by side at the same offered rate. Load rows are for the gateway
  // and raw ws: their per-core capacity (1000 subscribers, one socket each) and the latency
  // targets (100k msg/s, with 10 subscriptions per socket so the clients keep up).
  const repeat = quick ? 1 : 3;
  const compare1000: Scenario = {
    name: SCENARIOS.compare,
    kinds: quick ? ['naive', 'plain'] : all,
    spec: { subscribers: 1000, subsPerSocket: 1, tradeRatePerSec: 15, ...one },
    repeat,
  };
  const capacity: Scenario = {
    name: SCENARIOS.capacity,
    kinds: fast,
    spec: { subscribers: 1000, subsPerSocket: 1, tradeRatePerSec: 100, ...one },
    repeat,
  };
  const load: Scenario = {
    name: SCENARIOS.load,
    kinds: quick ? ['gateway'] : fast,
    spec: { subscribers: 1000, subsPerSocket: 10, tradeRatePerSec: 100, ...one },
  };
  const big: Scenario = {
    name: SCENARIOS.big,
    kinds: quick ? ['gateway'] : fast,
    spec: { subscribers: 5000, subsPerSocket: 10, tradeRatePerSec: 20, ...one },
  };
  if (quick) return [capacity, compare1000, load, big];
  return [
    {
      name: '1 sub, 1 topic',
      kinds: all,
      spec: { subscribers: 1, subsPerSocket: 1, tradeRatePerSec: 100, ...one },
    },
    {
      name: '100 subs, 1 topic',
      kinds: all,
      spec: { subscribers: 100, subsPerSocket: 1, tradeRatePerSec: 100, ...one },
    },
    compare1000,
    {
      name: '5000 subs, 1 topic',
      kinds: all,
      spec: { subscribers: 5000, subsPerSocket: 1, tradeRatePerSec: 3, ...one },
    },
    {
      name: '1000 subs, 50 topics',
      kinds: all,
      spec: { subscribers: 1000, topics: 50, subsPerSocket: 1, tradeRatePerSec: 15, ...timing },
    },
    {
      name: SCENARIOS.compareMultiplexed,
      kinds: all,
      spec: { subscribers: 1000, subsPerSocket: 10, tradeRatePerSec: 15, ...one },
    },
    capacity,
    load,
    big,
  ];
}

/** The run with the median messages per CPU-second, carrying every run's figure. */
function medianRun(runs: FanoutResult[]): FanoutResult {
  const sorted = [...runs].sort((a, b) => a.messagesPerCpuSecond - b.messagesPerCpuSecond);
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return runs.length > 1
    ? { ...median, runsMessagesPerCpuSecond: runs.map((r) => r.messagesPerCpuSecond) }
    : median;
}

async function bookBench(): Promise<BookResult> {
  const script = fileURLToPath(new URL('./book.ts', import.meta.url));
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', script, ...(quick ? ['--quick'] : [])],
    { maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout) as BookResult;
}

async function main(): Promise<void> {
  const started = Date.now();
  const cpuLayout = layout();
  const log = (line: string): void => {
    process.stderr.write(`[bench ${((Date.now() - started) / 1e3).toFixed(1)}s] ${line}\n`);
  };
  log(
    `${quick ? 'quick' : 'full'} run; server CPU ${cpuLayout.server ?? 'unpinned'}, others ${cpuLayout.others ?? 'unpinned'}`,
  );
  const fanout: { scenario: string; result: FanoutResult }[] = [];
  // --only=<text>: the scenarios whose name contains it (and optionally `:kind`), for profiling
  const [onlyName, onlyKind] = only?.split(':') ?? [];
  for (const sc of scenarios().filter((s) => !onlyName || s.name.includes(onlyName))) {
    const kinds = sc.kinds.filter((k) => !onlyKind || k === onlyKind);
    const runs = new Map<Kind, FanoutResult[]>(kinds.map((k) => [k, []]));
    const repeat = sc.repeat ?? 1;
    for (let i = 0; i < repeat; i++) {
      for (const kind of kinds) {
        log(`${sc.name}: ${kind}${repeat > 1 ? ` (run ${i + 1} of ${repeat})` : ''}`);
        const result = await runFanout({ kind, ...sc.spec }, cpuLayout);
        runs.get(kind)!.push(result);
        log(
          `  ${Math.round(result.deliveredPerSec)} msg/s, ${result.cpuUsPerMessage.toFixed(2)} µs CPU/msg, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms; trades per upstream read: mean ${result.tradesPerReadMean.toFixed(2)}, p99 ${result.tradesPerReadP99}`,
        );
      }
    }
    for (const kind of kinds)
      fanout.push({ scenario: sc.name, result: medianRun(runs.get(kind)!) });
  }
  const memory: MemoryResult[] = [];
  for (const kind of quick ? (['gateway'] as const) : (['gateway', 'naive'] as const)) {
    log(`memory and subscribe cost: ${kind}`);
    memory.push(await runMemory(kind, cpuLayout, 1_000, quick ? 3 : 5, 1_000));
  }
  log('order book');
  const book = await bookBench();
  const env = machine(pinning(), cpuLayout, quick);
  const summary = summarize(fanout, memory, book);
  process.stdout.write(`${table(fanout, memory, book, env)}\n`);
  if (writeDocsToo) {
    const path = await writeDocs(fanout, memory, book, env, summary);
    log(`wrote ${path}`);
  }
  log(`done in ${((Date.now() - started) / 1e3).toFixed(1)} s`);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
