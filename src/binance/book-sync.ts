/**
 * Binance USDⓈ-M futures local order book synchronizer: a pure state machine, one instance per
 * symbol, with no sockets. The owner feeds it the symbol's `depthUpdate` events (`onDiff`) and
 * tells it about reconnects (`resync`); it fetches snapshots through an injected function and
 * reports through callbacks. Time and timers are injected so tests never wait.
 *
 * Rules implemented (reference §5, futures — NOT spot):
 *  1. Buffer diffs while not live.
 *  2. Fetch the snapshot (`limit=1000`) only after the first diff has been buffered, so the
 *     snapshot is newer than the start of the buffer; diffs keep being buffered meanwhile.
 *  3. Drop buffered events with `u < lastUpdateId` (spot drops `u <= L`; futures keeps `u == L`).
 *  4. The first applied event must satisfy `U <= lastUpdateId <= u`. If the first remaining
 *     event has `U > lastUpdateId` the snapshot is older than the stream: fetch a new one.
 *     `pu` is NOT checked on that first event.
 *  5. Every later event's `pu` must equal the previous event's `u`; otherwise resync (book
 *     cleared, new snapshot). Any reconnect also means resync, as does a crossed book.
 *
 * Subscribers never see a view built on a broken chain: `onUpdate` fires only while live, after
 * a diff was applied in sequence and the book is not crossed.
 */
import { LocalBook } from './local-book.js';
import type { PriceLevel } from './local-book.js';

/** A `depthUpdate` event (`<symbol>@depth`, `@depth@100ms`, `@depth@500ms`). */
export interface DepthDiff {
  /** event time (ms) */
  E: number;
  /** transaction time (ms) */
  T: number;
  /** first update id in the event */
  U: number;
  /** final update id in the event */
  u: number;
  /** final update id of the previous event for this symbol (futures continuity field) */
  pu: number;
  /** bid levels, absolute quantities; may be empty */
  b: readonly PriceLevel[];
  /** ask levels, absolute quantities; may be empty */
  a: readonly PriceLevel[];
}

/** `GET /fapi/v1/depth` (or WS-API `depth`) response. */
export interface DepthSnapshot {
  lastUpdateId: number;
  E?: number;
  T?: number;
  bids: readonly PriceLevel[];
  asks: readonly PriceLevel[];
}

/** Fetches a `limit=1000` snapshot (the futures maximum) for `symbol` (upper case). */
export type SnapshotFetcher = (symbol: string) => Promise<DepthSnapshot>;

/** Wall clock in milliseconds; injectable so tests control time. */
export interface SyncClock {
  now(): number;
}

/** Timer functions; injectable so tests can fire retries without real waiting. */
export interface SyncTimers {
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

/**
 * - `idle`: created, no diff seen yet.
 * - `syncing`: first synchronisation: buffering diffs, snapshot requested or awaiting a bridging
 *   event.
 * - `live`: the book follows the stream; `onUpdate` fires after each applied diff.
 * - `resyncing`: like `syncing`, after a resync (gap, reconnect, crossed book, stale snapshot).
 */
export type BookSyncState = 'idle' | 'syncing' | 'live' | 'resyncing';

/** What `onUpdate` receives: read-only access to the synchronizer's book and counters. */
export interface BookView {
  readonly symbol: string;
  readonly book: LocalBook;
  /** update id the book reflects: the snapshot's `lastUpdateId`, then each applied `u` */
  readonly lastUpdateId: number;
  /** `E` of the last applied event (or of the snapshot) */
  readonly eventTime: number;
  /** `T` of the last applied event (or of the snapshot) */
  readonly transactionTime: number;
}

/** Constructor options of {@link BookSync}. */
export interface BookSyncOptions {
  /** upper-case symbol, passed to the fetcher */
  symbol: string;
  fetchSnapshot: SnapshotFetcher;
  clock?: SyncClock;
  timers?: SyncTimers;
  /** called each time the book becomes live (after the first sync and after every resync) */
  onLive?: (view: BookView) => void;
  /** called after every applied diff while live (and once on becoming live) */
  onUpdate?: (view: BookView) => void;
  /** called when the book is thrown away and rebuilt; `reason` is for logs */
  onResync?: (reason: string) => void;
  /** called when a snapshot fetch fails (it is retried after `retryInMs`) */
  onFetchError?: (error: unknown, attempt: number, retryInMs: number) => void;
  /** called when a callback throws inside an asynchronous continuation; default console.error */
  onError?: (error: unknown) => void;
  /** first retry delay after a failed fetch, doubled per failure (default 500 ms) */
  retryBaseMs?: number;
  /** retry delay cap (default 30 s) */
  retryMaxMs?: number;
  /**
   * Minimum spacing between two snapshot requests for this symbol (default 1000 ms): a
   * `limit=1000` snapshot costs 20 weight, and a gap storm must not burn the IP's budget.
   */
  minFetchIntervalMs?: number;
  /**
   * Levels kept per side (default 1000, the snapshot depth). The tail is trimmed once a side
   * exceeds 1.25 × this, so trimming cost is amortised.
   */
  maxLevels?: number;
  /** Buffered diffs kept while not live (default 10 000); the oldest are dropped beyond it. */
  maxBuffered?: number;
}

const defaultTimers: SyncTimers = {
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * Keeps one symbol's local book in sync with Binance USDⓈ-M diff depth events (see module
 * comment for the rules). Feed every depth event of the symbol to {@link onDiff}, in arrival
 * order; call {@link resync} after a reconnect.
 */
export class BookSync implements BookView {
  readonly symbol: string;
  /** The local book. Only meaningful while {@link live}; cleared on every resync. */
  readonly book = new LocalBook();
  state: BookSyncState = 'idle';
  /** Number of times the book was thrown away and rebuilt (including stale snapshots). */
  resyncCount = 0;
  /** Snapshot requests started (including retries). */
  snapshotFetches = 0;
  /** Buffered events dropped because `u < lastUpdateId` of the snapshot. */
  droppedEvents = 0;
  /** Events applied to the book (buffered catch-up and live). */
  appliedEvents = 0;
  lastUpdateId = 0;
  eventTime = 0;
  transactionTime = 0;

  private readonly fetcher: SnapshotFetcher;
  private readonly clock: SyncClock;
  private readonly timers: SyncTimers;
  private readonly opts: BookSyncOptions;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly minFetchIntervalMs: number;
  private readonly maxLevels: number;
  private readonly trimAbove: number;
  private readonly maxBuffered: number;

  private buffer: DepthDiff[] = [];
  /** snapshot received, waiting for an event with `u >= lastUpdateId` */
  private snapshot: DepthSnapshot | undefined;
  /** a fetch is in flight or scheduled for the current generation */
  private fetching = false;
  /** bumped on every resync; a snapshot answer from an older generation is ignored */
  private generation = 0;
  private timer: unknown = undefined;
  private failures = 0;
  private lastFetchAt = -Infinity;
  private closed = false;

  constructor(options: BookSyncOptions) {
    this.opts = options;
    this.symbol = options.symbol;
    this.fetcher = options.fetchSnapshot;
    this.clock = options.clock ?? { now: () => Date.now() };
    this.timers = options.timers ?? defaultTimers;
    this.retryBaseMs = options.retryBaseMs ?? 500;
    this.retryMaxMs = options.retryMaxMs ?? 30_000;
    this.minFetchIntervalMs = options.minFetchIntervalMs ?? 1000;
    this.maxLevels = options.maxLevels ?? 1000;
    this.trimAbove = Math.ceil(this.maxLevels * 1.25);
    this.maxBuffered = options.maxBuffered ?? 10_000;
  }

  /** True while the book follows the stream and may be shown to subscribers. */
  get live(): boolean {
    return this.state === 'live';
  }

  /** Diffs currently buffered (not live). */
  get bufferedCount(): number {
    return this.buffer.length;
  }

  /** Feeds one depth event of this symbol, in arrival order. */
  onDiff(diff: DepthDiff): void {
    if (this.closed) return;
    if (this.state === 'live') {
      // Rule 5: the chain must be unbroken. The event that reveals the gap is itself valid
      // data, so it starts the new buffer (and triggers the new snapshot at once).
      if (diff.pu !== this.lastUpdateId) {
        this.restart(`pu gap: expected pu=${this.lastUpdateId}, got pu=${diff.pu}`, [diff]);
        return;
      }
      if (!this.applyOne(diff)) return;
      this.opts.onUpdate?.(this);
      return;
    }
    if (this.state === 'idle') this.state = 'syncing';
    this.buffer.push(diff);
    if (this.buffer.length > this.maxBuffered) this.buffer.shift();
    if (this.snapshot) this.trySync();
    else if (!this.fetching) this.requestSnapshot();
  }

  /**
   * Throws the book away and starts over (reconnect, operator request). Buffered events are
   * discarded; the next diff triggers a fresh snapshot (fetched after a diff, rule 2). A no-op
   * while `idle`.
   */
  resync(reason: string): void {
    if (this.closed || this.state === 'idle') return; // nothing held, nothing to rebuild
    this.restart(reason, []);
  }

  /** Stops timers and ignores any further input or pending snapshot. */
  close(): void {
    this.closed = true;
    this.generation++;
    this.cancelTimer();
    this.buffer = [];
    this.snapshot = undefined;
    this.fetching = false;
  }

  private restart(reason: string, keep: DepthDiff[]): void {
    this.generation++;
    this.cancelTimer();
    this.fetching = false;
    this.failures = 0;
    this.snapshot = undefined;
    this.buffer = keep;
    this.book.clear();
    this.lastUpdateId = 0;
    this.state = 'resyncing';
    this.resyncCount++;
    this.opts.onResync?.(reason);
    if (keep.length > 0 && !this.closed) this.requestSnapshot();
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) {
      this.timers.clearTimer(this.timer);
      this.timer = undefined;
    }
  }

  /** Starts a fetch now, or schedules it to honour `minFetchIntervalMs`. */
  private requestSnapshot(): void {
    this.fetching = true;
    const wait = this.lastFetchAt + this.minFetchIntervalMs - this.clock.now();
    if (wait > 0) this.schedule(() => this.startFetch(), wait);
    else this.startFetch();
  }

  private schedule(fn: () => void, ms: number): void {
    this.cancelTimer();
    const generation = this.generation;
    this.timer = this.timers.setTimer(() => {
      this.timer = undefined;
      if (generation === this.generation && !this.closed) fn();
    }, ms);
  }

  private startFetch(): void {
    const generation = this.generation;
    this.lastFetchAt = this.clock.now();
    this.snapshotFetches++;
    let promise: Promise<DepthSnapshot>;
    try {
      promise = this.fetcher(this.symbol);
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise
      .then(
        (snapshot) => {
          if (generation !== this.generation || this.closed) return; // stale answer
          this.fetching = false;
          this.failures = 0;
          this.snapshot = snapshot;
          this.trySync();
        },
        (error: unknown) => {
          if (generation !== this.generation || this.closed) return;
          this.failures++;
          const delay = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** (this.failures - 1));
          this.opts.onFetchError?.(error, this.failures, delay);
          this.schedule(() => this.startFetch(), delay);
        },
      )
      .catch((error: unknown) => {
        if (this.opts.onError) this.opts.onError(error);
        else console.error(`BookSync ${this.symbol}:`, error);
      });
  }

  /** Rules 3–5 on the buffer, once a snapshot is in hand. */
  private trySync(): void {
    const snapshot = this.snapshot;
    if (!snapshot) return;
    const L = snapshot.lastUpdateId;
    let first = 0;
    while (first < this.buffer.length && this.buffer[first]!.u < L) first++; // rule 3
    if (first > 0) {
      this.droppedEvents += first;
      this.buffer.splice(0, first);
    }
    const head = this.buffer[0];
    if (!head) return; // wait for an event that reaches L
    if (head.U > L) {
      // Rule 4 cannot hold: the snapshot is older than the stream. Keep the buffer (it is
      // still a valid chain) and fetch a newer snapshot.
      this.restart(`snapshot older than stream: lastUpdateId=${L} < U=${head.U}`, this.buffer);
      return;
    }
    try {
      this.book.loadSnapshot(snapshot.bids, snapshot.asks);
    } catch (error) {
      this.restart(`bad snapshot: ${String(error)}`, this.buffer);
      return;
    }
    this.snapshot = undefined;
    this.lastUpdateId = L;
    this.eventTime = snapshot.E ?? 0;
    this.transactionTime = snapshot.T ?? 0;
    const pending = this.buffer;
    this.buffer = [];
    for (let i = 0; i < pending.length; i++) {
      const diff = pending[i]!;
      // no pu check on the first applied event (rule 4); every later one must chain (rule 5)
      if (i > 0 && diff.pu !== this.lastUpdateId) {
        this.restart(
          `pu gap in buffer: expected pu=${this.lastUpdateId}, got pu=${diff.pu}`,
          pending.slice(i),
        );
        return;
      }
      if (!this.applyOne(diff)) return;
    }
    this.state = 'live';
    this.opts.onLive?.(this);
    if (this.state === 'live') this.opts.onUpdate?.(this);
  }

  /** Applies one in-sequence diff; resyncs and returns false on bad data or a crossed book. */
  private applyOne(diff: DepthDiff): boolean {
    try {
      this.book.applyLevels('bid', diff.b);
      this.book.applyLevels('ask', diff.a);
    } catch (error) {
      this.restart(`bad diff u=${diff.u}: ${String(error)}`, []);
      return false;
    }
    this.appliedEvents++;
    this.lastUpdateId = diff.u;
    this.eventTime = diff.E;
    this.transactionTime = diff.T;
    if (this.book.isCrossed()) {
      this.restart(`crossed book after u=${diff.u}`, []);
      return false;
    }
    if (this.book.bidCount > this.trimAbove || this.book.askCount > this.trimAbove) {
      this.book.trim(this.maxLevels);
    }
    return true;
  }
}
