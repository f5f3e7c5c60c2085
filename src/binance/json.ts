import { parse as losslessParse, isSafeNumber } from 'lossless-json';

/**
 * Bigint-safe JSON parsing for Binance user data and order responses: integers that do not fit
 * in a double (USDⓈ-M order ids exceed 2^53, e.g. 8389765489680951453) come back as their exact
 * decimal digits in a string; every other number is a plain `number`.
 * See sieblyio/binance #208, #662 and binance-connector-js #536.
 */
export function parseJsonExact(text: string): unknown {
  return losslessParse(text, null, (digits: string) =>
    isSafeNumber(digits) ? Number(digits) : digits,
  );
}

const BIGINT_MARK = '\u0000bigint:';

/**
 * JSON.stringify that writes `bigint` values as bare JSON numbers, exactly as Binance writes
 * 64-bit order ids (Node 20 has no JSON.rawJSON).
 */
export function stringifyWithBigInts(value: unknown): string {
  const text = JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'bigint' ? `${BIGINT_MARK}${v.toString()}` : v,
  );
  return text.replace(/"\\u0000bigint:(-?\d+)"/g, '$1');
}
