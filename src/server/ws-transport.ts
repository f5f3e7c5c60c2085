import type { IncomingMessage } from 'node:http';
import {
  GraphQLError,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLSchema,
} from 'graphql';
import {
  CloseCode,
  handleProtocols,
  makeServer,
  type OperationResult,
  type SubscribePayload,
} from 'graphql-ws';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Credentials } from '../binance/rest.js';
import type { Logger } from '../log.js';
import { credentialsFromExtensions, credentialsFromInit } from './credentials.js';
import {
  SharedDelivery,
  contextKey,
  groupKey,
  sharePlan,
  stripError,
  stripResult,
  ZERO_DELIVERY_COUNTERS,
  type DeliveryCounters,
  type Outlet,
  type ShareTicket,
  type SharedDeliveryOptions,
} from './shared-subscriptions.js';

/**
 * graphql-ws (the protocol: `makeServer`) on `ws`, replacing graphql-ws' own `useServer` glue
 * (graphql-ws/use/ws) so that the gateway owns the socket writes: shareable subscriptions are
 * executed once per group and their bytes written straight to each socket
 * (`shared-subscriptions.ts`); everything else goes through graphql-ws exactly as `useServer`
 * would run it. Kept from `useServer`: the subprotocol check, a keep-alive ping that terminates
 * half-open sockets, close codes (4500 for internal errors, never with the error text).
 */

/** Transport knobs; defaults in `DEFAULT_WS_TRANSPORT`. */
export interface WsTransportOptions {
  /**
   * Every socket is pinged this often; one that has not answered the previous ping by the next
   * one is terminated, so a half-open client is found within two intervals. 0 disables.
   */
  keepAliveMs: number;
  /** A socket that has not sent `connection_init` within this time is closed with 4408. */
  connectionInitWaitTimeoutMs: number;
  /**
   * Shared delivery knobs, or `false` to run every subscription per subscriber (plain yoga +
   * graphql-ws behaviour; the benchmark's naive reference).
   */
  sharedDelivery: Partial<SharedDeliveryOptions> | false;
  /**
   * Active subscriptions one connection may hold; the next one fails alone with RATE_LIMITED
   * (the socket and its other subscriptions stay up).
   */
  maxSubscriptionsPerConnection: number;
  /**
   * Largest `subscribe` message (query plus variables); a larger one fails alone with
   * BAD_USER_INPUT. The socket-level `maxPayload` is a larger hard cap above which `ws` closes
   * the whole connection (1009), so ordinary mistakes never cost the other subscriptions.
   */
  maxOperationBytes: number;
}

export const DEFAULT_WS_TRANSPORT: Readonly<WsTransportOptions> = {
  keepAliveMs: 12_000,
  connectionInitWaitTimeoutMs: 3_000,
  sharedDelivery: {},
  maxSubscriptionsPerConnection: 100,
  maxOperationBytes: 64 * 1024,
};

/** The part of yoga's `getEnveloped()` result the transport uses. */
export interface Enveloped {
  schema: GraphQLSchema;
  parse(source: string): DocumentNode;
  validate(schema: GraphQLSchema, document: DocumentNode): readonly GraphQLError[];
  contextFactory(): unknown;
  execute(args: ExecutionArgs): unknown;
  subscribe(args: ExecutionArgs): unknown;
}

export interface WsTransportParams {
  wss: WebSocketServer;
  /** yoga's `getEnveloped`: every operation runs through it (masking, limits, plugins) */
  getEnveloped(initialContext: Record<string, unknown>): Enveloped;
  logger: Logger;
  options?: Partial<WsTransportOptions>;
}

export interface WsTransport {
  /** shared-delivery counters (all zero when sharing is off) */
  counters(): DeliveryCounters;
  /** the shared layer, for tests (undefined when sharing is off) */
  shared: SharedDelivery | undefined;
  /** stops the keep-alive timer; sockets are closed by the server's own close */
  close(): void;
}

/** What graphql-ws keeps per connection (`ctx.extra`). */
interface Extra {
  socket: WebSocket;
  request: IncomingMessage;
  /** the shared path's handle on this socket (undefined when sharing is off) */
  outlet: Outlet | undefined;
  initCredentials?: Credentials | undefined;
  /** ids of this connection's operations that passed onSubscribe and have not completed */
  active?: Set<string>;
}

/** `rootValue` of an operation: how the transport's `execute`/`subscribe` run it. */
type Root =
  | { kind: 'own'; enveloped: Enveloped }
  | { kind: 'shared'; delivery: SharedDelivery; ticket: ShareTicket; outlet: Outlet; id: string };

/** Serves graphql-ws on `wss`. */
export function attachWsTransport(params: WsTransportParams): WsTransport {
  const { wss, logger, getEnveloped } = params;
  const options: WsTransportOptions = { ...DEFAULT_WS_TRANSPORT, ...params.options };
  const shared =
    options.sharedDelivery === false
      ? undefined
      : new SharedDelivery(logger.child({ component: 'shared-delivery' }), options.sharedDelivery);

  const server = makeServer<Record<string, unknown> | undefined, Extra>({
    connectionInitWaitTimeout: options.connectionInitWaitTimeoutMs,
    onConnect: (ctx) => {
      ctx.extra.initCredentials = credentialsFromInit(ctx.connectionParams);
      return true;
    },
    onSubscribe: async (ctx, id, payload: SubscribePayload) => {
      const active = (ctx.extra.active ??= new Set());
      if (active.size >= options.maxSubscriptionsPerConnection) {
        return [
          limitError(
            `This connection already holds ${active.size} subscriptions; the limit is ${options.maxSubscriptionsPerConnection}.`,
            'RATE_LIMITED',
            'maxSubscriptionsPerConnection',
            options.maxSubscriptionsPerConnection,
          ),
        ];
      }
      const size =
        payload.query.length + (payload.variables ? JSON.stringify(payload.variables).length : 0);
      if (size > options.maxOperationBytes) {
        return [
          limitError(
            `The operation is ${size} bytes; the limit is ${options.maxOperationBytes}.`,
            'BAD_USER_INPUT',
            'maxOperationBytes',
            options.maxOperationBytes,
          ),
        ];
      }
      const credentials =
        credentialsFromExtensions(payload.extensions) ?? ctx.extra.initCredentials;
      const enveloped = getEnveloped({
        ...ctx,
        req: ctx.extra.request,
        socket: ctx.extra.socket,
        params: payload,
        credentials,
      });
      // A bad document fails this operation only: return its errors, never throw (a throw here
      // closes the whole socket with 4500 and kills the caller's other subscriptions).
      let document: DocumentNode;
      try {
        document = enveloped.parse(payload.query);
      } catch (err) {
        return [asGraphQLError(err, 'GRAPHQL_PARSE_FAILED')];
      }
      const errors = enveloped.validate(enveloped.schema, document);
      if (errors.length > 0) {
        return errors.map((e) => withCode(e, 'GRAPHQL_VALIDATION_FAILED'));
      }
      const base = {
        schema: enveloped.schema,
        operationName: payload.operationName ?? null,
        document,
        variableValues: payload.variables ?? null,
      };
      const outlet = ctx.extra.outlet;
      const plan = shared && outlet ? sharePlan(document, payload.operationName) : undefined;
      if (shared && outlet && plan) {
        // The context is built only if this subscriber starts a group: members of a live group
        // need none, and the ticket drops `start` (and with it the envelope) once used.
        const ticket: ShareTicket = {
          key: groupKey(
            document,
            payload.operationName,
            payload.variables,
            contextKey(plan, credentials),
          ),
          plan,
          start: async () =>
            enveloped.subscribe({
              ...base,
              contextValue: await enveloped.contextFactory(),
            }) as Promise<AsyncIterable<ExecutionResult> | ExecutionResult>,
        };
        const root: Root = { kind: 'shared', delivery: shared, ticket, outlet, id };
        active.add(id);
        return { ...base, contextValue: null, rootValue: root };
      }
      const root: Root = { kind: 'own', enveloped };
      const contextValue = await enveloped.contextFactory();
      active.add(id);
      return { ...base, contextValue, rootValue: root };
    },
    onComplete: (ctx, id) => {
      ctx.extra.active?.delete(id);
    },
    execute: (args) =>
      (args.rootValue as Root & { kind: 'own' }).enveloped.execute(args) as OperationResult,
    subscribe: (args) => {
      const root = args.rootValue as Root;
      if (root.kind === 'shared') return root.delivery.join(root.ticket, root.outlet, root.id);
      return root.enveloped.subscribe(args) as OperationResult;
    },
    onNext: (_ctx, _id, _payload, _args, result) => stripResult(result),
    onError: (_ctx, _id, _payload, errors) => errors.map(stripError),
  });

  wss.options.handleProtocols = handleProtocols;
  wss.on('error', (err) => {
    logger.error('WebSocket server error', { error: err });
    for (const client of wss.clients)
      client.close(CloseCode.InternalServerError, 'Internal server error');
  });

  // One keep-alive timer for all sockets (ws' "isAlive" pattern): a socket that did not answer
  // the previous ping is terminated.
  const alive = new WeakMap<WebSocket, boolean>();
  const keepAlive =
    options.keepAliveMs > 0 && Number.isFinite(options.keepAliveMs)
      ? setInterval(() => {
          for (const socket of wss.clients) {
            if (socket.readyState !== socket.OPEN) continue;
            if (alive.get(socket) === false) {
              socket.terminate();
              continue;
            }
            alive.set(socket, false);
            socket.ping();
          }
        }, options.keepAliveMs)
      : undefined;
  keepAlive?.unref();

  wss.on('connection', (socket, request) => {
    alive.set(socket, true);
    socket.on('pong', () => alive.set(socket, true));
    socket.on('error', (err) => {
      logger.warn('WebSocket error', { error: err.message });
      socket.close(CloseCode.InternalServerError, 'Internal server error');
    });
    const outlet = shared?.outlet(socket, request.socket);
    const closed = server.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            if (socket.readyState !== socket.OPEN) return resolve();
            // shared-delivery frames held for this tick's batch go first: wire order = call order
            outlet?.flushHeld();
            socket.send(data, (err) => (err ? reject(err) : resolve()));
          }),
        close: (code, reason) => {
          outlet?.flushHeld();
          socket.close(code, reason);
        },
        onMessage: (cb) =>
          socket.on('message', (data) => {
            cb(String(data)).catch((err: unknown) => {
              logger.error('graphql-ws message handling failed', {
                error: err instanceof Error ? err : String(err),
              });
              socket.close(CloseCode.InternalServerError, 'Internal server error');
            });
          }),
      },
      { socket, request, outlet },
    );
    socket.once('close', (code, reason) => {
      outlet?.dispose();
      closed(code, String(reason)).catch((err: unknown) =>
        logger.warn('graphql-ws close handling failed', {
          error: err instanceof Error ? err.message : String(err),
        }),
      );
    });
  });

  return {
    counters: () => shared?.stats() ?? { ...ZERO_DELIVERY_COUNTERS },
    shared,
    close() {
      clearInterval(keepAlive);
      shared?.flush();
    },
  };
}

function asGraphQLError(err: unknown, code: string): GraphQLError {
  if (err instanceof GraphQLError) return withCode(err, code);
  return new GraphQLError('Syntax error.', { extensions: { code } });
}

function withCode(e: GraphQLError, code: string): GraphQLError {
  if (e.extensions.code) return e;
  return new GraphQLError(e.message, {
    nodes: e.nodes,
    source: e.source,
    positions: e.positions,
    path: e.path,
    extensions: { ...e.extensions, code },
  });
}

function limitError(message: string, code: string, limit: string, max: number): GraphQLError {
  return new GraphQLError(message, { extensions: { code, limit, max } });
}
