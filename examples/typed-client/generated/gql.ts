/* eslint-disable */
import * as types from './graphql.js';



/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  subscription BookUpdates($symbol: String!, $depth: Int!) {\n    orderBook(symbol: $symbol, depth: $depth) {\n      symbol\n      lastUpdateId\n      eventTime\n      bids {\n        price\n        quantity\n      }\n      asks {\n        price\n        quantity\n      }\n    }\n  }\n": typeof types.BookUpdatesDocument,
    "\n  subscription TradeUpdates($symbol: String!) {\n    trades(symbol: $symbol) {\n      symbol\n      aggregateTradeId\n      price\n      quantity\n      side\n      tradeTime\n    }\n  }\n": typeof types.TradeUpdatesDocument,
};
const documents: Documents = {
    "\n  subscription BookUpdates($symbol: String!, $depth: Int!) {\n    orderBook(symbol: $symbol, depth: $depth) {\n      symbol\n      lastUpdateId\n      eventTime\n      bids {\n        price\n        quantity\n      }\n      asks {\n        price\n        quantity\n      }\n    }\n  }\n": types.BookUpdatesDocument,
    "\n  subscription TradeUpdates($symbol: String!) {\n    trades(symbol: $symbol) {\n      symbol\n      aggregateTradeId\n      price\n      quantity\n      side\n      tradeTime\n    }\n  }\n": types.TradeUpdatesDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription BookUpdates($symbol: String!, $depth: Int!) {\n    orderBook(symbol: $symbol, depth: $depth) {\n      symbol\n      lastUpdateId\n      eventTime\n      bids {\n        price\n        quantity\n      }\n      asks {\n        price\n        quantity\n      }\n    }\n  }\n"): typeof import('./graphql.js').BookUpdatesDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription TradeUpdates($symbol: String!) {\n    trades(symbol: $symbol) {\n      symbol\n      aggregateTradeId\n      price\n      quantity\n      side\n      tradeTime\n    }\n  }\n"): typeof import('./graphql.js').TradeUpdatesDocument;


export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}
