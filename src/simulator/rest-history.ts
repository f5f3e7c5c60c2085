/**
 * Binance's public history endpoints, over the market's own history (reference §7.1 and the
 * official connector's REST API docs): `aggTrades`, `trades`, `historicalTrades`, `klines`,
 * `markPriceKlines`, `indexPriceKlines`, `fundingRate`, with their weights, limits and error
 * codes. In replay mode (no history) they validate the request and answer `[]`.
 */
import { answerParamErrors, Params } from './params.js';
import {
  binanceError,
  jsonResponse,
  type Clock,
  type KlineKind,
  type MarketDataSource,
  type RestRoute,
  type SimRequest,
  type SimResponse,
} from './types.js';

export interface HistoryRouteOptions {
  market: MarketDataSource;
  clock: Clock;
  /** True for an API key the simulator knows (`historicalTrades` is MARKET_DATA: key only). */
  isApiKey?: (apiKey: string) => boolean;
}

const WEIGHT = {
  aggTrades: 20,
  trades: 5,
  historicalTrades: 20,
  fundingRate: 1,
} as const;

/** aggTrades only reach back this far (reference §7.1, `-4166`). */
const AGG_TRADES_WINDOW_MS = 48 * 3_600_000;

/**
 * Weight of the kline endpoints by `limit`: 1 up to 100, 2 up to 500, 5 up to 1000, 10 above
 * (observed: band edges inclusive at the top), and 5 when no limit is sent (reference §7.1).
 */
export function klinesWeight(limitText: string | null): number {
  if (limitText === null || limitText === '') return 5;
  const limit = Number(limitText);
  if (!Number.isFinite(limit)) return 1;
  return limit <= 100 ? 1 : limit <= 500 ? 2 : limit <= 1000 ? 5 : 10;
}

export class MarketHistoryRoute implements RestRoute {
  constructor(private readonly options: HistoryRouteOptions) {}

  route(req: SimRequest): SimResponse | undefined {
    if (req.method !== 'GET') return undefined;
    switch (req.path) {
      case '/fapi/v1/aggTrades':
        return answerParamErrors(() => this.aggTrades(new Params(req.params, WEIGHT.aggTrades)));
      case '/fapi/v1/trades':
        return answerParamErrors(() => this.trades(new Params(req.params, WEIGHT.trades)));
      case '/fapi/v1/historicalTrades':
        return this.historicalTrades(req);
      case '/fapi/v1/klines':
        return this.klines(req, 'trade');
      case '/fapi/v1/markPriceKlines':
        return this.klines(req, 'mark');
      case '/fapi/v1/indexPriceKlines':
        return this.klines(req, 'index');
      case '/fapi/v1/fundingRate':
        return answerParamErrors(() =>
          this.fundingRate(new Params(req.params, WEIGHT.fundingRate)),
        );
      default:
        return undefined;
    }
  }

  private symbol(p: Params, name = 'symbol'): string {
    const symbol = p.required(name);
    if (!this.options.market.hasSymbol(symbol)) p.fail(-1121, 'Invalid symbol.');
    return symbol;
  }

  /** `GET /fapi/v1/aggTrades?symbol[&fromId][&startTime][&endTime][&limit]` (weight 20). */
  private aggTrades(p: Params): SimResponse {
    const symbol = this.symbol(p);
    const fromId = p.long('fromId');
    const range = p.timeRange(1);
    const limit = p.limit(500, 1000);
    const oldest = this.options.clock.now() - AGG_TRADES_WINDOW_MS;
    const earliest = range.startTime ?? range.endTime;
    if (earliest !== undefined && earliest < oldest) {
      p.fail(-4166, 'Search window is restricted to recent 2 days only.');
    }
    const rows =
      this.options.market.history?.aggTrades(symbol, {
        ...range,
        limit,
        ...(fromId !== undefined && { fromId }),
      }) ?? [];
    return jsonResponse(rows, p.weight);
  }

  /** `GET /fapi/v1/trades?symbol[&limit]` (weight 5): the newest raw trades. */
  private trades(p: Params): SimResponse {
    const symbol = this.symbol(p);
    const limit = p.limit(500, 1000);
    return jsonResponse(this.options.market.history?.trades(symbol, limit) ?? [], p.weight);
  }

  /** `GET /fapi/v1/historicalTrades?symbol[&limit][&fromId]` (MARKET_DATA: API key; weight 20). */
  private historicalTrades(req: SimRequest): SimResponse {
    const weight = WEIGHT.historicalTrades;
    const apiKey = req.headers['x-mbx-apikey'];
    if (apiKey === undefined || apiKey === '') {
      return binanceError(401, -2014, 'API-key format invalid.', weight);
    }
    if (this.options.isApiKey && !this.options.isApiKey(apiKey)) {
      return binanceError(401, -2015, 'Invalid API-key, IP, or permissions for action.', weight);
    }
    return answerParamErrors(() => {
      const p = new Params(req.params, weight);
      const symbol = this.symbol(p);
      const limit = p.limit(100, 500);
      const fromId = p.long('fromId');
      const rows = this.options.market.history?.trades(symbol, limit, fromId) ?? [];
      return jsonResponse(rows, weight);
    });
  }

  /**
   * `GET /fapi/v1/klines?symbol&interval[&startTime][&endTime][&limit]`, `markPriceKlines`
   * (same parameters) and `indexPriceKlines` (`pair` instead of `symbol`). Limit 1…1500,
   * default 500; weight by limit.
   */
  private klines(req: SimRequest, kind: KlineKind): SimResponse {
    return answerParamErrors(() => {
      const p = new Params(req.params, klinesWeight(req.params.get('limit')));
      const symbol = this.symbol(p, kind === 'index' ? 'pair' : 'symbol');
      const interval = p.interval();
      const range = p.timeRange();
      const limit = p.limit(500, 1500);
      const rows =
        this.options.market.history?.klines(symbol, kind, interval, { ...range, limit }) ?? [];
      return jsonResponse(rows, p.weight);
    });
  }

  /** `GET /fapi/v1/fundingRate[?symbol][&startTime][&endTime][&limit]` (limit ≤ 1000, default 100). */
  private fundingRate(p: Params): SimResponse {
    let symbol: string | undefined;
    if (p.has('symbol')) symbol = this.symbol(p);
    const range = p.timeRange();
    const limit = p.limit(100, 1000);
    const rows = this.options.market.history?.fundingRates(symbol, { ...range, limit }) ?? [];
    return jsonResponse(rows, p.weight);
  }
}
