import { describe, expect, it } from 'vitest';
import { parseStreamName, streamPath } from '../src/binance/streams.js';

describe('stream routing (2026 path split)', () => {
  it.each([
    ['btcusdt@depth', 'public'],
    ['btcusdt@depth@100ms', 'public'],
    ['btcusdt@depth@500ms', 'public'],
    ['btcusdt@depth5', 'public'],
    ['btcusdt@depth20@100ms', 'public'],
    ['btcusdt@bookTicker', 'public'],
    ['!bookTicker', 'public'],
    ['btcusdt@rpiDepth@500ms', 'public'],
    ['btcusdt@aggTrade', 'market'],
    ['btcusdt@markPrice', 'market'],
    ['btcusdt@markPrice@1s', 'market'],
    ['!markPrice@arr@1s', 'market'],
    ['btcusdt@ticker', 'market'],
    ['!ticker@arr', 'market'],
    ['btcusdt@miniTicker', 'market'],
    ['btcusdt@forceOrder', 'market'],
    ['btcusdt@kline_1m', 'market'],
    ['btcusdt@kline_1M', 'market'],
  ])('%s is served on /%s', (name, path) => {
    expect(streamPath(name)).toBe(path);
  });

  it.each([
    'btcusdt@depth7',
    'btcusdt@kline_2m',
    'btcusdt@kline_1s',
    'btcusdt@nothing',
    '@aggTrade',
    'btcusdt',
  ])('%s is not a stream', (name) => {
    expect(parseStreamName(name)).toBeUndefined();
  });

  it('keeps the symbol as written and names the type', () => {
    expect(parseStreamName('ethusdt@depth@100ms')).toEqual({
      symbol: 'ethusdt',
      type: 'depth',
      path: 'public',
    });
    expect(parseStreamName('ethusdt@markPrice@1s')).toEqual({
      symbol: 'ethusdt',
      type: 'markPrice',
      path: 'market',
    });
    expect(parseStreamName('ethusdt@kline_15m')).toEqual({
      symbol: 'ethusdt',
      type: 'kline',
      path: 'market',
    });
  });
});
