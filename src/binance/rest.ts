import { createHmac } from 'node:crypto';
import { Agent, request } from 'undici';
import { GatewayError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { parseJsonExact } from './json.js';

/** A failed Binance REST call, already classified for the GraphQL edge. */
export class BinanceRestError extends GatewayError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly status: number | undefined,
    readonly binanceCode: number | undefined,
    /** epoch ms before which the same call must not be retried (429/418/own budget) */
    readonly retryAt: number | undefined,
  ) {
    super(code, message, binanceCode === undefined ? {} : { binanceCode });
    this.name = 'BinanceRestError';
  }
}

export interface Credentials {
  apiKey: string;
  apiSecret?: string;
}

export interface BinanceRestOptions {
  baseUrl: string;
  logger: Logger;
  now?: () => number;
  /**
   * Our own REQUEST_WEIGHT budget per UTC minute, kept under Binance's 2400 so a resync storm
   * of many symbols can never earn a 429 (let alone the 418 ban that follows ignored 429s).
   */
  weightBudgetPerMinute?: number;
  /** Per-request timeout. */
  timeoutMs?: number;
}

/** Binance codes that mean the key or signature was refused (reference §7.6). */
const KEY_REJECTED = new Set([-2014, -2015, -1022, -2008]);

/**
 * The gateway's Binance REST client (undici). It honours `Retry-After` on 429 and 418 and never
 * calls again before it, keeps its own weight budget from `X-MBX-USED-WEIGHT-1M`, signs
 * USER_DATA calls with HMAC-SHA256 over the exact query string, and keeps a server-time offset
 * for `timestamp` (refreshed on -1021).
 */
export class BinanceRest {
  private readonly agent: Agent;
  private readonly now: () => number;
  private readonly budget: number;
  private readonly timeoutMs: number;
  private blockedUntil = 0;
  private blockedStatus: 429 | 418 | undefined;
  private minute = -1;
  private usedWeight = 0;
  private timeOffsetMs = 0;
  /** counters for /metrics and status */
  readonly stats = { requests: 0, rateLimited: 0, banned: 0, failures: 0, budgetWaits: 0 };

  constructor(private readonly options: BinanceRestOptions) {
    this.now = options.now ?? Date.now;
    this.budget = options.weightBudgetPerMinute ?? 1800;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.agent = new Agent({ connections: 16, keepAliveTimeout: 30_000 });
  }

  /** REQUEST_WEIGHT used in the current UTC minute, as Binance last reported it (or our count). */
  get weightUsed(): number {
    this.rollMinute();
    return this.usedWeight;
  }

  /**
   * False after a call that could not reach Binance or got a 5xx, until the next answer that
   * did (any status below 500): what `/readyz` reports as the REST side's health.
   */
  reachable = true;

  /** True while a 429/418 `Retry-After` is being waited out. */
  get blocked(): boolean {
    return this.now() < this.blockedUntil;
  }

  /** A public (NONE security) GET. `weight` is the documented cost, charged to our budget first. */
  async get(
    path: string,
    params: Record<string, string | number> = {},
    weight = 1,
  ): Promise<unknown> {
    return this.call('GET', path, params, weight, undefined);
  }

  /** A USER_DATA call: API key header, `timestamp`, `recvWindow`, HMAC signature last. */
  async signed(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    params: Record<string, string | number>,
    creds: Credentials,
    weight = 5,
  ): Promise<unknown> {
    if (!creds.apiSecret) throw new GatewayError('UNAUTHENTICATED', 'An API secret is needed.');
    try {
      return await this.call(method, path, params, weight, creds);
    } catch (err) {
      if (err instanceof BinanceRestError && err.binanceCode === -1021) {
        await this.syncTime();
        return this.call(method, path, params, weight, creds);
      }
      throw err;
    }
  }

  /** A USER_STREAM call (listenKey): API key header only, no signature. */
  async userStream(method: 'POST' | 'PUT' | 'DELETE', apiKey: string): Promise<unknown> {
    return this.call(method, '/fapi/v1/listenKey', {}, 1, { apiKey });
  }

  /** Measures the offset to Binance's clock from `/fapi/v1/time` (half the round trip). */
  async syncTime(): Promise<void> {
    const sent = this.now();
    const body = (await this.get('/fapi/v1/time')) as { serverTime?: unknown };
    const received = this.now();
    if (typeof body.serverTime === 'number') {
      this.timeOffsetMs = body.serverTime - Math.round((sent + received) / 2);
    }
  }

  private rollMinute(): void {
    const minute = Math.floor(this.now() / 60_000);
    if (minute !== this.minute) {
      this.minute = minute;
      this.usedWeight = 0;
    }
  }

  private async call(
    method: string,
    path: string,
    params: Record<string, string | number>,
    weight: number,
    creds: Credentials | undefined,
  ): Promise<unknown> {
    const now = this.now();
    if (now < this.blockedUntil) {
      throw new BinanceRestError(
        'RATE_LIMITED',
        this.blockedStatus === 418
          ? 'Binance has banned this gateway for a while (HTTP 418); retrying after the ban.'
          : 'Binance rate limit reached (HTTP 429); retrying later.',
        this.blockedStatus,
        -1003,
        this.blockedUntil,
      );
    }
    this.rollMinute();
    if (this.usedWeight + weight > this.budget) {
      this.stats.budgetWaits += 1;
      const nextMinute = (Math.floor(now / 60_000) + 1) * 60_000;
      throw new BinanceRestError(
        'RATE_LIMITED',
        'The gateway is holding back to stay under Binance request weight limits.',
        undefined,
        undefined,
        nextMinute,
      );
    }
    this.usedWeight += weight;

    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) query.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (creds) {
      headers['x-mbx-apikey'] = creds.apiKey;
      if (creds.apiSecret && path !== '/fapi/v1/listenKey') {
        query.set('timestamp', String(this.now() + this.timeOffsetMs));
        query.set('recvWindow', '5000');
        const signature = createHmac('sha256', creds.apiSecret)
          .update(query.toString())
          .digest('hex');
        query.set('signature', signature);
      }
    }
    const qs = query.toString();
    const url = `${this.options.baseUrl}${path}${qs ? `?${qs}` : ''}`;
    this.stats.requests += 1;
    let status: number;
    let text: string;
    let responseHeaders: Record<string, string | string[] | undefined>;
    try {
      const res = await request(url, {
        method: method as 'GET',
        headers,
        dispatcher: this.agent,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      status = res.statusCode;
      responseHeaders = res.headers;
      text = await res.body.text();
    } catch (err) {
      this.stats.failures += 1;
      this.reachable = false;
      // the path is logged, never the URL: its query may carry a signature
      this.options.logger.warn('binance rest call failed', {
        path,
        error: err instanceof Error ? err.message : String(err),
      });
      throw new BinanceRestError(
        'UPSTREAM_UNAVAILABLE',
        'Binance REST API cannot be reached right now.',
        undefined,
        undefined,
        undefined,
      );
    }
    this.reachable = status < 500;
    const used = Number(headerValue(responseHeaders['x-mbx-used-weight-1m']));
    if (Number.isFinite(used) && used > 0) this.usedWeight = Math.max(this.usedWeight, used);
    if (status >= 200 && status < 300) return parseJsonExact(text);
    throw this.classify(status, text, headerValue(responseHeaders['retry-after']));
  }

  private classify(status: number, text: string, retryAfter: string | undefined): BinanceRestError {
    let code: number | undefined;
    let msg = '';
    try {
      const body = JSON.parse(text) as { code?: unknown; msg?: unknown };
      if (typeof body.code === 'number') code = body.code;
      if (typeof body.msg === 'string') msg = body.msg;
    } catch {
      // non-JSON bodies (WAF pages) are classified by status alone
    }
    const now = this.now();
    if (status === 429 || status === 418) {
      const seconds = Number(retryAfter);
      const fallback = status === 418 ? 120_000 : (Math.floor(now / 60_000) + 1) * 60_000 - now;
      const waitMs = Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : fallback;
      this.blockedUntil = Math.max(this.blockedUntil, now + waitMs);
      this.blockedStatus = status;
      if (status === 418) this.stats.banned += 1;
      else this.stats.rateLimited += 1;
      this.options.logger.warn('binance rest rate limited', { status, retryAfterMs: waitMs });
      return new BinanceRestError(
        'RATE_LIMITED',
        status === 418
          ? 'Binance has banned this gateway for a while (HTTP 418); retrying after the ban.'
          : 'Binance rate limit reached (HTTP 429); retrying later.',
        status,
        code,
        this.blockedUntil,
      );
    }
    if (code !== undefined && KEY_REJECTED.has(code)) {
      return new BinanceRestError(
        'INVALID_API_KEY',
        code === -1022
          ? 'Binance rejected the request signature: check the API secret.'
          : 'Binance rejected the API key (invalid, revoked, or missing permissions or IP whitelist).',
        status,
        code,
        undefined,
      );
    }
    if (code === -1121) {
      return new BinanceRestError('BAD_USER_INPUT', 'Unknown symbol.', status, code, undefined);
    }
    if (status >= 500 || status === 408) {
      this.stats.failures += 1;
      return new BinanceRestError(
        'UPSTREAM_UNAVAILABLE',
        `Binance answered HTTP ${status}; try again later.`,
        status,
        code,
        undefined,
      );
    }
    return new BinanceRestError(
      'UPSTREAM_UNAVAILABLE',
      `Binance refused the request${code === undefined ? '' : ` (${code})`}${msg ? `: ${msg}` : ''}`,
      status,
      code,
      undefined,
    );
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
