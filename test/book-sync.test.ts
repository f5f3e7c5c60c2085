import { describe, expect, it } from 'vitest';
import { BookSync } from '../src/binance/book-sync.js';
import type {
  BookSyncOptions,
  BookView,
  DepthDiff,
  DepthSnapshot,
  SyncTimers,
} from '../src/binance/book-sync.js';
import type { PriceLevel } from '../src/binance/local-book.js';

/** Manual clock + timers: nothing runs until `advance()`. */
class FakeTime implements SyncTimers {
  time = 0;
  private seq = 0;
  private tasks = new Map<number, { at: number; fn: () => void }>();
  now = (): number => this.time;
  setTimer(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.tasks.set(id, { at: this.time + ms, fn });
    return id;
  }
  clearTimer(handle: unknown): void {
    this.tasks.delete(handle as number);
  }
  get pending(): number {
    return this.tasks.size;
  }
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.tasks) {
        if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
      }
      if (!next) break;
      this.tasks.delete(next[0]);
      this.time = next[1].at;
      next[1].fn();
    }
    this.time = end;
  }
}

/** A fetcher whose answers the test hands out by hand. */
class FakeFetcher {
  calls: {
    symbol: string;
    resolve: (s: DepthSnapshot) => void;
    reject: (e: unknown) => void;
  }[] = [];
  fetch = (symbol: string): Promise<DepthSnapshot> =>
    new Promise((resolve, reject) => this.calls.push({ symbol, resolve, reject }));
  last() {
    const c = this.calls[this.calls.length - 1];
    if (!c) throw new Error('no fetch was made');
    return c;
  }
}

const flush = () => new Promise<void>((r) => setImmediate(r));

function diff(U: number, u: number, pu: number, b: PriceLevel[] = [], a: PriceLevel[] = []) {
  return { E: 1000 + u, T: 900 + u, U, u, pu, b, a } satisfies DepthDiff;
}

function snap(lastUpdateId: number, bids: PriceLevel[], asks: PriceLevel[]): DepthSnapshot {
  return { lastUpdateId, E: 5, T: 4, bids, asks };
}

const BIDS: PriceLevel[] = [
  ['100.0', '1'],
  ['99.5', '2'],
];
const ASKS: PriceLevel[] = [
  ['101.0', '3'],
  ['101.5', '4'],
];

function setup(extra: Partial<BookSyncOptions> = {}) {
  const time = new FakeTime();
  const fetcher = new FakeFetcher();
  const updates: { lastUpdateId: number; bid?: [string, string]; ask?: [string, string] }[] = [];
  const resyncs: string[] = [];
  const lives: number[] = [];
  const fetchErrors: [number, number][] = [];
  const sync = new BookSync({
    symbol: 'BTCUSDT',
    fetchSnapshot: fetcher.fetch,
    clock: time,
    timers: time,
    minFetchIntervalMs: 0,
    onUpdate: (v: BookView) => {
      expect(v.book.isCrossed()).toBe(false);
      updates.push({ lastUpdateId: v.lastUpdateId, bid: v.book.bestBid(), ask: v.book.bestAsk() });
    },
    onResync: (reason) => resyncs.push(reason),
    onLive: (v) => lives.push(v.lastUpdateId),
    onFetchError: (_e, attempt, ms) => fetchErrors.push([attempt, ms]),
    onError: (e) => {
      throw e;
    },
    ...extra,
  });
  return { time, fetcher, sync, updates, resyncs, lives, fetchErrors };
}

describe('BookSync (USDⓈ-M rules)', () => {
  it('stays idle and fetches nothing before the first diff', () => {
    const { sync, fetcher } = setup();
    expect(sync.state).toBe('idle');
    expect(fetcher.calls).toHaveLength(0);
    expect(sync.live).toBe(false);
    sync.resync('reconnect'); // nothing to rebuild yet
    expect(sync.state).toBe('idle');
    expect(sync.resyncCount).toBe(0);
  });

  it('fetches after the first diff, buffers meanwhile, drops u < L and bridges on u == L', async () => {
    const { sync, fetcher, updates, lives } = setup();
    sync.onDiff(diff(90, 95, 89, [['50', '9']])); // u < L: must be dropped
    expect(sync.state).toBe('syncing');
    expect(fetcher.calls).toHaveLength(1);
    expect(fetcher.last().symbol).toBe('BTCUSDT');
    sync.onDiff(diff(96, 100, 95, [['99.5', '7']])); // u == L: the bridging event
    sync.onDiff(diff(101, 105, 100, [], [['101.0', '0']]));
    expect(fetcher.calls).toHaveLength(1); // one fetch only
    expect(sync.bufferedCount).toBe(3);
    expect(updates).toHaveLength(0);

    fetcher.last().resolve(snap(100, BIDS, ASKS));
    await flush();
    expect(sync.state).toBe('live');
    expect(sync.live).toBe(true);
    expect(sync.droppedEvents).toBe(1);
    expect(sync.appliedEvents).toBe(2);
    expect(sync.lastUpdateId).toBe(105);
    expect(sync.eventTime).toBe(1105);
    expect(sync.transactionTime).toBe(1005);
    expect(sync.book.quantityAt('bid', '50')).toBeUndefined();
    expect(sync.book.quantityAt('bid', '99.5')).toBe('7');
    expect(sync.book.bestAsk()).toEqual(['101.5', '4']);
    expect(lives).toEqual([105]);
    expect(updates).toEqual([{ lastUpdateId: 105, bid: ['100.0', '1'], ask: ['101.5', '4'] }]);

    sync.onDiff(diff(106, 110, 105, [['100.5', '1']]));
    expect(updates.at(-1)).toEqual({ lastUpdateId: 110, bid: ['100.5', '1'], ask: ['101.5', '4'] });
    expect(sync.resyncCount).toBe(0);
    expect(sync.snapshotFetches).toBe(1);
  });

  it('bridges on U == L and does not check pu on the first applied event', async () => {
    const { sync, fetcher, updates } = setup();
    sync.onDiff(diff(100, 110, 42, [['99.0', '5']])); // pu unrelated to anything: fine
    fetcher.last().resolve(snap(100, BIDS, ASKS));
    await flush();
    expect(sync.state).toBe('live');
    expect(sync.lastUpdateId).toBe(110);
    expect(sync.book.quantityAt('bid', '99.0')).toBe('5');
    sync.onDiff(diff(111, 120, 110, [['99.0', '6']]));
    expect(sync.lastUpdateId).toBe(120);
    expect(updates.map((u) => u.lastUpdateId)).toEqual([110, 120]);
  });

  it('waits with the snapshot in hand when every buffered event is older than L', async () => {
    const { sync, fetcher } = setup();
    sync.onDiff(diff(90, 95, 89));
    fetcher.last().resolve(snap(120, BIDS, ASKS));
    await flush();
    expect(sync.state).toBe('syncing');
    expect(sync.droppedEvents).toBe(1);
    sync.onDiff(diff(96, 110, 95)); // still older: dropped
    expect(sync.state).toBe('syncing');
    sync.onDiff(diff(111, 125, 110)); // brackets 120
    expect(sync.state).toBe('live');
    expect(sync.droppedEvents).toBe(2);
    expect(sync.lastUpdateId).toBe(125);
    expect(fetcher.calls).toHaveLength(1);
  });

  it('re-fetches when the snapshot is older than the stream (U > L), keeping the buffer', async () => {
    const { sync, fetcher, resyncs, updates } = setup({ minFetchIntervalMs: 1000 });
    sync.onDiff(diff(105, 110, 100));
    fetcher.last().resolve(snap(100, BIDS, ASKS));
    await flush();
    expect(resyncs).toHaveLength(1);
    expect(resyncs[0]).toMatch(/older than stream/);
    expect(sync.state).toBe('resyncing');
    expect(sync.live).toBe(false);
    expect(sync.bufferedCount).toBe(1);
    expect(updates).toHaveLength(0);
    // throttled: the second request waits for minFetchIntervalMs
    expect(fetcher.calls).toHaveLength(1);
    sync.onDiff(diff(111, 115, 110, [['100.0', '8']]));
    expect(fetcher.calls).toHaveLength(1);
  });

  it('re-fetch after U > L leads to a live book once the newer snapshot arrives', async () => {
    const { sync, fetcher, time, updates } = setup({ minFetchIntervalMs: 1000 });
    sync.onDiff(diff(105, 110, 100));
    fetcher.last().resolve(snap(100, BIDS, ASKS));
    await flush();
    sync.onDiff(diff(111, 115, 110, [['100.0', '8']]));
    time.advance(999);
    expect(fetcher.calls).toHaveLength(1);
    time.advance(1);
    expect(fetcher.calls).toHaveLength(2);
    fetcher.last().resolve(snap(112, BIDS, ASKS));
    await flush();
    expect(sync.state).toBe('live');
    expect(sync.lastUpdateId).toBe(115);
    expect(sync.droppedEvents).toBe(1);
    expect(sync.book.bestBid()).toEqual(['100.0', '8']);
    expect(updates.map((u) => u.lastUpdateId)).toEqual([115]);
  });

  it('resyncs on a pu gap and never hands out a view built on the broken chain', async () => {
    const { sync, fetcher, resyncs, updates, lives } = setup();
    sync.onDiff(diff(100, 110, 99));
    fetcher.last().resolve(snap(105, BIDS, ASKS));
    await flush();
    sync.onDiff(diff(111, 120, 110, [['100.2', '1']]));
    expect(updates.map((u) => u.lastUpdateId)).toEqual([110, 120]);

    // one event lost: pu 125 != 120
    sync.onDiff(diff(126, 130, 125, [['100.4', '1']]));
    expect(resyncs).toEqual(['pu gap: expected pu=120, got pu=125']);
    expect(sync.resyncCount).toBe(1);
    expect(sync.state).toBe('resyncing');
    expect(sync.live).toBe(false);
    expect(sync.book.bidCount).toBe(0);
    expect(sync.book.askCount).toBe(0);
    expect(updates.map((u) => u.lastUpdateId)).toEqual([110, 120]);
    // the gap-revealing event is valid data: it starts the new buffer and triggers a fetch
    expect(fetcher.calls).toHaveLength(2);
    expect(sync.bufferedCount).toBe(1);
    sync.onDiff(diff(131, 140, 130, [['100.6', '1']]));
    expect(updates).toHaveLength(2);

    fetcher.last().resolve(snap(128, BIDS, ASKS));
    await flush();
    expect(sync.state).toBe('live');
    expect(sync.lastUpdateId).toBe(140);
    expect(sync.book.bestBid()).toEqual(['100.6', '1']);
    expect(sync.book.quantityAt('bid', '100.2')).toBeUndefined(); // pre-gap state is gone
    expect(updates.map((u) => u.lastUpdateId)).toEqual([110, 120, 140]);
    expect(lives).toEqual([110, 140]);
  });

  it('resyncs on a pu gap inside the buffered catch-up', async () => {
    const { sync, fetcher, resyncs, updates } = setup();
    sync.onDiff(diff(100, 110, 99));
    sync.onDiff(diff(111, 120, 110));
    sync.onDiff(diff(125, 130, 122)); // gap inside the buffer
    fetcher.last().resolve(snap(105, BIDS, ASKS));
    await flush();
    expect(resyncs).toEqual(['pu gap in buffer: expected pu=120, got pu=122']);
    expect(sync.state).toBe('resyncing');
    expect(sync.book.bidCount).toBe(0);
    expect(updates).toHaveLength(0);
    expect(fetcher.calls).toHaveLength(2);
    fetcher.last().resolve(snap(127, BIDS, ASKS));
    await flush();
    expect(sync.state).toBe('live');
    expect(sync.lastUpdateId).toBe(130);
    expect(updates.map((u) => u.lastUpdateId)).toEqual([130]);
  });

  it('applies events whose b or a array is empty', async () => {
    const { sync, fetcher, updates } = setup();
    sync.onDiff(diff(100, 101, 99, [], [['101.0', '9']]));
    fetcher.last().resolve(snap(100, BIDS, ASKS));
    await flush();
    sync.onDiff(diff(102, 103, 101, [['99.5', '0']], []));
    sync.onDiff(diff(104, 105, 103, [], []));
    expect(sync.state).toBe('live');
    expect(sync.lastUpdateId).toBe(105);
    expect(sync.book.bestAsk()).toEqual(['101.0', '9']);
    expect(sync.book.bidCount).toBe(1);
    expect(updates.map((u) => u.lastUpdateId)).toEqual([101, 103, 105]);
  });

  it('ignores a stale snapshot that arrives after a newer resync started', async () => {
    const { sync, fetcher, updates } = setup();
    sync.onDiff(diff(100, 110, 99));
    const first = fetcher.last();
    sync.resync('reconnect');
    expect(sync.state).toBe('resyncing');
    expect(sync.bufferedCount).toBe(0);
    expect(fetcher.calls).toHaveLength(1); // next fetch only after the next diff
    sync.onDiff(diff(200, 210, 190));
    expect(fetcher.calls).toHaveLength(2);
    const second = fetcher.last();

    first.resolve(snap(205, [['1', '1']], [['2', '1']])); // stale generation
    await flush();
    expect(sync.state).toBe('resyncing');
    expect(sync.book.bidCount).toBe(0);
    expect(updates).toHaveLength(0);

    second.resolve(snap(205, BIDS, ASKS));
    await flush();
    expect(sync.state).toBe('live');
    expect(sync.book.bestBid()).toEqual(['100.0', '1']);
    expect(updates.map((u) => u.lastUpdateId)).toEqual([210]);
  });

  it('retries a failed snapshot fetch with doubling backoff on the injected timers', async () => {
    const { sync, fetcher, time, fetchErrors } = setup({ retryBaseMs: 500, retryMaxMs: 1500 });
    sync.onDiff(diff(100, 110, 99));
    fetcher.last().reject(new Error('HTTP 503'));
    await flush();
    expect(fetchErrors).toEqual([[1, 500]]);
    expect(sync.state).toBe('syncing');
    sync.onDiff(diff(111, 120, 110)); // still buffering, no extra fetch
    expect(fetcher.calls).toHaveLength(1);
    time.advance(499);
    expect(fetcher.calls).toHaveLength(1);
    time.advance(1);
    expect(fetcher.calls).toHaveLength(2);
    fetcher.last().reject(new Error('HTTP 429'));
    await flush();
    time.advance(1000);
    expect(fetcher.calls).toHaveLength(3);
    fetcher.last().reject(new Error('timeout'));
    await flush();
    expect(fetchErrors).toEqual([
      [1, 500],
      [2, 1000],
      [3, 1500], // capped
    ]);
    time.advance(1500);
    expect(fetcher.calls).toHaveLength(4);
    fetcher.last().resolve(snap(105, BIDS, ASKS));
    await flush();
    expect(sync.state).toBe('live');
    expect(sync.lastUpdateId).toBe(120);
    expect(sync.resyncCount).toBe(0);
    expect(sync.snapshotFetches).toBe(4);
  });

  it('a resync cancels a pending retry timer', async () => {
    const { sync, fetcher, time } = setup();
    sync.onDiff(diff(100, 110, 99));
    fetcher.last().reject(new Error('down'));
    await flush();
    expect(time.pending).toBe(1);
    sync.resync('reconnect');
    expect(time.pending).toBe(0);
    time.advance(60_000);
    expect(fetcher.calls).toHaveLength(1);
  });

  it('resyncs when a diff crosses the book, without publishing the crossed view', async () => {
    const { sync, fetcher, resyncs, updates } = setup();
    sync.onDiff(diff(100, 110, 99));
    fetcher.last().resolve(snap(105, BIDS, ASKS));
    await flush();
    expect(updates).toHaveLength(1);
    sync.onDiff(diff(111, 120, 110, [['101.2', '1']])); // bid above best ask 101.0
    expect(resyncs).toEqual(['crossed book after u=120']);
    expect(sync.state).toBe('resyncing');
    expect(sync.book.bidCount).toBe(0);
    expect(updates).toHaveLength(1);
    expect(fetcher.calls).toHaveLength(1);
    sync.onDiff(diff(121, 130, 120));
    expect(fetcher.calls).toHaveLength(2);
    fetcher.last().resolve(snap(125, BIDS, ASKS));
    await flush();
    expect(sync.state).toBe('live');
    expect(updates.map((u) => u.lastUpdateId)).toEqual([110, 130]);
  });

  it('resyncs on a malformed level instead of keeping a half-applied diff', async () => {
    const { sync, fetcher, resyncs, updates } = setup();
    sync.onDiff(diff(100, 110, 99));
    fetcher.last().resolve(snap(105, BIDS, ASKS));
    await flush();
    sync.onDiff(
      diff(111, 120, 110, [
        ['99.0', '1'],
        ['oops', '1'],
      ]),
    );
    expect(resyncs[0]).toMatch(/^bad diff u=120/);
    expect(sync.book.bidCount).toBe(0);
    expect(updates).toHaveLength(1);
  });

  it('resync() on demand clears a live book and waits for the next diff', async () => {
    const { sync, fetcher, resyncs } = setup();
    sync.onDiff(diff(100, 110, 99));
    fetcher.last().resolve(snap(105, BIDS, ASKS));
    await flush();
    sync.resync('reconnect');
    expect(resyncs).toEqual(['reconnect']);
    expect(sync.state).toBe('resyncing');
    expect(sync.book.bidCount).toBe(0);
    expect(sync.lastUpdateId).toBe(0);
    expect(fetcher.calls).toHaveLength(1);
    sync.onDiff(diff(300, 310, 290));
    expect(fetcher.calls).toHaveLength(2);
  });

  it('throttles snapshot requests to minFetchIntervalMs', async () => {
    const { sync, fetcher, time } = setup({ minFetchIntervalMs: 1000 });
    sync.onDiff(diff(100, 110, 99));
    fetcher.last().resolve(snap(105, BIDS, ASKS));
    await flush();
    time.advance(300);
    sync.onDiff(diff(120, 130, 115)); // gap → resync, fetch due at t=1000
    expect(fetcher.calls).toHaveLength(1);
    time.advance(699);
    expect(fetcher.calls).toHaveLength(1);
    time.advance(1);
    expect(fetcher.calls).toHaveLength(2);
  });

  it('close() ignores a pending snapshot and later diffs', async () => {
    const { sync, fetcher, updates } = setup();
    sync.onDiff(diff(100, 110, 99));
    sync.close();
    fetcher.last().resolve(snap(105, BIDS, ASKS));
    await flush();
    sync.onDiff(diff(111, 120, 110));
    expect(sync.live).toBe(false);
    expect(updates).toHaveLength(0);
    expect(fetcher.calls).toHaveLength(1);
  });

  it('bounds the buffer while the snapshot is slow', async () => {
    const { sync, fetcher } = setup({ maxBuffered: 3 });
    for (let i = 0; i < 10; i++) sync.onDiff(diff(100 + i * 10, 109 + i * 10, 99 + i * 10));
    expect(sync.bufferedCount).toBe(3);
    fetcher.last().resolve(snap(175, BIDS, ASKS));
    await flush();
    expect(sync.state).toBe('live');
    expect(sync.lastUpdateId).toBe(199);
  });

  it('trims the deep tail once a side grows past 1.25 × maxLevels', async () => {
    const { sync, fetcher } = setup({ maxLevels: 4 });
    sync.onDiff(diff(100, 110, 99));
    fetcher.last().resolve(snap(105, BIDS, ASKS));
    await flush();
    sync.onDiff(
      diff(111, 120, 110, [
        ['98', '1'],
        ['97', '1'],
        ['96', '1'],
      ]),
    );
    expect(sync.book.bidCount).toBe(5); // at 1.25 × 4 = 5: not yet
    sync.onDiff(diff(121, 130, 120, [['95', '1']]));
    expect(sync.book.bidCount).toBe(4); // 6 > 5: back to the best 4
    expect(sync.book.top('bid', 10).map((l) => l.price)).toEqual(['100.0', '99.5', '98', '97']);
  });
});
