import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { graphql } from './generated/gql.js';
import type {
  BookUpdatesSubscription,
  TradeUpdatesSubscription,
  TypedDocumentString,
} from './generated/graphql.js';

/**
 * The operations. `npm run codegen` reads them from this file and checks them against
 * schema.graphql; `graphql()` then returns a TypedDocumentString carrying their result and
 * variable types, so a misspelt field fails codegen and a stale document fails tsc.
 */
export const BookUpdates = graphql(`
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
`);

export const TradeUpdates = graphql(`
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
`);

/** One view of the book's top levels: prices and quantities are exact decimal strings. */
export type BookView = BookUpdatesSubscription['orderBook'];
/** One aggregate trade. */
export type TradeView = TradeUpdatesSubscription['trades'];

export interface ExampleOptions {
  /** the gateway's GraphQL URL: http(s)://… or ws(s)://…, e.g. http://127.0.0.1:4000/graphql */
  url: string;
  /** updates to take from each subscription (default 3) */
  limit?: number;
  symbol?: string;
  depth?: number;
  /** fail when `limit` updates of each have not arrived by then (default 15 s) */
  timeoutMs?: number;
  onBook?: (book: BookView) => void;
  onTrade?: (trade: TradeView) => void;
}

export interface ExampleResult {
  books: BookView[];
  trades: TradeView[];
}

/**
 * Subscribes to `orderBook` and `trades` over one graphql-ws connection, takes `limit` updates
 * of each, unsubscribes, closes the connection and returns what it received.
 */
export async function runExample(options: ExampleOptions): Promise<ExampleResult> {
  const limit = options.limit ?? 3;
  const symbol = options.symbol ?? 'BTCUSDT';
  const timeoutMs = options.timeoutMs ?? 15_000;
  const client = createClient({
    url: toWebSocketUrl(options.url),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
  });
  try {
    const [books, trades] = await Promise.all([
      take(client, BookUpdates, { symbol, depth: options.depth ?? 5 }, limit, timeoutMs, (d) =>
        options.onBook?.(d.orderBook),
      ),
      take(client, TradeUpdates, { symbol }, limit, timeoutMs, (d) => options.onTrade?.(d.trades)),
    ]);
    return { books: books.map((d) => d.orderBook), trades: trades.map((d) => d.trades) };
  } finally {
    await client.dispose();
  }
}

/** The first `limit` results of one subscription, typed by its document. */
function take<TResult, TVariables extends Record<string, unknown>>(
  client: Client,
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables,
  limit: number,
  timeoutMs: number,
  onValue: (value: TResult) => void,
): Promise<TResult[]> {
  return new Promise<TResult[]>((resolve, reject) => {
    const values: TResult[] = [];
    let settled = false;
    let dispose = (): void => undefined;
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      dispose();
      if (error) reject(error);
      else resolve(values);
    };
    const timer = setTimeout(
      () => finish(new Error(`timed out after ${timeoutMs} ms with ${values.length}/${limit}`)),
      timeoutMs,
    );
    dispose = client.subscribe<TResult>(
      { query: document.toString(), variables },
      {
        next: (result) => {
          // Results already in flight can still arrive after the unsubscribe: ignore them.
          if (settled) return;
          if (result.errors?.length) {
            finish(new Error(result.errors.map((e) => e.message).join('; ')));
          } else if (result.data) {
            values.push(result.data);
            onValue(result.data);
            if (values.length >= limit) finish();
          }
        },
        error: (error) => finish(asError(error)),
        complete: () =>
          finish(values.length >= limit ? undefined : new Error('subscription ended early')),
      },
    );
  });
}

function toWebSocketUrl(url: string): string {
  return url.replace(/^http(s?):\/\//, 'ws$1://');
}

/** graphql-ws reports errors as an Error, a CloseEvent or a list of GraphQL errors. */
function asError(error: unknown): Error {
  if (error instanceof Error) return error;
  if (Array.isArray(error)) {
    return new Error(error.map((e: { message?: unknown }) => String(e.message)).join('; '));
  }
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const reason = 'reason' in error ? String(error.reason) : '';
    return new Error(`connection closed: ${String(error.code)} ${reason}`.trim());
  }
  return new Error(String(error));
}
