import type { IncomingMessage, ServerResponse } from 'node:http';
import { DEPTH_LIMIT_WEIGHT } from '../binance/rules.js';
import { MarketHistoryRoute } from './rest-history.js';
import {
  binanceError,
  jsonResponse,
  type Clock,
  type MarketDataSource,
  type RestRoute,
  type SimRequest,
  type SimResponse,
} from './types.js';

/** A fault armed on the REST side: the next `remaining` calls answer `status`. */
export interface RestFault {
  status: 429 | 418 | 500 | 502 | 503 | 504;
  remaining: number;
  retryAfterSec: number;
}

export interface RestOptions {
  market: MarketDataSource;
  routes: RestRoute[];
  clock: Clock;
  /** REQUEST_WEIGHT per UTC minute (Binance: 2400); over it, 429 -1003. */
  weightLimitPerMinute: number;
  /** True for a known API key (MARKET_DATA endpoints such as `historicalTrades`). */
  isApiKey?: (apiKey: string) => boolean;
}

/**
 * The simulator's REST side: Binance's market-data endpoints, the account routes, the
 * `X-MBX-USED-WEIGHT-1M` header over the UTC clock minute, and the armed faults
 * (429/418/5xx with `Retry-After`, delayed snapshots).
 */
export class RestServer {
  fault: RestFault | undefined;
  /** Extra delay before a depth snapshot is answered (fault: slow snapshots). */
  snapshotDelayMs = 0;
  private minute = -1;
  private usedWeight = 0;
  /** every request seen, for tests: method, path and answered status */
  readonly log: { method: string; path: string; status: number }[] = [];

  /** aggTrades, trades, historicalTrades, klines, mark/index price klines, fundingRate */
  private readonly history: MarketHistoryRoute;

  constructor(private readonly options: RestOptions) {
    this.history = new MarketHistoryRoute({
      market: options.market,
      clock: options.clock,
      ...(options.isApiKey && { isApiKey: options.isApiKey }),
    });
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://sim');
    const rawQuery = url.search.startsWith('?') ? url.search.slice(1) : '';
    const params = new URLSearchParams(body);
    for (const [k, v] of new URLSearchParams(rawQuery)) params.set(k, v);
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      headers[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
    }
    const simReq: SimRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      rawQuery,
      body,
      params,
      headers,
    };
    if (simReq.path === '/fapi/v1/depth' && this.snapshotDelayMs > 0) {
      await new Promise((r) => setTimeout(r, this.snapshotDelayMs));
    }
    const answer = this.answer(simReq);
    this.log.push({ method: simReq.method, path: simReq.path, status: answer.status });
    if (this.log.length > 10_000) this.log.splice(0, 5_000);
    res.writeHead(answer.status, {
      'content-type': 'application/json;charset=UTF-8',
      ...answer.headers,
    });
    res.end(answer.body);
  }

  private answer(req: SimRequest): SimResponse {
    const fault = this.fault;
    if (fault && fault.remaining > 0) {
      fault.remaining -= 1;
      if (fault.remaining === 0) this.fault = undefined;
      return this.withWeight(faultResponse(fault, this.options.clock.now()), 1);
    }
    const answer = this.route(req);
    const weight = answer.weight ?? 1;
    if (this.chargeWouldExceed(weight) && answer.status < 400) {
      const over = binanceError(
        429,
        -1003,
        `Too many requests; current limit is ${this.options.weightLimitPerMinute} requests per minute. Please use the websocket for live updates to avoid polling the API.`,
      );
      over.headers = { 'Retry-After': String(this.secondsToNextMinute()) };
      return this.withWeight(over, weight);
    }
    return this.withWeight(answer, weight);
  }

  private route(req: SimRequest): SimResponse {
    for (const r of [...this.options.routes, this.history]) {
      const answer = r.route(req);
      if (answer) return answer;
    }
    if (req.method !== 'GET') return notFound(req);
    const market = this.options.market;
    switch (req.path) {
      case '/fapi/v1/ping':
        return jsonResponse({});
      case '/fapi/v1/time':
        return jsonResponse({ serverTime: this.options.clock.now() });
      case '/fapi/v1/exchangeInfo':
        return jsonResponse(this.exchangeInfo());
      case '/fapi/v1/depth': {
        const symbol = req.params.get('symbol');
        if (!symbol) return mandatory('symbol');
        if (!market.hasSymbol(symbol)) return binanceError(400, -1121, 'Invalid symbol.');
        const limitText = req.params.get('limit');
        const limit = limitText === null ? 500 : Number(limitText);
        const weight = DEPTH_LIMIT_WEIGHT[limit];
        if (weight === undefined) {
          return binanceError(400, -4021, `${limitText ?? ''} is not valid depth limit`);
        }
        return jsonResponse(market.snapshot(symbol, limit), weight);
      }
      case '/fapi/v1/ticker/24hr': {
        const symbol = req.params.get('symbol');
        if (symbol === null) {
          const all = this.symbolNames().flatMap((s) => market.ticker24h(s) ?? []);
          return jsonResponse(all, 40);
        }
        const t = market.hasSymbol(symbol) ? market.ticker24h(symbol) : undefined;
        return t ? jsonResponse(t) : binanceError(400, -1121, 'Invalid symbol.');
      }
      case '/fapi/v1/ticker/bookTicker':
      case '/fapi/v2/ticker/price':
      case '/fapi/v1/ticker/price':
      case '/fapi/v1/premiumIndex':
        return this.priceRoute(req);
      default:
        return notFound(req);
    }
  }

  /** bookTicker, price ticker and premiumIndex, one symbol or all. */
  private priceRoute(req: SimRequest): SimResponse {
    const market = this.options.market;
    const symbol = req.params.get('symbol');
    if (symbol !== null && !market.hasSymbol(symbol)) {
      return binanceError(400, -1121, 'Invalid symbol.');
    }
    const now = this.options.clock.now();
    const one = (s: string): object => {
      if (req.path === '/fapi/v1/ticker/bookTicker') {
        const snap = market.snapshot(s, 5);
        const [bp, bq] = snap.bids[0] ?? ['0', '0'];
        const [ap, aq] = snap.asks[0] ?? ['0', '0'];
        return {
          symbol: s,
          bidPrice: bp,
          bidQty: bq,
          askPrice: ap,
          askQty: aq,
          time: now,
          lastUpdateId: snap.lastUpdateId,
        };
      }
      const mark = market.markPrice(s);
      if (req.path === '/fapi/v1/premiumIndex') {
        return {
          symbol: s,
          markPrice: mark,
          indexPrice: mark,
          estimatedSettlePrice: mark,
          lastFundingRate: '0.00010000',
          interestRate: '0.00010000',
          nextFundingTime: nextFundingTime(now),
          time: now,
        };
      }
      return { symbol: s, price: mark, time: now };
    };
    if (symbol !== null) return jsonResponse(one(symbol));
    return jsonResponse(this.symbolNames().map(one), 5);
  }

  private symbolNames(): string[] {
    return this.options.market
      .exchangeInfoSymbols()
      .map((s) => (s as { symbol?: unknown }).symbol)
      .filter((s): s is string => typeof s === 'string' && this.options.market.hasSymbol(s));
  }

  private exchangeInfo(): object {
    return {
      timezone: 'UTC',
      serverTime: this.options.clock.now(),
      futuresType: 'U_MARGINED',
      rateLimits: [
        {
          rateLimitType: 'REQUEST_WEIGHT',
          interval: 'MINUTE',
          intervalNum: 1,
          limit: this.options.weightLimitPerMinute,
        },
        { rateLimitType: 'ORDERS', interval: 'MINUTE', intervalNum: 1, limit: 1200 },
        { rateLimitType: 'ORDERS', interval: 'SECOND', intervalNum: 10, limit: 300 },
      ],
      exchangeFilters: [],
      assets: [
        { asset: 'USDT', marginAvailable: true, autoAssetExchange: '-10000' },
        { asset: 'USDC', marginAvailable: true, autoAssetExchange: '-10000' },
      ],
      symbols: this.options.market.exchangeInfoSymbols(),
    };
  }

  private rollMinute(): void {
    const minute = Math.floor(this.options.clock.now() / 60_000);
    if (minute !== this.minute) {
      this.minute = minute;
      this.usedWeight = 0;
    }
  }

  private chargeWouldExceed(weight: number): boolean {
    this.rollMinute();
    return this.usedWeight + weight > this.options.weightLimitPerMinute;
  }

  /** Refused requests still cost weight, as observed on Binance. */
  private withWeight(answer: SimResponse, weight: number): SimResponse {
    this.rollMinute();
    this.usedWeight += weight;
    answer.headers = { ...answer.headers, 'X-MBX-USED-WEIGHT-1M': String(this.usedWeight) };
    return answer;
  }

  private secondsToNextMinute(): number {
    return Math.max(1, Math.ceil((60_000 - (this.options.clock.now() % 60_000)) / 1000));
  }

  /** Weight used in the current UTC minute. */
  get weightUsed(): number {
    this.rollMinute();
    return this.usedWeight;
  }
}

function faultResponse(fault: RestFault, now: number): SimResponse {
  const retry = { 'Retry-After': String(fault.retryAfterSec) };
  if (fault.status === 429) {
    return {
      ...binanceError(
        429,
        -1003,
        'Too many requests; current limit is 2400 requests per minute. Please use the websocket for live updates to avoid polling the API.',
      ),
      headers: retry,
    };
  }
  if (fault.status === 418) {
    return {
      ...binanceError(
        418,
        -1003,
        `Way too many requests; IP(127.0.0.1) banned until ${now + fault.retryAfterSec * 1000}. Please use the websocket for live updates to avoid bans.`,
      ),
      headers: retry,
    };
  }
  return {
    ...binanceError(
      fault.status,
      -1001,
      'Internal error; unable to process your request. Please try again.',
    ),
    headers: retry,
  };
}

function notFound(req: SimRequest): SimResponse {
  return binanceError(404, -5000, `Path ${req.path}, Method ${req.method} is invalid`);
}

function mandatory(name: string): SimResponse {
  return binanceError(
    400,
    -1102,
    `Mandatory parameter '${name}' was not sent, was empty/null, or malformed.`,
  );
}

/** The next funding time: 00:00, 08:00 or 16:00 UTC. */
export function nextFundingTime(now: number): number {
  const eight = 8 * 3_600_000;
  return (Math.floor(now / eight) + 1) * eight;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > 1 << 20) break;
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}
