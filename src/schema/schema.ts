import SchemaBuilder from '@pothos/core';
import { GraphQLError, Kind, type GraphQLSchema } from 'graphql';
import type { SymbolInfo } from '../binance/exchange-info.js';
import { badInput } from '../errors.js';
import type {
  GatewayStatusView,
  OrderBookStatusView,
  UpstreamConnectionView,
  UserStreamStatusView,
  AccountConfigUpdateView,
  AccountEventView,
  AccountUpdateView,
  BalanceView,
  GatewayContext,
  OrderBookView,
  OrderUpdateView,
  PositionView,
  PriceLevel,
  TickerView,
  TradeView,
} from './context.js';

const builder = new SchemaBuilder<{
  Context: GatewayContext;
  DefaultFieldNullability: false;
  Scalars: {
    Decimal: { Input: string; Output: string };
    Timestamp: { Input: number; Output: number };
    Long: { Input: number; Output: number };
  };
}>({ defaultFieldNullability: false });

const DECIMAL = /^-?\d+(\.\d+)?$/;

builder.scalarType('Decimal', {
  description: 'Exact decimal number serialized as a JSON string, e.g. "67012.10". Never a float.',
  serialize: (v) => v,
  parseValue: (v) => {
    if (typeof v !== 'string' || !DECIMAL.test(v))
      throw badInput('Decimal must be a string like "67012.10".');
    return v;
  },
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.STRING || !DECIMAL.test(ast.value)) {
      throw new GraphQLError('Decimal must be a string like "67012.10".', {
        extensions: { code: 'BAD_USER_INPUT' },
      });
    }
    return ast.value;
  },
});

const integerScalar = (name: 'Timestamp' | 'Long', description: string): void => {
  builder.scalarType(name, {
    description,
    serialize: (v) => v,
    parseValue: (v) => {
      if (typeof v !== 'number' || !Number.isSafeInteger(v))
        throw badInput(`${name} must be an integer.`);
      return v;
    },
    parseLiteral: (ast) => {
      if (ast.kind !== Kind.INT) {
        throw new GraphQLError(`${name} must be an integer.`, {
          extensions: { code: 'BAD_USER_INPUT' },
        });
      }
      return Number(ast.value);
    },
  });
};
integerScalar('Timestamp', 'Milliseconds since the Unix epoch, serialized as a JSON number.');
integerScalar(
  'Long',
  '64-bit integer serialized as a JSON number (Binance update ids and trade ids; all below 2^53).',
);

const Side = builder.enumType('Side', { values: ['BUY', 'SELL'] as const });
const PositionSide = builder.enumType('PositionSide', {
  values: ['BOTH', 'LONG', 'SHORT'] as const,
});

const PriceLevelRef = builder.objectRef<PriceLevel>('PriceLevel').implement({
  fields: (t) => ({
    price: t.expose('price', { type: 'Decimal' }),
    quantity: t.expose('quantity', { type: 'Decimal' }),
  }),
});

const OrderBookRef = builder.objectRef<OrderBookView>('OrderBook').implement({
  description: "A consistent view of the top of one symbol's order book.",
  fields: (t) => ({
    symbol: t.exposeString('symbol'),
    lastUpdateId: t.expose('lastUpdateId', {
      type: 'Long',
      description:
        "Update id of the last applied diff (Binance `u`), or the snapshot's lastUpdateId.",
    }),
    eventTime: t.expose('eventTime', {
      type: 'Timestamp',
      description: 'Binance event time (`E`) of the last applied diff.',
    }),
    transactionTime: t.expose('transactionTime', {
      type: 'Timestamp',
      description: 'Binance transaction time (`T`) of the last applied diff.',
    }),
    bids: t.expose('bids', {
      type: [PriceLevelRef],
      description:
        'Best first: strictly descending prices, no zero quantities, at most `depth` levels.',
    }),
    asks: t.expose('asks', {
      type: [PriceLevelRef],
      description:
        'Best first: strictly ascending prices, no zero quantities, at most `depth` levels.',
    }),
  }),
});

const TradeRef = builder.objectRef<TradeView>('Trade').implement({
  description: 'One aggregate trade (Binance `aggTrade`).',
  fields: (t) => ({
    symbol: t.exposeString('symbol'),
    aggregateTradeId: t.expose('aggregateTradeId', { type: 'Long' }),
    price: t.expose('price', { type: 'Decimal' }),
    quantity: t.expose('quantity', { type: 'Decimal' }),
    firstTradeId: t.expose('firstTradeId', { type: 'Long' }),
    lastTradeId: t.expose('lastTradeId', { type: 'Long' }),
    tradeTime: t.expose('tradeTime', { type: 'Timestamp' }),
    eventTime: t.expose('eventTime', { type: 'Timestamp' }),
    buyerIsMaker: t.exposeBoolean('buyerIsMaker'),
    side: t.expose('side', {
      type: Side,
      description: "The aggressor's side: SELL when the buyer is the maker.",
    }),
  }),
});

const TickerRef = builder.objectRef<TickerView>('Ticker').implement({
  description: 'Rolling 24-hour statistics (Binance `24hrTicker`).',
  fields: (t) => ({
    symbol: t.exposeString('symbol'),
    lastPrice: t.expose('lastPrice', { type: 'Decimal' }),
    lastQuantity: t.expose('lastQuantity', { type: 'Decimal' }),
    priceChange: t.expose('priceChange', { type: 'Decimal' }),
    priceChangePercent: t.expose('priceChangePercent', { type: 'Decimal' }),
    weightedAveragePrice: t.expose('weightedAveragePrice', { type: 'Decimal' }),
    openPrice: t.expose('openPrice', { type: 'Decimal' }),
    highPrice: t.expose('highPrice', { type: 'Decimal' }),
    lowPrice: t.expose('lowPrice', { type: 'Decimal' }),
    volume: t.expose('volume', { type: 'Decimal' }),
    quoteVolume: t.expose('quoteVolume', { type: 'Decimal' }),
    openTime: t.expose('openTime', { type: 'Timestamp' }),
    closeTime: t.expose('closeTime', { type: 'Timestamp' }),
    firstTradeId: t.expose('firstTradeId', { type: 'Long' }),
    lastTradeId: t.expose('lastTradeId', { type: 'Long' }),
    tradeCount: t.expose('tradeCount', { type: 'Long' }),
    eventTime: t.expose('eventTime', { type: 'Timestamp' }),
  }),
});

const SymbolInfoRef = builder.objectRef<SymbolInfo>('SymbolInfo').implement({
  fields: (t) => ({
    symbol: t.exposeString('symbol'),
    status: t.exposeString('status'),
    baseAsset: t.exposeString('baseAsset'),
    quoteAsset: t.exposeString('quoteAsset'),
    pricePrecision: t.exposeInt('pricePrecision'),
    quantityPrecision: t.exposeInt('quantityPrecision'),
    tickSize: t.expose('tickSize', { type: 'Decimal' }),
    stepSize: t.expose('stepSize', { type: 'Decimal' }),
  }),
});

const BalanceRef = builder.objectRef<BalanceView>('Balance').implement({
  fields: (t) => ({
    asset: t.exposeString('asset'),
    walletBalance: t.expose('walletBalance', { type: 'Decimal' }),
    crossWalletBalance: t.expose('crossWalletBalance', { type: 'Decimal' }),
  }),
});

const PositionRef = builder.objectRef<PositionView>('Position').implement({
  fields: (t) => ({
    symbol: t.exposeString('symbol'),
    positionSide: t.expose('positionSide', { type: PositionSide }),
    positionAmount: t.expose('positionAmount', {
      type: 'Decimal',
      description: 'Signed: negative for a short position.',
    }),
    entryPrice: t.expose('entryPrice', { type: 'Decimal' }),
    unrealizedProfit: t.expose('unrealizedProfit', { type: 'Decimal' }),
  }),
});

const AccountUpdateRef = builder.objectRef<AccountUpdateView>('AccountUpdate').implement({
  description: 'Binance `ACCOUNT_UPDATE`: only the balances and positions that changed.',
  fields: (t) => ({
    eventTime: t.expose('eventTime', { type: 'Timestamp' }),
    transactionTime: t.expose('transactionTime', { type: 'Timestamp' }),
    reason: t.exposeString('reason', {
      description: 'Binance reason type `m`, e.g. ORDER, FUNDING_FEE, DEPOSIT.',
    }),
    balances: t.expose('balances', { type: [BalanceRef] }),
    positions: t.expose('positions', { type: [PositionRef] }),
  }),
});

const OrderUpdateRef = builder.objectRef<OrderUpdateView>('OrderUpdate').implement({
  description: 'Binance `ORDER_TRADE_UPDATE`.',
  fields: (t) => ({
    eventTime: t.expose('eventTime', { type: 'Timestamp' }),
    transactionTime: t.expose('transactionTime', { type: 'Timestamp' }),
    symbol: t.exposeString('symbol'),
    orderId: t.exposeID('orderId', {
      description: 'Binance order id; may exceed 2^53, so it is a string.',
    }),
    clientOrderId: t.exposeString('clientOrderId'),
    side: t.expose('side', { type: Side }),
    orderType: t.exposeString('orderType'),
    executionType: t.exposeString('executionType', {
      description: 'Binance execution type `x`: NEW, TRADE, CANCELED, EXPIRED, ...',
    }),
    orderStatus: t.exposeString('orderStatus', {
      description: 'Binance order status `X`: NEW, PARTIALLY_FILLED, FILLED, CANCELED, ...',
    }),
    price: t.expose('price', { type: 'Decimal' }),
    quantity: t.expose('quantity', { type: 'Decimal' }),
    averagePrice: t.expose('averagePrice', { type: 'Decimal' }),
    lastFilledQuantity: t.expose('lastFilledQuantity', { type: 'Decimal' }),
    lastFilledPrice: t.expose('lastFilledPrice', { type: 'Decimal' }),
    cumulativeFilledQuantity: t.expose('cumulativeFilledQuantity', { type: 'Decimal' }),
    tradeId: t.exposeID('tradeId', {
      description: 'Binance trade id `t` of the fill; "0" when the event is not a fill.',
    }),
    realizedProfit: t.expose('realizedProfit', { type: 'Decimal' }),
  }),
});

const LeverageChangeRef = builder
  .objectRef<{ symbol: string; leverage: number }>('LeverageChange')
  .implement({
    fields: (t) => ({ symbol: t.exposeString('symbol'), leverage: t.exposeInt('leverage') }),
  });

const AccountConfigUpdateRef = builder
  .objectRef<AccountConfigUpdateView>('AccountConfigUpdate')
  .implement({
    description:
      "Binance `ACCOUNT_CONFIG_UPDATE`: a symbol's leverage changed (`ac`) or multi-assets mode changed (`ai`).",
    fields: (t) => ({
      eventTime: t.expose('eventTime', { type: 'Timestamp' }),
      transactionTime: t.expose('transactionTime', { type: 'Timestamp' }),
      leverageChange: t.expose('leverageChange', {
        type: LeverageChangeRef,
        nullable: true,
        description: "Set when a symbol's leverage changed.",
      }),
      multiAssetsMode: t.exposeBoolean('multiAssetsMode', {
        nullable: true,
        description: 'Set when multi-assets mode changed.',
      }),
    }),
  });

const AccountEventRef = builder.unionType('AccountEvent', {
  types: [AccountUpdateRef, OrderUpdateRef, AccountConfigUpdateRef],
  resolveType: (event: AccountEventView) => event.__typename,
});

const UpstreamConnectionRef = builder
  .objectRef<UpstreamConnectionView>('UpstreamConnectionStatus')
  .implement({
    description: 'One upstream Binance connection.',
    fields: (t) => ({
      id: t.exposeInt('id'),
      path: t.exposeString('path', { description: '`public`, `market` or `private`.' }),
      state: t.exposeString('state', {
        description: '`connecting`, `open`, `closing`, `closed` or `reconnecting`.',
      }),
      streams: t.exposeInt('streams', { description: 'Binance streams carried.' }),
      lastFrameAgeMs: t.exposeFloat('lastFrameAgeMs', {
        nullable: true,
        description: 'Milliseconds since the last frame; null before the first one.',
      }),
      reconnects: t.exposeInt('reconnects'),
      ageMs: t.exposeFloat('ageMs', { nullable: true, description: 'Age of the current socket.' }),
      malformedFrames: t.exposeInt('malformedFrames'),
    }),
  });

const OrderBookStatusRef = builder.objectRef<OrderBookStatusView>('OrderBookStatus').implement({
  description: 'One shared order book.',
  fields: (t) => ({
    symbol: t.exposeString('symbol'),
    state: t.exposeString('state', { description: '`idle`, `syncing`, `live` or `resyncing`.' }),
    resyncCount: t.exposeInt('resyncCount'),
    lastUpdateId: t.expose('lastUpdateId', { type: 'Long' }),
  }),
});

const UserStreamStatusRef = builder.objectRef<UserStreamStatusView>('UserStreamStatus').implement({
  description: 'One per-key user data stream, named by a hash prefix of the key (never the key).',
  fields: (t) => ({
    keyHash: t.exposeString('keyHash'),
    state: t.exposeString('state'),
    subscribers: t.exposeInt('subscribers'),
    reconnects: t.exposeInt('reconnects'),
    listenKeyRenewals: t.exposeInt('listenKeyRenewals'),
    lastEventAgeMs: t.exposeFloat('lastEventAgeMs', { nullable: true }),
  }),
});

const GatewayStatusRef = builder.objectRef<GatewayStatusView>('GatewayStatus').implement({
  description: "The gateway's health as data. Holds no credential.",
  fields: (t) => ({
    ready: t.exposeBoolean('ready', { description: 'The upstream is usable.' }),
    uptimeMs: t.exposeFloat('uptimeMs'),
    upstreamConnections: t.expose('upstreamConnections', { type: [UpstreamConnectionRef] }),
    orderBooks: t.expose('orderBooks', { type: [OrderBookStatusRef] }),
    userStreams: t.expose('userStreams', { type: [UserStreamStatusRef] }),
    restWeightUsed: t.exposeInt('restWeightUsed', {
      description: 'Binance REQUEST_WEIGHT used in the current minute.',
    }),
    subscribers: t.exposeInt('subscribers'),
    upstreamReconnects: t.exposeInt('upstreamReconnects'),
    upstreamRotations: t.exposeInt('upstreamRotations'),
  }),
});

const depthArg = (depth: number): number => {
  if (!Number.isInteger(depth) || depth < 1 || depth > 1000) {
    throw badInput(`depth must be between 1 and 1000, got ${depth}.`);
  }
  return depth;
};

builder.queryType({
  fields: (t) => ({
    symbols: t.field({
      type: [SymbolInfoRef],
      description: 'Tradable USD-M perpetual symbols, from exchangeInfo.',
      resolve: (_root, _args, ctx) => ctx.market.symbols(),
    }),
    orderBook: t.field({
      type: OrderBookRef,
      description:
        'The current book, from the shared live book when one exists, else a REST snapshot.',
      args: {
        symbol: t.arg.string({ required: true }),
        depth: t.arg.int({ required: true, defaultValue: 20 }),
      },
      resolve: (_root, args, ctx) => ctx.market.orderBook(args.symbol, depthArg(args.depth)),
    }),
    ticker: t.field({
      type: TickerRef,
      args: { symbol: t.arg.string({ required: true }) },
      resolve: (_root, args, ctx) => ctx.market.ticker(args.symbol),
    }),
    status: t.field({
      type: GatewayStatusRef,
      description:
        'Upstream connections, order books and user streams, as the gateway sees them now.',
      resolve: (_root, _args, ctx) => ctx.status.status(),
    }),
  }),
});

builder.subscriptionType({
  fields: (t) => ({
    orderBook: t.field({
      type: OrderBookRef,
      description:
        "The book's top `depth` levels (1..1000): a full view on subscribe, then a new view after\nevery applied update (or at most every `throttleMs`, latest view wins).",
      args: {
        symbol: t.arg.string({ required: true }),
        depth: t.arg.int({ required: true, defaultValue: 20 }),
        throttleMs: t.arg.int({ required: true, defaultValue: 0 }),
      },
      subscribe: (_root, args, ctx) => {
        if (args.throttleMs < 0)
          throw badInput(`throttleMs must not be negative, got ${args.throttleMs}.`);
        return ctx.market.subscribeOrderBook(args.symbol, depthArg(args.depth), args.throttleMs);
      },
      resolve: (view) => view,
    }),
    trades: t.field({
      type: TradeRef,
      args: { symbol: t.arg.string({ required: true }) },
      subscribe: (_root, args, ctx) => ctx.market.subscribeTrades(args.symbol),
      resolve: (trade) => trade,
    }),
    ticker: t.field({
      type: TickerRef,
      args: { symbol: t.arg.string({ required: true }) },
      subscribe: (_root, args, ctx) => ctx.market.subscribeTicker(args.symbol),
      resolve: (ticker) => ticker,
    }),
    status: t.field({
      type: GatewayStatusRef,
      description: 'The gateway status at once, then every `intervalMs` (100..60000).',
      args: { intervalMs: t.arg.int({ required: true, defaultValue: 1000 }) },
      subscribe: (_root, args, ctx) => {
        if (args.intervalMs < 100 || args.intervalMs > 60_000) {
          throw badInput(`intervalMs must be between 100 and 60000, got ${args.intervalMs}.`);
        }
        return ctx.status.subscribeStatus(args.intervalMs);
      },
      resolve: (s) => s,
    }),
    accountEvents: t.field({
      type: AccountEventRef,
      description: "Every user-data event of the caller's account. Needs the caller's API key.",
      subscribe: (_root, _args, ctx) => ctx.account.subscribeEvents(ctx.credentials),
      resolve: (event) => event,
    }),
    balances: t.field({
      type: [BalanceRef],
      description:
        "The caller's current non-zero balances: the full list on subscribe, then after each change. Needs key and secret.",
      subscribe: (_root, _args, ctx) => ctx.account.subscribeBalances(ctx.credentials),
      resolve: (list) => list,
    }),
    positions: t.field({
      type: [PositionRef],
      description:
        "The caller's current open positions: the full list on subscribe, then after each change. Needs key and secret.",
      subscribe: (_root, _args, ctx) => ctx.account.subscribePositions(ctx.credentials),
      resolve: (list) => list,
    }),
    orderUpdates: t.field({
      type: OrderUpdateRef,
      description:
        "The caller's order updates, optionally for one symbol. Needs the caller's API key.",
      args: { symbol: t.arg.string({ required: false }) },
      subscribe: (_root, args, ctx) =>
        ctx.account.subscribeOrderUpdates(ctx.credentials, args.symbol ?? undefined),
      resolve: (update) => update,
    }),
  }),
});

/** The gateway's schema, built once. `schema.graphql` is printed from it (npm run check). */
export const schema: GraphQLSchema = builder.toSchema({ sortSchema: false });
