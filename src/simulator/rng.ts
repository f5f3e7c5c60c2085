/**
 * A small seeded pseudo-random generator for the simulator. `Math.random()` cannot be seeded,
 * and the simulator's market must replay the same book, trades and update ids for the same seed
 * so that tests and bug reports are reproducible. xoshiro128** (Blackman & Vigna) is fast in
 * 32-bit JavaScript arithmetic, has a 2^128 − 1 period and passes BigCrush; its state is seeded
 * through splitmix32 so that nearby seeds (1, 2, 3…) give unrelated sequences.
 */

const TWO_POW_32 = 4_294_967_296;

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** One splitmix32 output; used only to spread a seed over the four state words. */
function splitmix32(state: number): number {
  let z = state | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * A seeded generator (xoshiro128**). Every method draws from the same stream, so a caller that
 * wants reproducible output must call them in a reproducible order.
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  /** the second Box-Muller variate, kept for the next `normal()` call */
  private spare: number | undefined;

  /** `seed` may be any finite number (truncated to an integer, then folded into 32 bits). */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`Rng seed must be finite, got ${seed}`);
    const whole = Math.trunc(seed);
    const lo = whole >>> 0;
    const hi = Math.floor(Math.abs(whole) / TWO_POW_32) >>> 0;
    let state = (lo ^ Math.imul(hi, 0x9e3779b9) ^ (whole < 0 ? 0x5bd1e995 : 0)) | 0;
    const nextWord = (): number => {
      state = (state + 0x9e3779b9) | 0;
      return splitmix32(state);
    };
    this.s0 = nextWord();
    this.s1 = nextWord();
    this.s2 = nextWord();
    this.s3 = nextWord();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the one forbidden state
  }

  /** A uniform unsigned 32-bit integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A uniform number in [0, 1) with 32 bits of resolution. */
  next(): number {
    return this.nextUint32() / TWO_POW_32;
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A standard normal variate (Box-Muller; the pair's second value is kept for the next call). */
  normal(): number {
    const spare = this.spare;
    if (spare !== undefined) {
      this.spare = undefined;
      return spare;
    }
    const u1 = (this.nextUint32() + 0.5) / TWO_POW_32; // (0, 1): log() stays finite
    const u2 = this.next();
    const radius = Math.sqrt(-2 * Math.log(u1));
    const angle = 2 * Math.PI * u2;
    this.spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }

  /** An exponential variate with the given rate (mean `1 / rate`). */
  exponential(rate: number): number {
    const u = (this.nextUint32() + 0.5) / TWO_POW_32;
    return -Math.log(u) / rate;
  }

  /** A uniform integer in [lo, hi], both inclusive. */
  int(lo: number, hi: number): number {
    if (hi < lo) throw new RangeError(`Rng.int: empty range [${lo}, ${hi}]`);
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** A uniformly chosen element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('Rng.pick: empty array');
    return items[Math.floor(this.next() * items.length)] as T;
  }

  /**
   * A Poisson variate with the given mean: Knuth's product method below 30 (exact, cost
   * proportional to the mean), a rounded normal approximation above (the error is negligible
   * there and the cost stays constant).
   */
  poisson(mean: number): number {
    if (!(mean > 0)) return 0;
    if (mean >= 30) return Math.max(0, Math.round(mean + Math.sqrt(mean) * this.normal()));
    const limit = Math.exp(-mean);
    let k = 0;
    let product = this.next();
    while (product > limit) {
      k++;
      product *= this.next();
    }
    return k;
  }
}
