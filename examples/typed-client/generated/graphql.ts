/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
export type Side =
  | 'BUY'
  | 'SELL';

export type BookUpdatesSubscriptionVariables = Exact<{
  symbol: string;
  depth: number;
}>;


export type BookUpdatesSubscription = { orderBook: { symbol: string, lastUpdateId: number, eventTime: number, bids: Array<{ price: string, quantity: string }>, asks: Array<{ price: string, quantity: string }> } };

export type TradeUpdatesSubscriptionVariables = Exact<{
  symbol: string;
}>;


export type TradeUpdatesSubscription = { trades: { symbol: string, aggregateTradeId: number, price: string, quantity: string, side: Side, tradeTime: number } };

export class TypedDocumentString<TResult, TVariables>
  extends String
  implements DocumentTypeDecoration<TResult, TVariables>
{
  __apiType?: NonNullable<DocumentTypeDecoration<TResult, TVariables>['__apiType']>;
  private value: string;
  public __meta__?: Record<string, any> | undefined;

  constructor(value: string, __meta__?: Record<string, any> | undefined) {
    super(value);
    this.value = value;
    this.__meta__ = __meta__;
  }

  override toString(): string & DocumentTypeDecoration<TResult, TVariables> {
    return this.value;
  }
}

export const BookUpdatesDocument = new TypedDocumentString(`
    subscription BookUpdates($symbol: String!, $depth: Int!) {
  orderBook(symbol: $symbol, depth: $depth) {
    symbol
    lastUpdateId
    eventTime
    bids {
      price
      quantity
    }
    asks {
      price
      quantity
    }
  }
}
    `) as unknown as TypedDocumentString<BookUpdatesSubscription, BookUpdatesSubscriptionVariables>;
export const TradeUpdatesDocument = new TypedDocumentString(`
    subscription TradeUpdates($symbol: String!) {
  trades(symbol: $symbol) {
    symbol
    aggregateTradeId
    price
    quantity
    side
    tradeTime
  }
}
    `) as unknown as TypedDocumentString<TradeUpdatesSubscription, TradeUpdatesSubscriptionVariables>;