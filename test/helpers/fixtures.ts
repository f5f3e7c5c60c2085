import { readFileSync } from 'node:fs';

/** One row of the oracle transcribed from the captures' README (never computed by our code). */
export interface OracleEntry {
  capture: string;
  symbol: string;
  lastUpdateId: number;
  finalUpdateId: number;
  bestBid: [string, string];
  bestAsk: [string, string];
}

const root = new URL('../fixtures/binance-real/', import.meta.url);

export const oracle = JSON.parse(
  readFileSync(new URL('oracle.json', root), 'utf8'),
) as OracleEntry[];

export const CAPTURES = ['ce58c2a0', 'be4e5c81', '1312c062'] as const;

/** Absolute path of a capture folder. */
export function captureDir(capture: string): string {
  return new URL(`cryptofeed/${capture}`, root).pathname;
}
