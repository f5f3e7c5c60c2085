import { ExchangeInfo } from './binance/exchange-info.js';
import { BinanceRest } from './binance/rest.js';
import { StreamManager } from './binance/stream-manager.js';
import type { GatewayConfig } from './config.js';
import { Hub } from './hub/hub.js';
import { createLogger, type Logger } from './log.js';
import { AccountService } from './account/account-service.js';
import { MarketService } from './market/market-service.js';
import { StatusService } from './server/health.js';
import { useOperationLimits } from './server/limits.js';
import {
  startGraphQLServer,
  type GraphQLServerHandle,
  type GraphQLServerOptions,
} from './server/server.js';

/** Knobs tests turn; production uses the defaults. */
export interface GatewayTuning {
  /** how long a topic and an upstream stream stay open after their last subscriber */
  lingerMs?: number;
  /** a connection with no frame and no pong for this long is replaced */
  staleAfterMs?: number;
  clientPingIntervalMs?: number;
  /** rotate upstream connections this long after they opened (Binance cuts at 24 h) */
  rotateAfterMs?: number;
  /** our own REQUEST_WEIGHT budget per minute (Binance allows 2400) */
  restWeightBudgetPerMinute?: number;
  /** listenKey keepalive interval (Binance validity: 60 min) */
  listenKeyKeepaliveMs?: number;
  /** WebSocket shared delivery knobs, or false for per-subscriber execution (benchmark) */
  sharedDelivery?: GraphQLServerOptions['sharedDelivery'];
  /** WebSocket keep-alive ping interval */
  wsKeepAliveMs?: number;
}

export interface GatewayHandle {
  url: string;
  port: number;
  logger: Logger;
  streams: StreamManager;
  hub: Hub;
  market: MarketService;
  account: AccountService;
  rest: BinanceRest;
  status: StatusService;
  http: GraphQLServerHandle;
  close(): Promise<void>;
}

/** Starts the gateway: one Binance REST client, one stream manager, one hub, one HTTP port. */
export async function startGateway(
  config: GatewayConfig,
  options: { logger?: Logger; tuning?: GatewayTuning } = {},
): Promise<GatewayHandle> {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const tuning = options.tuning ?? {};
  const rest = new BinanceRest({
    baseUrl: config.restUrl,
    logger: logger.child({ component: 'rest' }),
    ...(tuning.restWeightBudgetPerMinute !== undefined && {
      weightBudgetPerMinute: tuning.restWeightBudgetPerMinute,
    }),
  });
  const exchangeInfo = new ExchangeInfo(rest, logger);
  const streams = new StreamManager({
    baseUrl: config.streamUrl,
    logger: logger.child({ component: 'streams' }),
    ...(tuning.lingerMs !== undefined && { lingerMs: tuning.lingerMs }),
    ...(tuning.staleAfterMs !== undefined && { staleAfterMs: tuning.staleAfterMs }),
    ...(tuning.clientPingIntervalMs !== undefined && {
      clientPingIntervalMs: tuning.clientPingIntervalMs,
    }),
    ...(tuning.rotateAfterMs !== undefined && { rotateAfterMs: tuning.rotateAfterMs }),
  });
  const hub = new Hub({ lingerMs: tuning.lingerMs ?? 2_000, logger });
  const market = new MarketService({ rest, exchangeInfo, streams, hub, logger });
  const account = new AccountService({
    rest,
    streamUrl: config.streamUrl,
    hub,
    logger: logger.child({ component: 'account' }),
    ...(tuning.listenKeyKeepaliveMs !== undefined && { keepaliveMs: tuning.listenKeyKeepaliveMs }),
    ...(tuning.rotateAfterMs !== undefined && { rotateAfterMs: tuning.rotateAfterMs }),
    ...(tuning.staleAfterMs !== undefined && { staleAfterMs: tuning.staleAfterMs }),
    ...(tuning.clientPingIntervalMs !== undefined && {
      clientPingIntervalMs: tuning.clientPingIntervalMs,
    }),
  });

  const status = new StatusService({
    streams,
    market,
    hub,
    rest,
    userStreams: () => account.status(),
    deliveryCounters: () => ({ ...http.deliveryCounters() }),
  });
  const http = await startGraphQLServer({
    port: config.port,
    host: config.host,
    market,
    account,
    status,
    logger,
    ...(tuning.sharedDelivery !== undefined && { sharedDelivery: tuning.sharedDelivery }),
    ...(tuning.wsKeepAliveMs !== undefined && { keepAliveMs: tuning.wsKeepAliveMs }),
    extraRoutes: (req) => status.route(req),
    plugins: [useOperationLimits()],
  });
  // Load the symbol list now: the first subscription is faster and /readyz tells the truth early.
  exchangeInfo.all().catch((error: unknown) =>
    logger.warn('exchangeInfo not loaded at start', {
      error: error instanceof Error ? error.message : String(error),
    }),
  );
  logger.info('gateway listening', {
    url: http.url,
    binanceRest: config.restUrl,
    binanceStreams: config.streamUrl,
  });
  return {
    url: http.url,
    port: http.port,
    logger,
    streams,
    hub,
    market,
    account,
    rest,
    status,
    http,
    async close() {
      await http.close();
      hub.close();
      await account.close();
      await streams.close();
      await rest.close();
    },
  };
}
