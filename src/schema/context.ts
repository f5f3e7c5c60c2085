import type { SymbolInfo } from '../binance/exchange-info.js';
import type { Credentials } from '../binance/rest.js';

/** A consistent view of the top of one book (schema type `OrderBook`). */
export interface OrderBookView {
  symbol: string;
  lastUpdateId: number;
  eventTime: number;
  transactionTime: number;
  bids: PriceLevel[];
  asks: PriceLevel[];
}

export interface PriceLevel {
  price: string;
  quantity: string;
}

export interface TradeView {
  symbol: string;
  aggregateTradeId: number;
  price: string;
  quantity: string;
  firstTradeId: number;
  lastTradeId: number;
  tradeTime: number;
  eventTime: number;
  buyerIsMaker: boolean;
  side: 'BUY' | 'SELL';
}

export interface TickerView {
  symbol: string;
  lastPrice: string;
  lastQuantity: string;
  priceChange: string;
  priceChangePercent: string;
  weightedAveragePrice: string;
  openPrice: string;
  highPrice: string;
  lowPrice: string;
  volume: string;
  quoteVolume: string;
  openTime: number;
  closeTime: number;
  firstTradeId: number;
  lastTradeId: number;
  tradeCount: number;
  eventTime: number;
}

/** The public market-data side the schema resolves against. */
export interface MarketApi {
  symbols(): Promise<SymbolInfo[]>;
  orderBook(symbol: string, depth: number): Promise<OrderBookView>;
  ticker(symbol: string): Promise<TickerView>;
  subscribeOrderBook(
    symbol: string,
    depth: number,
    throttleMs: number,
  ): Promise<AsyncIterableIterator<OrderBookView>>;
  subscribeTrades(symbol: string): Promise<AsyncIterableIterator<TradeView>>;
  subscribeTicker(symbol: string): Promise<AsyncIterableIterator<TickerView>>;
}

export interface BalanceView {
  asset: string;
  walletBalance: string;
  crossWalletBalance: string;
}

export interface PositionView {
  symbol: string;
  positionSide: 'BOTH' | 'LONG' | 'SHORT';
  positionAmount: string;
  entryPrice: string;
  unrealizedProfit: string;
}

export interface AccountUpdateView {
  __typename: 'AccountUpdate';
  eventTime: number;
  transactionTime: number;
  reason: string;
  balances: BalanceView[];
  positions: PositionView[];
}

export interface OrderUpdateView {
  __typename: 'OrderUpdate';
  eventTime: number;
  transactionTime: number;
  symbol: string;
  orderId: string;
  clientOrderId: string;
  side: 'BUY' | 'SELL';
  orderType: string;
  executionType: string;
  orderStatus: string;
  price: string;
  quantity: string;
  averagePrice: string;
  lastFilledQuantity: string;
  lastFilledPrice: string;
  cumulativeFilledQuantity: string;
  tradeId: string;
  realizedProfit: string;
}

export interface AccountConfigUpdateView {
  __typename: 'AccountConfigUpdate';
  eventTime: number;
  transactionTime: number;
  leverageChange: { symbol: string; leverage: number } | null;
  multiAssetsMode: boolean | null;
}

export type AccountEventView = AccountUpdateView | OrderUpdateView | AccountConfigUpdateView;

/** The per-caller account side; every method checks the credentials it needs. */
export interface AccountApi {
  subscribeEvents(creds: Credentials | undefined): Promise<AsyncIterableIterator<AccountEventView>>;
  subscribeBalances(creds: Credentials | undefined): Promise<AsyncIterableIterator<BalanceView[]>>;
  subscribePositions(
    creds: Credentials | undefined,
  ): Promise<AsyncIterableIterator<PositionView[]>>;
  subscribeOrderUpdates(
    creds: Credentials | undefined,
    symbol: string | undefined,
  ): Promise<AsyncIterableIterator<OrderUpdateView>>;
}

/** One upstream connection, as the `status` field shows it. */
export interface UpstreamConnectionView {
  id: number;
  path: string;
  state: string;
  streams: number;
  lastFrameAgeMs: number | null;
  reconnects: number;
  ageMs: number | null;
  malformedFrames: number;
}

export interface OrderBookStatusView {
  symbol: string;
  state: string;
  resyncCount: number;
  lastUpdateId: number;
}

export interface UserStreamStatusView {
  keyHash: string;
  state: string;
  subscribers: number;
  reconnects: number;
  listenKeyRenewals: number;
  lastEventAgeMs: number | null;
}

/** The gateway's health as data (schema type `GatewayStatus`); never holds a credential. */
export interface GatewayStatusView {
  ready: boolean;
  uptimeMs: number;
  upstreamConnections: UpstreamConnectionView[];
  orderBooks: OrderBookStatusView[];
  userStreams: UserStreamStatusView[];
  restWeightUsed: number;
  subscribers: number;
  upstreamReconnects: number;
  upstreamRotations: number;
}

export interface StatusApi {
  status(): GatewayStatusView;
  subscribeStatus(intervalMs: number): AsyncIterableIterator<GatewayStatusView>;
}

/** Per-operation context: the shared services and the caller's own credentials (memory only). */
export interface GatewayContext {
  market: MarketApi;
  account: AccountApi;
  status: StatusApi;
  credentials: Credentials | undefined;
}
