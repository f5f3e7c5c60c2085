import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { GraphQLError } from 'graphql';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import type { Credentials } from '../binance/rest.js';
import type { Logger } from '../log.js';
import type { AccountApi, GatewayContext, MarketApi, StatusApi } from '../schema/context.js';
import { schema } from '../schema/schema.js';
import { credentialsFromHeaders } from './credentials.js';
import type { DeliveryCounters, SharedDelivery } from './shared-subscriptions.js';
import {
  attachWsTransport,
  DEFAULT_WS_TRANSPORT,
  type Enveloped,
  type WsTransportOptions,
} from './ws-transport.js';

/** Codes a client may see unmasked (gateway-contract.md, "Errors"), plus graphql-js' own. */
const CLIENT_CODES = new Set([
  'BAD_USER_INPUT',
  'UNAUTHENTICATED',
  'INVALID_API_KEY',
  'RATE_LIMITED',
  'UPSTREAM_UNAVAILABLE',
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
]);

export interface GraphQLServerOptions {
  port: number;
  host: string;
  market: MarketApi;
  account: AccountApi;
  status: StatusApi;
  logger: Logger;
  /**
   * Hard cap on one WebSocket message (ws' default is 100 MiB); above it `ws` closes the socket
   * with 1009. Default 1 MiB, well above `maxOperationBytes`, which fails one operation alone.
   */
  maxPayloadBytes?: number;
  /** Largest subscribe message (query + variables) on WebSocket (default 64 KiB). */
  maxOperationBytes?: number;
  /** Active subscriptions one WebSocket connection may hold (default 100). */
  maxSubscriptionsPerConnection?: number;
  /** A WebSocket without `connection_init` within this time is closed with 4408 (default 3 s). */
  connectionInitWaitTimeoutMs?: number;
  /** Keep-alive ping interval; a socket silent for two of them is terminated (default 12 s). */
  keepAliveMs?: number;
  /**
   * Shared delivery of WebSocket subscriptions (`shared-subscriptions.ts`): knobs, or `false`
   * to run every subscription per subscriber (the benchmark's naive reference).
   */
  sharedDelivery?: WsTransportOptions['sharedDelivery'];
  /** Extra envelop plugins (limits, metrics). */
  plugins?: Plugin[];
  /** Extra HTTP routes served beside /graphql (health, metrics). */
  extraRoutes?: (
    req: IncomingMessage,
  ) => { status: number; type: string; body: string } | undefined;
}

export interface GraphQLServerHandle {
  url: string;
  port: number;
  server: Server;
  yoga: YogaServerInstance<Record<string, unknown>, GatewayContext>;
  /** Counters of the WebSocket shared-delivery path (for /metrics and tests). */
  deliveryCounters(): DeliveryCounters;
  /** The shared-delivery layer (undefined when `sharedDelivery` is false), for tests. */
  shared: SharedDelivery | undefined;
  close(): Promise<void>;
}

interface ServerContext {
  credentials?: Credentials | undefined;
}

/**
 * One HTTP server, one port: yoga serves `/graphql` (queries, SSE subscriptions, GraphiQL) and
 * graphql-ws (on `ws`) serves WebSocket subscriptions on the same path. Every WebSocket
 * operation runs through `yoga.getEnveloped`, so masking, limits and logging apply on every
 * transport alike.
 */
export async function startGraphQLServer(
  options: GraphQLServerOptions,
): Promise<GraphQLServerHandle> {
  const { logger } = options;
  const yoga = createYoga<ServerContext, GatewayContext>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    // Self-contained GraphiQL (no CDN) with subscriptions over WebSocket.
    renderGraphiQL,
    graphiql: {
      subscriptionsProtocol: 'WS',
      title: 'Binance Futures GraphQL gateway',
      defaultQuery: DEFAULT_QUERY,
    },
    logging: {
      debug: (...args) => logger.debug(String(args[0]), {}),
      info: (...args) => logger.info(String(args[0]), {}),
      warn: (...args) => logger.warn(String(args[0]), {}),
      // errors a client caused (coded) are not server errors
      error: (...args) =>
        args.some(isClientError)
          ? logger.debug(String(args[0]), { detail: args.slice(1).map(String) })
          : logger.error(String(args[0]), { detail: args.slice(1).map(String) }),
    },
    maskedErrors: {
      maskError: (error, message) => maskError(error, message, logger),
    },
    context: ({ request, credentials }: { request?: Request } & ServerContext) => ({
      market: options.market,
      account: options.account,
      status: options.status,
      credentials: credentials ?? (request ? credentialsFromHeaders(request.headers) : undefined),
    }),
    plugins: options.plugins ?? [],
  });

  const maxOperationBytes = options.maxOperationBytes ?? DEFAULT_WS_TRANSPORT.maxOperationBytes;
  const server = createServer((req, res) => {
    const extra = options.extraRoutes?.(req);
    if (extra) {
      res.writeHead(extra.status, { 'content-type': extra.type });
      res.end(extra.body);
      return;
    }
    // The HTTP twin of the WebSocket size limits: an oversized request fails alone, coded.
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > maxOperationBytes) {
      res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
      res.end(
        JSON.stringify({
          errors: [
            {
              message: `The request is ${length} bytes; the limit is ${maxOperationBytes}.`,
              extensions: {
                code: 'BAD_USER_INPUT',
                limit: 'maxOperationBytes',
                max: maxOperationBytes,
              },
            },
          ],
        }),
      );
      req.resume();
      return;
    }
    void yoga.requestListener(req, res);
  });

  const wss = new WebSocketServer({
    server,
    path: '/graphql',
    maxPayload: options.maxPayloadBytes ?? 1024 * 1024,
  });

  const transport = attachWsTransport({
    wss,
    getEnveloped: (initialContext) => yoga.getEnveloped(initialContext) as Enveloped,
    logger,
    options: {
      ...(options.connectionInitWaitTimeoutMs !== undefined && {
        connectionInitWaitTimeoutMs: options.connectionInitWaitTimeoutMs,
      }),
      ...(options.keepAliveMs !== undefined && { keepAliveMs: options.keepAliveMs }),
      ...(options.sharedDelivery !== undefined && { sharedDelivery: options.sharedDelivery }),
      ...(options.maxOperationBytes !== undefined && {
        maxOperationBytes: options.maxOperationBytes,
      }),
      ...(options.maxSubscriptionsPerConnection !== undefined && {
        maxSubscriptionsPerConnection: options.maxSubscriptionsPerConnection,
      }),
    },
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}/graphql`,
    port,
    server,
    yoga: yoga as unknown as GraphQLServerHandle['yoga'],
    deliveryCounters: () => transport.counters(),
    shared: transport.shared,
    async close() {
      transport.close();
      for (const client of wss.clients) client.close(1001, 'Going away');
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function maskError(error: unknown, message: string, logger: Logger): Error {
  const original = error instanceof GraphQLError ? (error.originalError ?? error) : error;
  const code =
    original instanceof GraphQLError
      ? original.extensions.code
      : error instanceof GraphQLError
        ? error.extensions.code
        : undefined;
  if (typeof code === 'string' && CLIENT_CODES.has(code) && error instanceof GraphQLError) {
    if (original instanceof GraphQLError && original !== error) {
      return new GraphQLError(original.message, {
        nodes: error.nodes,
        source: error.source,
        positions: error.positions,
        path: error.path,
        extensions: { ...original.extensions },
      });
    }
    return error;
  }
  logger.error('unexpected error', {
    error: original instanceof Error ? original : String(original),
  });
  return new GraphQLError(message, {
    path: error instanceof GraphQLError ? error.path : undefined,
    extensions: { code: 'INTERNAL_SERVER_ERROR' },
  });
}

function isClientError(e: unknown): boolean {
  const code = e instanceof GraphQLError ? (e.originalError ?? e) : e;
  return (
    code instanceof GraphQLError &&
    typeof code.extensions.code === 'string' &&
    CLIENT_CODES.has(code.extensions.code)
  );
}

const DEFAULT_QUERY = `# Live order book over WebSocket. Put your Binance key in the Headers tab for
# account data: {"X-MBX-APIKEY": "...", "X-MBX-APISECRET": "..."}
subscription Book {
  orderBook(symbol: "BTCUSDT", depth: 5) {
    symbol
    lastUpdateId
    bids { price quantity }
    asks { price quantity }
  }
}
`;
