/**
 * Binance's checks of REST query parameters, shared by the market-history and account routes:
 * mandatory parameters (-1102), integers (-1100), limits out of range (-1130), time windows
 * (-1023, -1127), intervals (-1120). A failed check throws a `ParamError` carrying Binance's
 * error body; `answerParamErrors` turns it back into the response.
 */
import { mandatoryParamMessage } from './signing.js';
import { binanceError, KLINE_INTERVALS, type KlineInterval, type SimResponse } from './types.js';

/** A refused parameter: the Binance error answer. */
export class ParamError extends Error {
  constructor(readonly response: SimResponse) {
    super(response.body);
  }
}

/** Runs a route body, answering the first `ParamError` it throws. */
export function answerParamErrors(run: () => SimResponse): SimResponse {
  try {
    return run();
  } catch (e) {
    if (e instanceof ParamError) return e.response;
    throw e;
  }
}

const LONG_RANGE = '^[0-9]{1,20}$';

/** The parameters of one request, with the weight a refusal still costs. */
export class Params {
  constructor(
    readonly params: URLSearchParams,
    readonly weight: number,
  ) {}

  fail(code: number, msg: string, status = 400): never {
    throw new ParamError(binanceError(status, code, msg, this.weight));
  }

  has(name: string): boolean {
    const v = this.params.get(name);
    return v !== null && v !== '';
  }

  /** A mandatory parameter: -1102 when missing or empty. */
  required(name: string): string {
    const v = this.params.get(name);
    if (v === null || v === '') this.fail(-1102, mandatoryParamMessage(name));
    return v;
  }

  /** An optional unsigned integer (ids, times, limits): -1100 for anything but digits. */
  long(name: string): number | undefined {
    const v = this.digits(name);
    return v === undefined ? undefined : Number(v);
  }

  /** An optional 64-bit id (order ids exceed 2^53): exact, -1100 for anything but digits. */
  id(name: string): bigint | undefined {
    const v = this.digits(name);
    return v === undefined ? undefined : BigInt(v);
  }

  /** The raw digits of an optional unsigned parameter; -1100 for anything else. */
  private digits(name: string): string | undefined {
    const v = this.params.get(name);
    if (v === null || v === '') return undefined;
    if (!/^\d{1,20}$/.test(v)) {
      this.fail(
        -1100,
        `Illegal characters found in parameter '${name}'; legal range is '${LONG_RANGE}'.`,
      );
    }
    return v;
  }

  /** `limit`: `byDefault` when absent, -1130 outside 1…`max`. */
  limit(byDefault: number, max: number): number {
    const limit = this.long('limit');
    if (limit === undefined) return byDefault;
    if (limit < 1 || limit > max) this.fail(-1130, "Data sent for parameter 'limit' is not valid.");
    return limit;
  }

  /**
   * `startTime`/`endTime`: -1023 when the start is after the end, -1127 when both are sent and
   * more than `maxSpanHours` apart.
   */
  timeRange(maxSpanHours?: number): { startTime?: number; endTime?: number } {
    const startTime = this.long('startTime');
    const endTime = this.long('endTime');
    if (startTime !== undefined && endTime !== undefined) {
      if (startTime > endTime) this.fail(-1023, 'Start time is greater than end time.');
      if (maxSpanHours !== undefined && endTime - startTime > maxSpanHours * 3_600_000) {
        this.fail(-1127, `More than ${maxSpanHours} hours between startTime and endTime.`);
      }
    }
    return {
      ...(startTime !== undefined && { startTime }),
      ...(endTime !== undefined && { endTime }),
    };
  }

  /** `interval`: mandatory, one of Binance's USDⓈ-M intervals, else -1120. */
  interval(): KlineInterval {
    const v = this.required('interval');
    const found = KLINE_INTERVALS.find((i) => i === v);
    if (found === undefined) this.fail(-1120, 'Invalid interval.');
    return found;
  }
}
