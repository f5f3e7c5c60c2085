/**
 * Replays real Binance USDⓈ-M captures (cryptofeed raw format) through `BookSync` and checks
 * the result against the independently produced oracle in fixtures/binance-real/oracle.json.
 *
 * Replay: frames are delivered in recorded order. A symbol's snapshot can only be requested
 * after its first diff (that is BookSync's rule); the request is answered with the recorded
 * snapshot once the replay clock reaches the snapshot's recorded receive time (immediately if
 * that time has already passed), so diffs keep being buffered while the "fetch" is in flight,
 * exactly as they were on the wire.
 */
import { describe, expect, it } from 'vitest';
import { BookSync } from '../src/binance/book-sync.js';
import type { DepthDiff, DepthSnapshot, SyncTimers } from '../src/binance/book-sync.js';
import type { PriceLevel } from '../src/binance/local-book.js';
import { loadCapture } from '../src/simulator/capture.js';
import type { Capture } from '../src/simulator/capture.js';
import { captureDir, oracle } from './helpers/fixtures.js';

/** Decimal string without trailing fractional zeros: "7.6120" → "7.612", "0.10" → "0.1". */
function normalize(decimal: string): string {
  return decimal.includes('.') ? decimal.replace(/0+$/, '').replace(/\.$/, '') : decimal;
}

function isLevels(v: unknown): v is PriceLevel[] {
  return (
    Array.isArray(v) &&
    v.every((l) => Array.isArray(l) && typeof l[0] === 'string' && typeof l[1] === 'string')
  );
}

function toDiff(data: unknown): DepthDiff & { s: string } {
  const d = data as Record<string, unknown>;
  const { e, s, E, T, U, u, pu, b, a } = d;
  if (
    e !== 'depthUpdate' ||
    typeof s !== 'string' ||
    typeof E !== 'number' ||
    typeof T !== 'number' ||
    typeof U !== 'number' ||
    typeof u !== 'number' ||
    typeof pu !== 'number' ||
    !isLevels(b) ||
    !isLevels(a)
  ) {
    throw new Error(`not a depthUpdate: ${JSON.stringify(data).slice(0, 120)}`);
  }
  return { s, E, T, U, u, pu, b, a };
}

const noTimers: SyncTimers = {
  setTimer: () => {
    throw new Error('no timer expected during a clean replay');
  },
  clearTimer: () => {},
};

const flush = () => new Promise<void>((r) => setImmediate(r));

interface Replay {
  sync: BookSync;
  diffs: DepthDiff[];
  updates: number[];
  crossedViews: number;
}

async function replay(capture: Capture, symbols: string[]): Promise<Map<string, Replay>> {
  let now = capture.connectTime;
  const pending: { at: number; answer: () => void }[] = [];
  const out = new Map<string, Replay>();
  for (const symbol of symbols) {
    const recorded = capture.snapshots.get(symbol);
    if (!recorded) throw new Error(`no recorded snapshot for ${symbol}`);
    let served = false;
    const r: Replay = {
      diffs: [],
      updates: [],
      crossedViews: 0,
      sync: new BookSync({
        symbol,
        clock: { now: () => now * 1000 },
        timers: noTimers,
        fetchSnapshot: (s) => {
          expect(s).toBe(symbol);
          if (served) return Promise.reject(new Error('only one snapshot was recorded'));
          served = true;
          return new Promise<DepthSnapshot>((resolve) => {
            pending.push({ at: recorded.recvTime, answer: () => resolve(recorded) });
          });
        },
        onUpdate: (v) => {
          if (v.book.isCrossed()) r.crossedViews++;
          r.updates.push(v.lastUpdateId);
        },
        onError: (e) => {
          throw e;
        },
      }),
    };
    out.set(symbol, r);
  }

  const answerDue = async () => {
    let answered = false;
    for (let i = 0; i < pending.length;) {
      const p = pending[i]!;
      if (p.at <= now) {
        pending.splice(i, 1);
        p.answer();
        answered = true;
      } else i++;
    }
    if (answered) await flush();
  };

  for (const frame of capture.frames) {
    now = frame.recvTime;
    await answerDue();
    const m = /^([a-z0-9_]+)@depth(@\d+ms)?$/.exec(frame.stream);
    if (!m) continue;
    const d = toDiff(frame.data);
    expect(d.s).toBe(m[1]!.toUpperCase());
    const r = out.get(d.s);
    if (!r) continue;
    r.diffs.push(d);
    r.sync.onDiff(d);
  }
  now = Infinity;
  await answerDue();
  return out;
}

const captures = [...new Set(oracle.map((o) => o.capture))];

describe('replaying real captures through BookSync matches the oracle', () => {
  it('covers the three captures and 13 symbols', () => {
    expect(captures.sort()).toEqual(['1312c062', 'be4e5c81', 'ce58c2a0']);
    expect(oracle).toHaveLength(13);
  });

  for (const name of captures) {
    it(`capture ${name}`, async () => {
      const capture = loadCapture(captureDir(name));
      const entries = oracle.filter((o) => o.capture === name);
      const results = await replay(
        capture,
        entries.map((o) => o.symbol),
      );

      for (const o of entries) {
        const r = results.get(o.symbol)!;
        const { sync, diffs } = r;
        const snapshot = capture.snapshots.get(o.symbol)!;
        const L = snapshot.lastUpdateId;
        const label = `${name} ${o.symbol}`;

        // the recorded snapshot is the oracle's, and the stream ends at the oracle's final u
        expect(L, label).toBe(o.lastUpdateId);
        expect(diffs.length, label).toBeGreaterThan(50);
        expect(diffs.at(-1)!.u, label).toBe(o.finalUpdateId);

        // the synchronizer ended live, in sequence, with one snapshot and no resync
        expect(sync.state, label).toBe('live');
        expect(sync.resyncCount, label).toBe(0);
        expect(sync.snapshotFetches, label).toBe(1);
        expect(sync.lastUpdateId, label).toBe(o.finalUpdateId);
        expect(sync.eventTime, label).toBe(diffs.at(-1)!.E);
        expect(sync.transactionTime, label).toBe(diffs.at(-1)!.T);

        // dropped exactly the events with u < L, applied all the others
        const expectedDropped = diffs.filter((d) => d.u < L).length;
        expect(sync.droppedEvents, label).toBe(expectedDropped);
        expect(sync.appliedEvents, label).toBe(diffs.length - expectedDropped);
        const bridge = diffs[expectedDropped]!;
        expect(bridge.U <= L && L <= bridge.u, label).toBe(true);
        // the chain after the bridge is unbroken in the recording
        for (let i = expectedDropped + 1; i < diffs.length; i++) {
          expect(diffs[i]!.pu, label).toBe(diffs[i - 1]!.u);
        }

        // subscribers only saw in-sequence, uncrossed views ending at the final u
        expect(r.crossedViews, label).toBe(0);
        expect(r.updates.at(-1), label).toBe(o.finalUpdateId);
        for (let i = 1; i < r.updates.length; i++) {
          expect(r.updates[i]!, label).toBeGreaterThan(r.updates[i - 1]!);
        }

        // top of book equals the oracle (as decimals)
        const bid = sync.book.bestBid();
        const ask = sync.book.bestAsk();
        expect(bid?.map(normalize), label).toEqual(o.bestBid.map(normalize));
        expect(ask?.map(normalize), label).toEqual(o.bestAsk.map(normalize));
        expect(sync.book.isCrossed(), label).toBe(false);
      }
    });
  }
});
