import { describe, expect, it } from 'vitest';
import { DEFAULT_SYMBOLS, Market, type MarketOptions } from '../src/simulator/market.js';
import type { DepthSnapshot, StreamSink } from '../src/simulator/types.js';

// The market is driven by step() with a fake clock (50 ms per step, the default tickMs), so
// the diff windows close every 2 (100 ms), 5 (250 ms) and 10 (500 ms) steps.

type Level = [string, string];

interface DepthEvent {
  e: string;
  E: number;
  T: number;
  s: string;
  U: number;
  u: number;
  pu: number;
  b: Level[];
  a: Level[];
}

interface AggTradeEvent {
  e: string;
  a: number;
  s: string;
  p: string;
  q: string;
  f: number;
  l: number;
  m: boolean;
}

interface Captured {
  stream: string;
  payload: string;
}

/** Wants every stream and keeps every event in order. */
class CaptureSink implements StreamSink {
  readonly events: Captured[] = [];
  wants(): boolean {
    return true;
  }
  publish(stream: string, payload: string): void {
    this.events.push({ stream, payload });
  }
  parsed<T>(stream: string, from = 0): T[] {
    return this.events
      .slice(from)
      .filter((ev) => ev.stream === stream)
      .map((ev) => JSON.parse(ev.payload) as T);
  }
}

const START_MS = Date.UTC(2026, 0, 5, 10, 0, 0);

function setup(seed: number, extra: Partial<MarketOptions> = {}) {
  let now = START_MS;
  const sink = new CaptureSink();
  const market = new Market({ seed, clock: { now: () => now }, sink, ...extra });
  const step = (n: number): void => {
    for (let i = 0; i < n; i++) {
      now += 50;
      market.step();
    }
  };
  return { market, sink, step };
}

/** Integer units of a decimal string with the given number of decimals. */
function units(text: string, decimals: number): bigint {
  const [whole = '', frac = ''] = text.split('.');
  return BigInt(whole + frac.padEnd(decimals, '0'));
}

function formatUnits(value: bigint, decimals: number): string {
  if (decimals === 0) return value.toString();
  const digits = value.toString().padStart(decimals + 1, '0');
  return `${digits.slice(0, -decimals)}.${digits.slice(-decimals)}`;
}

const SPEC = new Map(DEFAULT_SYMBOLS.map((s) => [s.symbol, s]));
function decimals(symbol: string): { pd: number; qd: number; tick: bigint; step: bigint } {
  const spec = SPEC.get(symbol)!;
  const pd = Math.max(spec.pricePrecision, spec.tickSize.split('.')[1]?.length ?? 0);
  const qd = Math.max(spec.quantityPrecision, spec.stepSize.split('.')[1]?.length ?? 0);
  return { pd, qd, tick: units(spec.tickSize, pd), step: units(spec.stepSize, qd) };
}

/**
 * An independent local book following Binance's futures rules (reference §5): drop u < L, the
 * first applied event must have U <= L <= u, then pu == previous u; quantity 0 deletes.
 */
class ReferenceBook {
  private readonly bids = new Map<string, string>();
  private readonly asks = new Map<string, string>();
  private readonly L: number;
  lastU: number | undefined;
  applied = 0;
  gaps = 0;

  constructor(snapshot: DepthSnapshot) {
    for (const [p, q] of snapshot.bids) this.bids.set(p, q);
    for (const [p, q] of snapshot.asks) this.asks.set(p, q);
    this.L = snapshot.lastUpdateId;
  }

  apply(ev: DepthEvent): void {
    if (this.lastU === undefined) {
      if (ev.u < this.L) return;
      if (ev.U > this.L) throw new Error(`no bridging event: U ${ev.U} > L ${this.L}`);
    } else if (ev.pu !== this.lastU) {
      this.gaps++;
      throw new Error(`pu gap: pu ${ev.pu} != previous u ${this.lastU}`);
    }
    for (const [p, q] of ev.b) {
      if (Number(q) === 0) this.bids.delete(p);
      else this.bids.set(p, q);
    }
    for (const [p, q] of ev.a) {
      if (Number(q) === 0) this.asks.delete(p);
      else this.asks.set(p, q);
    }
    this.lastU = ev.u;
    this.applied++;
  }

  sorted(): { bids: Level[]; asks: Level[] } {
    return {
      bids: [...this.bids].sort((x, y) => Number(y[0]) - Number(x[0])),
      asks: [...this.asks].sort((x, y) => Number(x[0]) - Number(y[0])),
    };
  }
}

describe('simulator market: determinism', () => {
  it('the same seed gives the same events; another seed does not', () => {
    const a = setup(5);
    const b = setup(5);
    const c = setup(6);
    for (const m of [a, b, c]) {
      m.step(150);
      m.market.executeTaker('BTCUSDT', 'BUY', '2.500');
      m.step(150);
    }
    expect(a.sink.events.length).toBeGreaterThan(1_000);
    expect(b.sink.events).toEqual(a.sink.events);
    expect(c.sink.events).not.toEqual(a.sink.events);
    expect(b.market.bookForTest('ETHUSDT')).toEqual(a.market.bookForTest('ETHUSDT'));
  });

  it('book states do not depend on who is subscribed', () => {
    const wanted = setup(9);
    let now = START_MS;
    const silent = new Market({
      seed: 9,
      clock: { now: () => now },
      sink: { wants: () => false, publish: () => undefined },
    });
    wanted.step(200);
    for (let i = 0; i < 200; i++) {
      now += 50;
      silent.step();
    }
    for (const s of silent.symbols()) {
      expect(silent.bookForTest(s)).toEqual(wanted.market.bookForTest(s));
    }
  });
});

describe('simulator market: book invariants', () => {
  for (const highRate of [false, true]) {
    it(`holds after many steps (highRate ${highRate})`, () => {
      const { market, step } = setup(21, { highRate });
      for (let round = 0; round < 8; round++) {
        step(highRate ? 75 : 400);
        for (const symbol of market.symbols()) {
          const { pd, qd, tick, step: lot } = decimals(symbol);
          const book = market.bookForTest(symbol);
          expect(book.bids).toHaveLength(1_000);
          expect(book.asks).toHaveLength(1_000);
          const priceRe = new RegExp(`^\\d+${pd > 0 ? `\\.\\d{${pd}}` : ''}$`);
          const qtyRe = new RegExp(`^\\d+${qd > 0 ? `\\.\\d{${qd}}` : ''}$`);
          // Plain checks collected into one assertion: 6000 levels per round.
          const problems: string[] = [];
          const check = (levels: Level[], descending: boolean): void => {
            let previous: bigint | undefined;
            for (const [p, q] of levels) {
              if (!priceRe.test(p) || !qtyRe.test(q)) problems.push(`format ${p} ${q}`);
              const price = units(p, pd);
              const qty = units(q, qd);
              if (price % tick !== 0n) problems.push(`off the tick grid: ${p}`);
              if (qty % lot !== 0n) problems.push(`off the step grid: ${q}`);
              if (qty <= 0n || price <= 0n) problems.push(`not positive: ${p} ${q}`);
              if (previous !== undefined && (descending ? price >= previous : price <= previous)) {
                problems.push(`out of order: ${p}`);
              }
              previous = price;
            }
          };
          check(book.bids, true);
          check(book.asks, false);
          expect(problems, symbol).toEqual([]);
          expect(units(book.bids[0]![0], pd) < units(book.asks[0]![0], pd)).toBe(true);
        }
      }
    });
  }
});

describe('simulator market: snapshot/diff agreement', () => {
  it('snapshot + diffs rebuild the exact book on every speed', () => {
    const { market, sink, step } = setup(11);
    const speeds = ['@depth@100ms', '@depth', '@depth@500ms'];
    interface Tracker {
      symbol: string;
      stream: string;
      ref: ReferenceBook;
      consumed: number;
    }
    const trackers: Tracker[] = [];
    const snapshotAll = (): void => {
      for (const symbol of market.symbols()) {
        const snapshot = market.snapshot(symbol, 1_000);
        for (const speed of speeds) {
          // Buffered since the market started: the bridging event may precede the snapshot.
          trackers.push({
            symbol,
            stream: symbol.toLowerCase() + speed,
            ref: new ReferenceBook(snapshot),
            consumed: 0,
          });
        }
      }
    };
    const feed = (): void => {
      for (const t of trackers) {
        const events = sink.events;
        for (; t.consumed < events.length; t.consumed++) {
          const ev = events[t.consumed]!;
          if (ev.stream === t.stream) t.ref.apply(JSON.parse(ev.payload) as DepthEvent);
        }
      }
    };
    const compare = (): void => {
      expect(market.steps % 10).toBe(0); // every speed's window has just closed
      for (const t of trackers) {
        const book = market.bookForTest(t.symbol);
        expect(t.ref.sorted(), `${t.stream} book`).toEqual({ bids: book.bids, asks: book.asks });
        expect(t.ref.lastU, `${t.stream} last u`).toBe(book.lastUpdateId);
      }
    };

    step(40);
    snapshotAll(); // right after every window closed: the bridging event has u == L
    step(7);
    snapshotAll(); // in the middle of every window
    step(3);
    market.executeTaker('ETHUSDT', 'SELL', '40.000');
    snapshotAll(); // right after a taker order, book short of 1000 levels
    step(10);
    for (let checkpoint = 0; checkpoint < 6; checkpoint++) {
      feed();
      compare();
      market.executeTaker('BTCUSDT', checkpoint % 2 === 0 ? 'BUY' : 'SELL', '3.000');
      step(3);
      market.executeTaker('SOLUSDT', 'BUY', '2000');
      step(47);
    }
    feed();
    compare();
    for (const t of trackers) {
      expect(t.ref.gaps).toBe(0);
      expect(t.ref.applied).toBeGreaterThan(20);
    }
  });

  it('partial depth carries the top of the book and the same ids', () => {
    const { market, sink, step } = setup(12);
    step(100);
    const top5 = sink.parsed<DepthEvent>('btcusdt@depth5@100ms');
    const diffs = sink.parsed<DepthEvent>('btcusdt@depth@100ms');
    expect(top5.length).toBe(diffs.length);
    const last = top5.at(-1)!;
    expect(last.e).toBe('depthUpdate');
    expect(last.u).toBe(diffs.at(-1)!.u);
    expect(last.pu).toBe(diffs.at(-1)!.pu);
    const book = market.bookForTest('BTCUSDT');
    expect(last.b).toEqual(book.bids.slice(0, 5));
    expect(last.a).toEqual(book.asks.slice(0, 5));
    expect(sink.parsed<DepthEvent>('ethusdt@depth20').at(-1)!.b).toHaveLength(20);
    const snap = market.snapshot('SOLUSDT', 5);
    expect(snap.bids).toHaveLength(5);
    expect(snap.asks).toHaveLength(5);
    expect(Number(snap.bids[0]![0])).toBeGreaterThan(Number(snap.bids[4]![0]));
    expect(Number(snap.asks[0]![0])).toBeLessThan(Number(snap.asks[4]![0]));
  });

  it('skipNextDiff breaks each pu chain exactly once', () => {
    const { market, sink, step } = setup(13);
    step(30);
    market.skipNextDiff('BTCUSDT');
    step(60);
    const breaks = (stream: string): number => {
      const events = sink.parsed<DepthEvent>(stream);
      let count = 0;
      for (let i = 1; i < events.length; i++) {
        const prev = events[i - 1]!;
        const ev = events[i]!;
        expect(ev.U).toBeGreaterThan(prev.u);
        expect(ev.pu).toBeGreaterThanOrEqual(prev.u);
        if (ev.pu !== prev.u) count++;
      }
      return count;
    };
    for (const speed of ['@depth@100ms', '@depth', '@depth@500ms']) {
      expect(breaks(`btcusdt${speed}`), speed).toBe(1);
      expect(breaks(`ethusdt${speed}`), speed).toBe(0);
    }
  });
});

describe('simulator market: trades and tickers', () => {
  it('aggTrades hit resting levels, ids increase, tickers add up', () => {
    const { market, sink, step } = setup(17);
    interface Totals {
      volume: bigint;
      quote: number;
      count: number;
      high: number;
      low: number;
      first: AggTradeEvent | undefined;
      last: AggTradeEvent | undefined;
    }
    const totals = new Map<string, Totals>();
    let from = sink.events.length;
    for (let i = 0; i < 1_200; i++) {
      const before = new Map(market.symbols().map((s) => [s, market.bookForTest(s)]));
      step(1);
      for (const ev of sink.events.slice(from)) {
        if (!ev.stream.endsWith('@aggTrade')) continue;
        const t = JSON.parse(ev.payload) as AggTradeEvent;
        const book = before.get(t.s)!;
        const level = (t.m ? book.bids : book.asks).find(([p]) => p === t.p);
        expect(level, `${t.s} ${t.p} was in the book`).toBeDefined();
        expect(Number(t.q)).toBeLessThanOrEqual(Number(level![1]));
        const tot = totals.get(t.s) ?? {
          volume: 0n,
          quote: 0,
          count: 0,
          high: -Infinity,
          low: Infinity,
          first: undefined,
          last: undefined,
        };
        if (tot.last) {
          expect(t.a).toBe(tot.last.a + 1);
          expect(t.f).toBe(tot.last.l + 1);
        }
        expect(t.l).toBeGreaterThanOrEqual(t.f);
        tot.first ??= t;
        tot.last = t;
        tot.volume += units(t.q, decimals(t.s).qd);
        tot.quote += Number(t.p) * Number(t.q);
        tot.count += t.l - t.f + 1;
        tot.high = Math.max(tot.high, Number(t.p));
        tot.low = Math.min(tot.low, Number(t.p));
        totals.set(t.s, tot);
      }
      from = sink.events.length;
    }
    expect(market.steps % 40).toBe(0); // a @ticker event was just computed
    for (const symbol of market.symbols()) {
      const tot = totals.get(symbol)!;
      expect(tot.count, symbol).toBeGreaterThan(50);
      const t = market.ticker24h(symbol)!;
      expect(t.volume).toBe(formatUnits(tot.volume, decimals(symbol).qd));
      expect(Math.abs(Number(t.quoteVolume) - tot.quote)).toBeLessThan(0.01);
      expect(t.count).toBe(tot.count);
      expect(t.firstId).toBe(tot.first!.f);
      expect(t.lastId).toBe(tot.last!.l);
      expect(Number(t.highPrice)).toBe(tot.high);
      expect(Number(t.lowPrice)).toBe(tot.low);
      expect(t.lastPrice).toBe(tot.last!.p);
      expect(t.openPrice).toBe(tot.first!.p);
      expect(t.lastQty).toBe(tot.last!.q);
      const wap = tot.quote / Number(t.volume);
      expect(Math.abs(Number(t.weightedAvgPrice) - wap)).toBeLessThan(0.01);
      const stream = sink.parsed<Record<string, unknown>>(`${symbol.toLowerCase()}@ticker`).at(-1)!;
      expect(stream).toMatchObject({
        s: symbol,
        c: t.lastPrice,
        v: t.volume,
        q: t.quoteVolume,
        h: t.highPrice,
        l: t.lowPrice,
        o: t.openPrice,
        n: t.count,
        F: t.firstId,
        L: t.lastId,
      });
    }
  });

  it('before any trade the ticker shows the initial price and no trades', () => {
    const market = new Market({ seed: 1, tradeRatePerSec: 0 });
    const t = market.ticker24h('ETHUSDT')!;
    expect(t).toMatchObject({
      lastPrice: '3500.00',
      openPrice: '3500.00',
      highPrice: '3500.00',
      volume: '0.000',
      count: 0,
      firstId: -1,
      lastId: -1,
    });
    expect(market.ticker24h('NOPEUSDT')).toBeUndefined();
  });

  it('executeTaker sweeps the book, returns fills, then the book refills', () => {
    const { market, sink, step } = setup(19);
    step(20);
    const before = market.bookForTest('ETHUSDT');
    const { pd, qd } = decimals('ETHUSDT');
    const top = before.asks.slice(0, 4).map(([p, q]) => [units(p, pd), units(q, qd)] as const);
    const half = top[3]![1] / 2n;
    const qty = top[0]![1] + top[1]![1] + top[2]![1] + half;
    const mark = sink.events.length;
    const fills = market.executeTaker('ETHUSDT', 'BUY', formatUnits(qty, qd));
    expect(fills).toHaveLength(4);
    fills.forEach((fill, i) => {
      expect(fill.price).toBe(before.asks[i]![0]);
      const filled = i < 3 ? top[i]![1] : half;
      expect(fill.quantity).toBe(formatUnits(filled, qd));
      expect(fill.quote).toBe(formatUnits(top[i]![0] * filled, pd + qd));
      if (i > 0) expect(fill.tradeId).toBe(fills[i - 1]!.tradeId + 1);
    });
    const after = market.bookForTest('ETHUSDT');
    expect(after.asks).toHaveLength(997);
    expect(after.asks[0]).toEqual([before.asks[3]![0], formatUnits(top[3]![1] - half, qd)]);
    expect(after.bids).toEqual(before.bids);
    expect(after.lastUpdateId).toBeGreaterThan(before.lastUpdateId);
    const trades = sink.parsed<AggTradeEvent>('ethusdt@aggTrade', mark);
    expect(trades.map((t) => t.l)).toEqual(fills.map((f) => f.tradeId));
    expect(trades.every((t) => !t.m)).toBe(true);
    const ticker = sink.parsed<Record<string, unknown>>('ethusdt@bookTicker', mark).at(-1)!;
    expect(ticker).toMatchObject({
      a: after.asks[0]![0],
      A: after.asks[0]![1],
      u: after.lastUpdateId,
    });

    // A marketable SELL limit stops at its price.
    const bids = after.bids;
    const limitFills = market.executeTaker('ETHUSDT', 'SELL', '100000.000', bids[2]![0]);
    expect(limitFills.map((f) => f.price)).toEqual([bids[0]![0], bids[1]![0], bids[2]![0]]);
    expect(market.bookForTest('ETHUSDT').bids[0]![0]).toBe(bids[3]![0]);
    expect(market.executeTaker('ETHUSDT', 'BUY', '0.000')).toEqual([]);
    expect(() => market.executeTaker('NOPEUSDT', 'BUY', '1')).toThrow(RangeError);

    step(1);
    const refilled = market.bookForTest('ETHUSDT');
    expect(refilled.asks).toHaveLength(1_000);
    expect(refilled.bids).toHaveLength(1_000);
  });
});

describe('simulator market: stream shapes and REST views', () => {
  it('publishes Binance field shapes', () => {
    const { market, sink, step } = setup(23);
    step(120);
    const keysOf = (stream: string): string[] => {
      const ev = sink.events.filter((e) => e.stream === stream).at(-1);
      expect(ev, stream).toBeDefined();
      return Object.keys(JSON.parse(ev!.payload) as object);
    };
    const depthKeys = ['e', 'E', 'T', 's', 'U', 'u', 'pu', 'b', 'a', 'st'];
    expect(keysOf('btcusdt@depth')).toEqual(depthKeys);
    expect(keysOf('btcusdt@depth10@500ms')).toEqual(depthKeys);
    expect(keysOf('btcusdt@bookTicker')).toEqual('e u E T s b B a A st'.split(' '));
    expect(keysOf('ethusdt@aggTrade')).toEqual('e E a s p q nq f l T m st'.split(' '));
    const markKeys = 'e E s p ap i P r T st'.split(' ');
    expect(keysOf('solusdt@markPrice')).toEqual(markKeys);
    expect(keysOf('solusdt@markPrice@1s')).toEqual(markKeys);
    expect(keysOf('btcusdt@ticker')).toEqual('e E s p P w c Q o h l v q O C F L n st'.split(' '));
    expect(keysOf('btcusdt@miniTicker')).toEqual('e E s c o h l v q st'.split(' '));
    expect(keysOf('btcusdt@kline_1m')).toEqual(['e', 'E', 's', 'k']);

    const marks = sink.parsed<{ s: string; p: string; E: number; T: number }[]>('!markPrice@arr');
    expect(marks.at(-1)!.map((m) => m.s)).toEqual(['BTCUSDT', 'ETHUSDT', 'SOLUSDT']);
    const mark = marks.at(-1)![0]!;
    expect(mark.T % (8 * 3_600_000)).toBe(0);
    expect(mark.T).toBeGreaterThan(mark.E);
    expect(mark.T - mark.E).toBeLessThanOrEqual(8 * 3_600_000);
    expect(market.markPrice('BTCUSDT')).toMatch(/^\d+\.\d{8}$/);
    const tickers = sink.parsed<{ e: string }[]>('!ticker@arr');
    expect(tickers.length).toBeGreaterThan(0);
    expect(tickers.at(-1)![0]!.e).toBe('24hrTicker');

    const info = market.exchangeInfoSymbols();
    expect(info.map((s) => s.symbol)).toEqual(['BTCUSDT', 'ETHUSDT', 'SOLUSDT']);
    const sol = info[2]!;
    expect(sol).toMatchObject({ contractType: 'PERPETUAL', status: 'TRADING', pricePrecision: 4 });
    expect(sol.filters.map((f) => f.filterType)).toEqual([
      'PRICE_FILTER',
      'LOT_SIZE',
      'MARKET_LOT_SIZE',
      'MAX_NUM_ORDERS',
      'MIN_NOTIONAL',
      'PERCENT_PRICE',
    ]);
    expect(sol.filters[0]).toMatchObject({ tickSize: '0.0100' });
    expect(sol.filters[1]).toMatchObject({ stepSize: '1' });
    expect(market.hasSymbol('BTCUSDT')).toBe(true);
    expect(market.hasSymbol('btcusdt')).toBe(false);
    expect(market.spec('ETHUSDT')?.tickSize).toBe('0.01');
  });

  it('start() steps on a timer and stop() ends it', async () => {
    const market = new Market({ seed: 2, tickMs: 10 });
    market.start();
    await new Promise((resolve) => setTimeout(resolve, 120));
    market.stop();
    const steps = market.steps;
    expect(steps).toBeGreaterThan(2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(market.steps).toBe(steps);
  });
});
