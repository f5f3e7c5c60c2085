/**
 * A typed GraphQL client for the gateway: `npm run example -- [url]` (or GATEWAY_URL=…).
 * Start the gateway first, e.g. `npm run demo` (offline, http://127.0.0.1:4000/graphql).
 */
import { runExample, type BookView, type TradeView } from './run-example.js';

const url = process.argv[2] ?? process.env.GATEWAY_URL ?? 'http://127.0.0.1:4000/graphql';
const limit = Number(process.env.LIMIT ?? '5');
const symbol = process.env.SYMBOL ?? 'BTCUSDT';

function printBook(book: BookView): void {
  const bid = book.bids[0];
  const ask = book.asks[0];
  process.stdout.write(
    `book   ${book.symbol} #${book.lastUpdateId}  bid ${bid?.price ?? '-'} x ${bid?.quantity ?? '-'}` +
      `  ask ${ask?.price ?? '-'} x ${ask?.quantity ?? '-'}\n`,
  );
}

function printTrade(trade: TradeView): void {
  process.stdout.write(
    `trade  ${trade.symbol} #${trade.aggregateTradeId}  ${trade.side.padEnd(4)} ` +
      `${trade.quantity} @ ${trade.price}  ${new Date(trade.tradeTime).toISOString()}\n`,
  );
}

try {
  const { books, trades } = await runExample({
    url,
    limit,
    symbol,
    onBook: printBook,
    onTrade: printTrade,
  });
  process.stdout.write(`received ${books.length} book views and ${trades.length} trades\n`);
} catch (error) {
  process.stderr.write(`typed-client: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
