/**
 * A local copy of one symbol's order book, kept by applying Binance depth levels
 * (reference §5: quantities are absolute, quantity 0 deletes the level, deleting a level that
 * is not held is normal). Used by the gateway's `BookSync` and by the simulator's tests.
 *
 * Layout: per side, three parallel arrays sorted by a numeric key, with the BEST level at the
 * END. Almost all real updates touch levels near the top of the book, so inserting or removing
 * there shifts only a handful of elements, and the top-N view is read from the array tail.
 *
 * - `keys` (Float64Array): `parseFloat(price)` for bids, `-parseFloat(price)` for asks, so both
 *   sides are ascending towards the best level. parseFloat is a safe ordering key because
 *   Binance prices have fewer than 15 significant digits, and it makes "7.6110" and "7.611" the
 *   same level.
 * - `prices` / `quantities`: the decimal strings exactly as last received, never re-formatted
 *   (the API hands Binance's strings through untouched).
 *
 * Updates allocate nothing (except when a side grows past its capacity); the top-N view is
 * built once and cached until that side changes.
 */

/** Which side of the book: bids (buy orders) or asks (sell orders). */
export type BookSide = 'bid' | 'ask';

/** One `[price, quantity]` pair as Binance sends it in `b`/`a`/`bids`/`asks`. */
export type PriceLevel = readonly [price: string, quantity: string];

/** One level of a top-N view. */
export interface BookLevel {
  readonly price: string;
  readonly quantity: string;
}

const EMPTY_VIEW: readonly BookLevel[] = Object.freeze([]);
const INITIAL_CAPACITY = 64;

/** One side: keys ascending, best level last. */
class SideArrays {
  keys = new Float64Array(INITIAL_CAPACITY);
  prices: string[] = [];
  quantities: string[] = [];
  count = 0;
  /** Bumped on every change; never reset, so caches keyed by it stay valid across clear(). */
  version = 0;
  private viewVersion = -1;
  private viewLimit = -1;
  private view: readonly BookLevel[] = EMPTY_VIEW;

  /** +1 for bids (key = price), -1 for asks (key = -price). */
  constructor(readonly sign: 1 | -1) {}

  /** First index whose key is >= `key` (count if none). */
  lowerBound(key: number): number {
    const keys = this.keys;
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keys[mid]! < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  set(price: string, quantity: string): void {
    const p = parseFloat(price);
    const q = parseFloat(quantity);
    // `!(x >= 0)` also rejects NaN: an unparsable string must never enter the sorted arrays.
    if (!(p >= 0) || !(q >= 0)) {
      throw new RangeError(`invalid book level [${price}, ${quantity}]`);
    }
    const key = this.sign * p;
    const n = this.count;
    const i = this.lowerBound(key);
    const found = i < n && this.keys[i] === key;
    if (q === 0) {
      if (found) this.removeAt(i);
      return; // deleting a level we do not hold is normal (reference §5 rule 9)
    }
    if (found) {
      if (this.quantities[i] === quantity && this.prices[i] === price) return;
      this.prices[i] = price;
      this.quantities[i] = quantity;
      this.version++;
      return;
    }
    this.insertAt(i, key, price, quantity);
  }

  private insertAt(i: number, key: number, price: string, quantity: string): void {
    const n = this.count;
    if (n === this.keys.length) {
      const grown = new Float64Array(n * 2);
      grown.set(this.keys);
      this.keys = grown;
    }
    const keys = this.keys;
    if (i < n) keys.copyWithin(i + 1, i, n);
    keys[i] = key;
    const prices = this.prices;
    const quantities = this.quantities;
    prices.push(price);
    quantities.push(quantity);
    for (let j = n; j > i; j--) {
      prices[j] = prices[j - 1]!;
      quantities[j] = quantities[j - 1]!;
    }
    prices[i] = price;
    quantities[i] = quantity;
    this.count = n + 1;
    this.version++;
  }

  private removeAt(i: number): void {
    const n = this.count;
    if (i < n - 1) this.keys.copyWithin(i, i + 1, n);
    const prices = this.prices;
    const quantities = this.quantities;
    for (let j = i; j < n - 1; j++) {
      prices[j] = prices[j + 1]!;
      quantities[j] = quantities[j + 1]!;
    }
    prices.pop();
    quantities.pop();
    this.count = n - 1;
    this.version++;
  }

  clear(): void {
    if (this.count === 0) return;
    this.count = 0;
    this.prices.length = 0;
    this.quantities.length = 0;
    this.version++;
  }

  /** Replaces the whole side; sorts, keeps the last duplicate, skips zero quantities. */
  load(levels: readonly PriceLevel[]): void {
    const entries: { key: number; price: string; quantity: string; seq: number }[] = [];
    for (let seq = 0; seq < levels.length; seq++) {
      const [price, quantity] = levels[seq]!;
      const p = parseFloat(price);
      const q = parseFloat(quantity);
      if (!(p >= 0) || !(q >= 0)) {
        throw new RangeError(`invalid book level [${price}, ${quantity}]`);
      }
      if (q === 0) continue;
      entries.push({ key: this.sign * p, price, quantity, seq });
    }
    entries.sort((x, y) => x.key - y.key || x.seq - y.seq);
    let capacity = INITIAL_CAPACITY;
    while (capacity < entries.length) capacity *= 2;
    if (this.keys.length < capacity) this.keys = new Float64Array(capacity);
    const prices: string[] = [];
    const quantities: string[] = [];
    let n = 0;
    for (const e of entries) {
      if (n > 0 && this.keys[n - 1] === e.key) {
        // same level twice in one snapshot: the later one wins
        prices[n - 1] = e.price;
        quantities[n - 1] = e.quantity;
        continue;
      }
      this.keys[n] = e.key;
      prices.push(e.price);
      quantities.push(e.quantity);
      n++;
    }
    this.prices = prices;
    this.quantities = quantities;
    this.count = n;
    this.version++;
  }

  /** Keeps the best `maxLevels` levels (drops the deep tail at the array head). */
  trim(maxLevels: number): void {
    const drop = this.count - Math.max(0, Math.floor(maxLevels));
    if (drop <= 0) return;
    this.keys.copyWithin(0, drop, this.count);
    this.prices.splice(0, drop);
    this.quantities.splice(0, drop);
    this.count -= drop;
    this.version++;
  }

  best(): [string, string] | undefined {
    const n = this.count;
    if (n === 0) return undefined;
    return [this.prices[n - 1]!, this.quantities[n - 1]!];
  }

  quantityAt(price: string): string | undefined {
    const p = parseFloat(price);
    if (!(p >= 0)) return undefined;
    const key = this.sign * p;
    const i = this.lowerBound(key);
    return i < this.count && this.keys[i] === key ? this.quantities[i] : undefined;
  }

  top(limit: number): readonly BookLevel[] {
    if (this.viewVersion === this.version && this.viewLimit === limit) return this.view;
    const n = this.count;
    const k = Math.max(0, Math.min(Math.floor(limit), n));
    const view: BookLevel[] = new Array<BookLevel>(k);
    for (let j = 0; j < k; j++) {
      view[j] = { price: this.prices[n - 1 - j]!, quantity: this.quantities[n - 1 - j]! };
    }
    this.view = view;
    this.viewVersion = this.version;
    this.viewLimit = limit;
    return view;
  }
}

/**
 * A local order book for one symbol. Invariants: bids strictly descending, asks strictly
 * ascending (by numeric price), no level with a zero quantity.
 *
 * The book does not check update ids; `BookSync` does that (reference §5) and owns the
 * decision to apply a diff.
 */
export class LocalBook {
  private readonly bids = new SideArrays(1);
  private readonly asks = new SideArrays(-1);

  /** Number of bid levels held. */
  get bidCount(): number {
    return this.bids.count;
  }

  /** Number of ask levels held. */
  get askCount(): number {
    return this.asks.count;
  }

  /**
   * Grows whenever the book changes (never decreases, also across `clear()`), so a consumer
   * can tell cheaply whether anything changed since it last looked.
   */
  get version(): number {
    return this.bids.version + this.asks.version;
  }

  /** Empties both sides (a resync starts from a fresh snapshot, reference §5 step 3). */
  clear(): void {
    this.bids.clear();
    this.asks.clear();
  }

  /**
   * Replaces the book with a REST/WS-API `depth` snapshot. Input order does not matter; zero
   * quantities are skipped; a price listed twice keeps its last quantity.
   */
  loadSnapshot(bids: readonly PriceLevel[], asks: readonly PriceLevel[]): void {
    this.bids.load(bids);
    this.asks.load(asks);
  }

  /**
   * Applies the `b` or `a` levels of a depth diff in order. Quantities are absolute; a quantity
   * that parses to 0 ("0", "0.00") deletes the level, and deleting an absent level is a no-op
   * (reference §5 rules 7–9). Throws RangeError on an unparsable or negative number (levels
   * before the bad one stay applied; `BookSync` resyncs in that case).
   */
  applyLevels(side: BookSide, levels: readonly PriceLevel[]): void {
    const s = side === 'bid' ? this.bids : this.asks;
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i]!;
      s.set(level[0], level[1]);
    }
  }

  /** Sets (or, with a zero quantity, deletes) one level. */
  setLevel(side: BookSide, price: string, quantity: string): void {
    (side === 'bid' ? this.bids : this.asks).set(price, quantity);
  }

  /** Highest bid as `[price, quantity]` strings, or undefined when there are no bids. */
  bestBid(): [string, string] | undefined {
    return this.bids.best();
  }

  /** Lowest ask as `[price, quantity]` strings, or undefined when there are no asks. */
  bestAsk(): [string, string] | undefined {
    return this.asks.best();
  }

  /** The quantity string held at `price` (numeric match), or undefined. */
  quantityAt(side: BookSide, price: string): string | undefined {
    return (side === 'bid' ? this.bids : this.asks).quantityAt(price);
  }

  /**
   * The best `n` levels of one side, best first (fewer if the side is shorter). The returned
   * array is cached and shared until that side changes: treat it as immutable.
   */
  top(side: BookSide, n: number): readonly BookLevel[] {
    return (side === 'bid' ? this.bids : this.asks).top(n);
  }

  /**
   * True when the best bid is at or above the best ask. A correctly maintained Binance book is
   * never crossed or locked, so this means the local copy is wrong and must be resynced.
   */
  isCrossed(): boolean {
    const nb = this.bids.count;
    const na = this.asks.count;
    if (nb === 0 || na === 0) return false;
    return this.bids.keys[nb - 1]! >= -this.asks.keys[na - 1]!;
  }

  /**
   * Drops all but the best `maxLevels` levels per side. A `limit=1000` snapshot only knows
   * 1000 levels per side, so levels far from the top learned later are partial truth
   * (reference §5 notes); trimming also bounds memory.
   */
  trim(maxLevels: number): void {
    this.bids.trim(maxLevels);
    this.asks.trim(maxLevels);
  }
}
