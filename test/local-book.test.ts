import { describe, expect, it } from 'vitest';
import { LocalBook } from '../src/binance/local-book.js';
import type { BookLevel } from '../src/binance/local-book.js';

const flat = (levels: readonly BookLevel[]): [string, string][] =>
  levels.map((l) => [l.price, l.quantity]);

describe('LocalBook', () => {
  it('keeps bids descending and asks ascending whatever the input order', () => {
    const book = new LocalBook();
    book.loadSnapshot(
      [
        ['100.5', '1'],
        ['101.0', '2'],
        ['99.9', '3'],
      ],
      [
        ['103.0', '4'],
        ['102.0', '5'],
        ['102.5', '6'],
      ],
    );
    book.applyLevels('bid', [
      ['100.7', '7'],
      ['98', '8'],
    ]);
    book.applyLevels('ask', [
      ['101.5', '9'],
      ['104', '10'],
    ]);
    expect(flat(book.top('bid', 10))).toEqual([
      ['101.0', '2'],
      ['100.7', '7'],
      ['100.5', '1'],
      ['99.9', '3'],
      ['98', '8'],
    ]);
    expect(flat(book.top('ask', 10))).toEqual([
      ['101.5', '9'],
      ['102.0', '5'],
      ['102.5', '6'],
      ['103.0', '4'],
      ['104', '10'],
    ]);
    expect(book.bestBid()).toEqual(['101.0', '2']);
    expect(book.bestAsk()).toEqual(['101.5', '9']);
    expect(book.bidCount).toBe(5);
    expect(book.askCount).toBe(5);
  });

  it('treats quantities as absolute and deletes on any zero spelling', () => {
    const book = new LocalBook();
    book.loadSnapshot(
      [
        ['10', '1'],
        ['9', '1'],
        ['8', '1'],
        ['7', '1'],
      ],
      [],
    );
    book.applyLevels('bid', [['10', '5']]);
    expect(book.bestBid()).toEqual(['10', '5']);
    book.applyLevels('bid', [
      ['10', '0'],
      ['9', '0.0'],
      ['8', '0.000'],
    ]);
    expect(flat(book.top('bid', 10))).toEqual([['7', '1']]);
    for (const l of book.top('bid', 10)) expect(parseFloat(l.quantity)).toBeGreaterThan(0);
  });

  it('skips zero quantities in a snapshot and keeps the last duplicate', () => {
    const book = new LocalBook();
    book.loadSnapshot(
      [
        ['10', '0'],
        ['9', '1'],
        ['9.0', '2'],
      ],
      [['11', '0.00']],
    );
    expect(flat(book.top('bid', 5))).toEqual([['9.0', '2']]);
    expect(book.askCount).toBe(0);
  });

  it('treats "7.6110" and "7.611" as the same level and keeps the last strings', () => {
    const book = new LocalBook();
    book.loadSnapshot([['7.6110', '6']], [['7.6200', '1']]);
    book.applyLevels('bid', [['7.611', '9']]);
    expect(book.bidCount).toBe(1);
    expect(book.bestBid()).toEqual(['7.611', '9']);
    expect(book.quantityAt('bid', '7.61100')).toBe('9');
    book.applyLevels('bid', [['7.61100', '0']]);
    expect(book.bidCount).toBe(0);
  });

  it('ignores the deletion of a level it does not hold', () => {
    const book = new LocalBook();
    book.loadSnapshot([['5', '1']], [['6', '1']]);
    const v = book.version;
    book.applyLevels('bid', [['4.5', '0']]);
    book.applyLevels('ask', [['7', '0']]);
    book.applyLevels('ask', [['5.5', '0']]);
    expect(book.bidCount).toBe(1);
    expect(book.askCount).toBe(1);
    expect(book.version).toBe(v);
  });

  it('top(n) returns the best n, best first, fewer when the side is short', () => {
    const book = new LocalBook();
    const bids: [string, string][] = [];
    const asks: [string, string][] = [];
    for (let i = 0; i < 50; i++) {
      bids.push([(100 - i).toString(), `${i + 1}`]);
      asks.push([(101 + i).toString(), `${i + 1}`]);
    }
    book.loadSnapshot(bids, asks);
    const t = book.top('bid', 3);
    expect(flat(t)).toEqual([
      ['100', '1'],
      ['99', '2'],
      ['98', '3'],
    ]);
    expect(book.top('ask', 2).map((l) => l.price)).toEqual(['101', '102']);
    expect(book.top('ask', 500)).toHaveLength(50);
    expect(book.top('bid', 0)).toHaveLength(0);
  });

  it('caches the top view until that side changes', () => {
    const book = new LocalBook();
    book.loadSnapshot(
      [
        ['2', '1'],
        ['1', '1'],
      ],
      [['3', '1']],
    );
    const a = book.top('bid', 20);
    expect(book.top('bid', 20)).toBe(a);
    book.applyLevels('ask', [['4', '1']]); // other side: bid view still valid
    expect(book.top('bid', 20)).toBe(a);
    book.applyLevels('bid', [['1', '1']]); // same strings: no change
    expect(book.top('bid', 20)).toBe(a);
    book.applyLevels('bid', [['1', '2']]);
    const b = book.top('bid', 20);
    expect(b).not.toBe(a);
    expect(flat(b)).toEqual([
      ['2', '1'],
      ['1', '2'],
    ]);
    expect(flat(a)).toEqual([
      ['2', '1'],
      ['1', '1'],
    ]);
  });

  it('detects a crossed or locked book', () => {
    const book = new LocalBook();
    book.loadSnapshot([['10', '1']], [['11', '1']]);
    expect(book.isCrossed()).toBe(false);
    book.applyLevels('bid', [['11', '1']]);
    expect(book.isCrossed()).toBe(true); // locked counts: Binance never shows bid >= ask
    book.applyLevels('bid', [['11', '0']]);
    expect(book.isCrossed()).toBe(false);
    book.applyLevels('ask', [['9.5', '1']]);
    expect(book.isCrossed()).toBe(true);
    book.clear();
    expect(book.isCrossed()).toBe(false);
    book.applyLevels('bid', [['10', '1']]);
    expect(book.isCrossed()).toBe(false); // one side empty
  });

  it('trim keeps the best levels of each side', () => {
    const book = new LocalBook();
    const bids: [string, string][] = [];
    const asks: [string, string][] = [];
    for (let i = 0; i < 10; i++) {
      bids.push([(100 - i).toString(), '1']);
      asks.push([(101 + i).toString(), '1']);
    }
    book.loadSnapshot(bids, asks);
    book.trim(3);
    expect(book.top('bid', 10).map((l) => l.price)).toEqual(['100', '99', '98']);
    expect(book.top('ask', 10).map((l) => l.price)).toEqual(['101', '102', '103']);
    book.applyLevels('bid', [['97.5', '1']]);
    expect(book.top('bid', 10).map((l) => l.price)).toEqual(['100', '99', '98', '97.5']);
    book.trim(100); // nothing to drop
    expect(book.bidCount).toBe(4);
  });

  it('matches a naive model under random updates (growth, inserts, deletes)', () => {
    const book = new LocalBook();
    const model = { bid: new Map<number, string>(), ask: new Map<number, string>() };
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let i = 0; i < 20_000; i++) {
      const side = rnd() < 0.5 ? 'bid' : 'ask';
      const tick = Math.floor(rnd() * 300);
      const price = side === 'bid' ? (1000 - tick) / 100 : (1001 + tick) / 100;
      const qty = rnd() < 0.3 ? '0' : (1 + Math.floor(rnd() * 50)).toString();
      book.applyLevels(side, [[price.toFixed(rnd() < 0.5 ? 2 : 4), qty]]);
      if (qty === '0') model[side].delete(price);
      else model[side].set(price, qty);
    }
    for (const side of ['bid', 'ask'] as const) {
      const expected = [...model[side].entries()]
        .sort((x, y) => (side === 'bid' ? y[0] - x[0] : x[0] - y[0]))
        .map(([p, q]) => [p, q]);
      const got = book.top(side, 10_000).map((l) => [parseFloat(l.price), l.quantity]);
      expect(got).toEqual(expected);
    }
  });

  it('rejects unparsable numbers', () => {
    const book = new LocalBook();
    expect(() => book.applyLevels('bid', [['abc', '1']])).toThrow(RangeError);
    expect(() => book.applyLevels('bid', [['1', 'x']])).toThrow(RangeError);
    expect(book.bidCount).toBe(0);
  });
});
