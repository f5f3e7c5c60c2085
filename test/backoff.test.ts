import { describe, expect, it } from 'vitest';
import { backoffDelayMs, DEFAULT_BACKOFF, type BackoffOptions } from '../src/binance/backoff.js';

const noJitter: BackoffOptions = { initialDelayMs: 500, maxDelayMs: 60_000, jitter: 0 };

describe('backoffDelayMs', () => {
  it('doubles from the initial delay', () => {
    const delays = [0, 1, 2, 3, 4].map((a) => backoffDelayMs(a, noJitter, () => 0.7));
    expect(delays).toEqual([500, 1_000, 2_000, 4_000, 8_000]);
  });

  it('is capped at maxDelayMs, even for absurd attempt numbers', () => {
    expect(backoffDelayMs(7, noJitter)).toBe(60_000);
    expect(backoffDelayMs(50, noJitter)).toBe(60_000);
    expect(backoffDelayMs(10_000, noJitter)).toBe(60_000);
    expect(backoffDelayMs(Number.MAX_SAFE_INTEGER, DEFAULT_BACKOFF, () => 0)).toBe(60_000);
  });

  it('treats negative or fractional attempts as the nearest valid attempt below', () => {
    expect(backoffDelayMs(-3, noJitter)).toBe(500);
    expect(backoffDelayMs(1.9, noJitter)).toBe(1_000);
  });

  it('jitter takes off at most `jitter` of the delay, driven by the injected random()', () => {
    const opts: BackoffOptions = { initialDelayMs: 1_000, maxDelayMs: 60_000, jitter: 0.5 };
    expect(backoffDelayMs(2, opts, () => 0)).toBe(4_000);
    expect(backoffDelayMs(2, opts, () => 0.5)).toBe(3_000);
    expect(backoffDelayMs(2, opts, () => 0.999_999)).toBe(2_000);
    // at the cap the jittered delay stays within [cap × (1 − jitter), cap]
    for (let i = 0; i < 100; i++) {
      const r = i / 100;
      const d = backoffDelayMs(20, opts, () => r);
      expect(d).toBeGreaterThanOrEqual(30_000);
      expect(d).toBeLessThanOrEqual(60_000);
    }
  });

  it('clamps a jitter factor and random values outside [0, 1]', () => {
    const wild: BackoffOptions = { initialDelayMs: 1_000, maxDelayMs: 60_000, jitter: 3 };
    expect(backoffDelayMs(0, wild, () => 1)).toBe(0);
    expect(backoffDelayMs(0, { ...wild, jitter: -1 }, () => 0.5)).toBe(1_000);
    expect(backoffDelayMs(0, { ...wild, jitter: 0.5 }, () => 7)).toBe(500);
    expect(backoffDelayMs(0, { ...wild, jitter: 0.5 }, () => -7)).toBe(1_000);
  });

  it('defaults to 0.5 s doubling to 60 s with 50 % jitter (reference §2.5)', () => {
    expect(DEFAULT_BACKOFF).toEqual({ initialDelayMs: 500, maxDelayMs: 60_000, jitter: 0.5 });
    const d = backoffDelayMs(0);
    expect(d).toBeGreaterThanOrEqual(250);
    expect(d).toBeLessThanOrEqual(500);
  });
});
