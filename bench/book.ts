/**
 * Micro-benchmark for `LocalBook` (run: `npx tsx bench/book.ts`; `--quick` for a shorter run, as
 * `npm run bench -- --quick` uses it). Prints one JSON object:
 * - levelUpdatesPerSecond: level updates applied through `applyLevels` (10 levels per call,
 *   like a depth diff) to a book loaded with 1000 levels per side (it settles near 850);
 *   mostly quantity changes near the top, with ~15% deletions and re-insertions.
 * - top20ReadNs: `top('bid', 20)` when the side did not change (cached view).
 * - top20RebuildNs: one level update followed by `top('bid', 20)`, minus the update cost
 *   (the view is rebuilt each time).
 */
import { LocalBook } from '../src/binance/local-book.js';
import type { PriceLevel } from '../src/binance/local-book.js';

const LEVELS = 1000;
const TICK = 0.1;
const MID = 50_000;
const QUICK = process.argv.includes('--quick');
const UPDATES = QUICK ? 500_000 : 2_000_000;
const BATCH = 10;

let seed = 12345;
function random(): number {
  // xorshift32: deterministic, no allocation
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
}

function priceAt(side: 'bid' | 'ask', depth: number): string {
  const p = side === 'bid' ? MID - depth * TICK : MID + TICK + depth * TICK;
  return p.toFixed(1);
}

const bids: [string, string][] = [];
const asks: [string, string][] = [];
for (let d = 0; d < LEVELS; d++) {
  bids.push([priceAt('bid', d), (1 + random() * 10).toFixed(3)]);
  asks.push([priceAt('ask', d), (1 + random() * 10).toFixed(3)]);
}

// Pre-built diffs: depth skewed to the top (cube of a uniform), 15% zero quantities.
const priceCache = { bid: [] as string[], ask: [] as string[] };
for (let d = 0; d < LEVELS; d++) {
  priceCache.bid.push(priceAt('bid', d));
  priceCache.ask.push(priceAt('ask', d));
}
const qtyPool: string[] = [];
for (let i = 0; i < 512; i++) qtyPool.push((random() * 20).toFixed(3));
qtyPool.push('0', '0.000', '0.0');

const diffs: { side: 'bid' | 'ask'; levels: PriceLevel[] }[] = [];
for (let i = 0; i < UPDATES / BATCH; i++) {
  const side = random() < 0.5 ? 'bid' : 'ask';
  const levels: PriceLevel[] = [];
  for (let j = 0; j < BATCH; j++) {
    const depth = Math.floor(random() ** 3 * LEVELS);
    const qty = random() < 0.15 ? '0' : (qtyPool[Math.floor(random() * qtyPool.length)] ?? '1.000');
    levels.push([priceCache[side][depth]!, qty]);
  }
  diffs.push({ side, levels });
}

const book = new LocalBook();

function runUpdates(): number {
  book.loadSnapshot(bids, asks);
  const t0 = process.hrtime.bigint();
  for (const d of diffs) book.applyLevels(d.side, d.levels);
  const ns = Number(process.hrtime.bigint() - t0);
  return (UPDATES / ns) * 1e9;
}

function runCachedTop(): number {
  const n = QUICK ? 1_000_000 : 5_000_000;
  let sink = 0;
  book.top('bid', 20);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) sink += book.top('bid', 20).length;
  const ns = Number(process.hrtime.bigint() - t0);
  if (sink !== n * Math.min(20, book.bidCount)) throw new Error('unexpected view length');
  return ns / n;
}

function runRebuildTop(): number {
  const n = QUICK ? 250_000 : 1_000_000;
  const a: PriceLevel[] = [[priceCache.bid[3]!, '1.000']];
  const b: PriceLevel[] = [[priceCache.bid[3]!, '2.000']];
  let sink = 0;
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) book.applyLevels('bid', i & 1 ? a : b);
  const updateNs = Number(process.hrtime.bigint() - t0) / n;
  t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    book.applyLevels('bid', i & 1 ? a : b);
    sink += book.top('bid', 20).length;
  }
  const bothNs = Number(process.hrtime.bigint() - t0) / n;
  if (sink === 0) throw new Error('empty view');
  return Math.max(0, bothNs - updateNs);
}

// Warm up the JIT, then measure (best of a few runs).
for (let i = 0; i < 2; i++) runUpdates();
let ups = 0;
for (let i = 0; i < (QUICK ? 3 : 5); i++) ups = Math.max(ups, runUpdates());
runCachedTop();
let cached = Infinity;
for (let i = 0; i < 3; i++) cached = Math.min(cached, runCachedTop());
runRebuildTop();
let rebuild = Infinity;
for (let i = 0; i < 3; i++) rebuild = Math.min(rebuild, runRebuildTop());

console.log(
  JSON.stringify(
    {
      levelUpdatesPerSecond: Math.round(ups),
      top20ReadNs: Number(cached.toFixed(1)),
      top20RebuildNs: Number(rebuild.toFixed(1)),
      bookLevels: { bids: book.bidCount, asks: book.askCount },
      node: process.version,
    },
    null,
    2,
  ),
);
