import { createHmac, timingSafeEqual } from 'node:crypto';
import type { SimRequest } from './types.js';

/**
 * Binance's request signing and timing rules for signed (TRADE / USER_DATA) endpoints, as the
 * simulator enforces them (reference §7.3): `signature = hex(HMAC_SHA256(secret, totalParams))`
 * where `totalParams` is the exact query string concatenated with the exact body (no `&`
 * between them), `signature` being the last parameter; `timestamp` is required and must satisfy
 * `timestamp < serverTime + 1000 && serverTime - timestamp <= recvWindow`.
 *
 * Kept apart from the accounts so the rules can be read (and tested) on their own, and so no
 * secret ever reaches a message: every failure here is a code and a fixed text.
 */

/** Limits of the timing check; Binance's values are the defaults in `DEFAULT_SIGNING_RULES`. */
export interface SigningRules {
  /** recvWindow when the request sends none (Binance: 5000). */
  defaultRecvWindowMs: number;
  /** Largest recvWindow accepted (Binance: 60000); more is -1131. */
  maxRecvWindowMs: number;
  /** A timestamp must be strictly less than serverTime + this (Binance: 1000). */
  maxClockAheadMs: number;
}

export const DEFAULT_SIGNING_RULES: SigningRules = {
  defaultRecvWindowMs: 5_000,
  maxRecvWindowMs: 60_000,
  maxClockAheadMs: 1_000,
};

/** A Binance error as the signed-request check reports it: HTTP status, code, message. */
export interface SigningFailure {
  status: number;
  code: number;
  msg: string;
}

/** Lower-case hex HMAC-SHA256, the signature Binance expects for HMAC keys. */
export function hmacSha256Hex(secret: string, payload: string): string {
  return createHmac('sha256', secret).update(payload, 'utf8').digest('hex');
}

/** Binance's text for -1102, e.g. `Mandatory parameter 'timestamp' was not sent, …`. */
export function mandatoryParamMessage(name: string): string {
  return `Mandatory parameter '${name}' was not sent, was empty/null, or malformed.`;
}

/**
 * Splits the `signature` parameter off the part of the request that carries it. The signed
 * payload is the remaining bytes of the query followed by the body. `signature` must be the last
 * parameter of the part that holds it; `undefined` when it is not (or appears twice), which
 * the caller reports as an invalid signature, since the client cannot have signed those bytes.
 */
export function splitSignature(
  rawQuery: string,
  body: string,
): { payload: string; signature: string } | undefined {
  const inQuery = lastParam(rawQuery);
  const inBody = lastParam(body);
  const queryHas = hasParam(rawQuery, 'signature');
  const bodyHas = hasParam(body, 'signature');
  if (queryHas && bodyHas) return undefined;
  if (queryHas) {
    if (inQuery?.name !== 'signature') return undefined;
    return { payload: inQuery.before + body, signature: inQuery.value };
  }
  if (bodyHas) {
    if (inBody?.name !== 'signature') return undefined;
    return { payload: rawQuery + inBody.before, signature: inBody.value };
  }
  return undefined;
}

/**
 * Checks one signed request against the account's secret at server time `nowMs`. Returns
 * `undefined` when the request may proceed, else Binance's error. Order of checks: mandatory
 * `timestamp` and `signature` (-1102), `recvWindow` (-1102 / -1131), the time window (-1021),
 * then the signature itself (-1022).
 */
export function checkSignedRequest(
  req: Pick<SimRequest, 'rawQuery' | 'body' | 'params'>,
  secret: string,
  nowMs: number,
  rules: SigningRules = DEFAULT_SIGNING_RULES,
): SigningFailure | undefined {
  const timestampText = req.params.get('timestamp');
  if (timestampText === null || !/^\d{1,20}$/.test(timestampText)) {
    return { status: 400, code: -1102, msg: mandatoryParamMessage('timestamp') };
  }
  const signatureText = req.params.get('signature');
  if (signatureText === null || signatureText === '') {
    return { status: 400, code: -1102, msg: mandatoryParamMessage('signature') };
  }
  let recvWindowMs = rules.defaultRecvWindowMs;
  const recvWindowText = req.params.get('recvWindow');
  if (recvWindowText !== null) {
    if (!/^\d{1,10}$/.test(recvWindowText)) {
      return { status: 400, code: -1102, msg: mandatoryParamMessage('recvWindow') };
    }
    recvWindowMs = Number(recvWindowText);
    if (recvWindowMs > rules.maxRecvWindowMs) {
      return {
        status: 400,
        code: -1131,
        msg: `recvWindow must be less than ${rules.maxRecvWindowMs}.`,
      };
    }
  }
  const timestampMs = Number(timestampText);
  if (!(timestampMs < nowMs + rules.maxClockAheadMs && nowMs - timestampMs <= recvWindowMs)) {
    return {
      status: 400,
      code: -1021,
      msg: 'Timestamp for this request is outside of the recvWindow.',
    };
  }
  const split = splitSignature(req.rawQuery, req.body);
  if (split === undefined || !signatureMatches(secret, split.payload, split.signature)) {
    return { status: 400, code: -1022, msg: 'Signature for this request is not valid.' };
  }
  return undefined;
}

/** Constant-time comparison; Binance treats the hex signature case-insensitively. */
function signatureMatches(secret: string, payload: string, signature: string): boolean {
  const given = decodeURIComponentSafe(signature).toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(given)) return false;
  const expected = Buffer.from(hmacSha256Hex(secret, payload), 'utf8');
  return timingSafeEqual(expected, Buffer.from(given, 'utf8'));
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function hasParam(part: string, name: string): boolean {
  if (part === '') return false;
  return part.split('&').some((pair) => pair.split('=')[0] === name);
}

/** The last `name=value` pair of a form-encoded string and the bytes before its `&`. */
function lastParam(part: string): { name: string; value: string; before: string } | undefined {
  if (part === '') return undefined;
  const amp = part.lastIndexOf('&');
  const pair = part.slice(amp + 1);
  const eq = pair.indexOf('=');
  const name = eq < 0 ? pair : pair.slice(0, eq);
  const value = eq < 0 ? '' : pair.slice(eq + 1);
  return { name, value, before: amp < 0 ? '' : part.slice(0, amp) };
}
