/**
 * Milliseconds on the machine-wide monotonic clock (`process.hrtime` reads CLOCK_MONOTONIC on
 * Linux, the same clock in every process), so a stamp taken in the server process and one taken
 * in a client process can be subtracted.
 */
export function monoMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}
