import { loadCapture, type Capture } from './capture.js';
import type { Clock, DepthSnapshot, MarketDataSource, StreamSink } from './types.js';

export interface ReplayOptions {
  /** A capture folder in cryptofeed's raw format (see test/fixtures/binance-real/README.md). */
  dir: string;
  sink: StreamSink;
  clock: Clock;
  /** 1 = the recorded pace, 10 = ten times faster, 0 = as fast as the sockets take it. */
  speed: number;
  /** Wait this long after the first subscriber so the rest of a client's subscriptions land. */
  startDelayMs: number;
  /** Start on the first subscriber (true) or only on `start()`. */
  autoStart: boolean;
}

/**
 * Replays a recorded Binance capture: the recorded REST snapshots over `/fapi/v1/depth`, the
 * recorded frames on their streams (each on its routed path) at real pace or faster. A client
 * that subscribes, buffers and then fetches the snapshot meets exactly what it met on Binance.
 */
export class ReplaySource implements MarketDataSource {
  private readonly capture: Capture;
  private readonly symbolSet: Set<string>;
  private next = 0;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private armed = false;
  private startedAt = 0;

  constructor(private readonly options: ReplayOptions) {
    this.capture = loadCapture(options.dir);
    this.symbolSet = new Set(this.capture.snapshots.keys());
    for (const f of this.capture.frames) {
      const sym = /^([a-z0-9_]+)@/.exec(f.stream)?.[1];
      if (sym) this.symbolSet.add(sym.toUpperCase());
    }
  }

  /** Called by the stream server on each subscription; the first one arms the replay. */
  onFirstSubscriber(): void {
    if (!this.options.autoStart || this.armed) return;
    this.armed = true;
    setTimeout(() => this.start(), this.options.startDelayMs).unref();
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.armed = true;
    this.startedAt = this.options.clock.now();
    this.pump();
  }

  private pump(): void {
    const frames = this.capture.frames;
    const first = frames[0]?.recvTime ?? 0;
    const speed = this.options.speed;
    const elapsed = this.options.clock.now() - this.startedAt;
    let sent = 0;
    while (this.next < frames.length) {
      const f = frames[this.next]!;
      const due = speed > 0 ? ((f.recvTime - first) * 1000) / speed : 0;
      if (due > elapsed || sent >= 500) break;
      this.options.sink.publish(f.stream, dataOf(f.raw));
      this.next += 1;
      sent += 1;
    }
    if (this.next >= frames.length) return;
    const f = frames[this.next]!;
    const wait = speed > 0 ? Math.max(0, ((f.recvTime - first) * 1000) / speed - elapsed) : 0;
    this.timer = setTimeout(() => this.pump(), Math.min(wait, 1000));
  }

  progress(): { frames: number; sent: number; done: boolean } {
    const total = this.capture.frames.length;
    return { frames: total, sent: this.next, done: this.next >= total };
  }

  exchangeInfoSymbols(): object[] {
    const info = this.capture.exchangeInfo as { symbols?: { symbol?: string }[] } | undefined;
    const listed = info?.symbols?.filter((s) => this.symbolSet.has(s.symbol ?? '')) ?? [];
    const seen = new Set(listed.map((s) => s.symbol));
    const synthesized = [...this.symbolSet]
      .filter((s) => !seen.has(s))
      .map((symbol) => ({
        symbol,
        pair: symbol,
        contractType: 'PERPETUAL',
        status: 'TRADING',
        baseAsset: symbol.replace(/USDT$/, ''),
        quoteAsset: 'USDT',
        marginAsset: 'USDT',
        pricePrecision: 5,
        quantityPrecision: 1,
        filters: [
          {
            filterType: 'PRICE_FILTER',
            minPrice: '0.00001',
            maxPrice: '100000',
            tickSize: '0.00001',
          },
          { filterType: 'LOT_SIZE', minQty: '0.1', maxQty: '1000000', stepSize: '0.1' },
        ],
      }));
    // Replayed symbols trade now, whatever their status was in the recorded exchangeInfo.
    return [...listed.map((s) => ({ ...s, status: 'TRADING' })), ...synthesized];
  }

  hasSymbol(symbol: string): boolean {
    return this.symbolSet.has(symbol);
  }

  snapshot(symbol: string, limit: number): DepthSnapshot {
    const snap = this.capture.snapshots.get(symbol);
    if (!snap) {
      const now = this.options.clock.now();
      return { lastUpdateId: 0, E: now, T: now, bids: [], asks: [] };
    }
    return {
      lastUpdateId: snap.lastUpdateId,
      E: snap.E,
      T: snap.T,
      bids: snap.bids.slice(0, limit),
      asks: snap.asks.slice(0, limit),
    };
  }

  ticker24h(): object | undefined {
    return undefined;
  }

  markPrice(symbol: string): string {
    const snap = this.capture.snapshots.get(symbol);
    return snap?.bids[0]?.[0] ?? '0';
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}

/** The `data` member of a combined frame, as the exact recorded text. */
function dataOf(raw: string): string {
  const at = raw.indexOf('"data":');
  if (at < 0) return raw;
  return raw.slice(at + 7, raw.lastIndexOf('}'));
}
