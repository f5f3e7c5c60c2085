import type { BinanceRest, Credentials } from '../binance/rest.js';
import { unauthenticated, upstreamUnavailable } from '../errors.js';
import type { Hub } from '../hub/hub.js';
import type { Logger } from '../log.js';
import type {
  AccountApi,
  AccountEventView,
  BalanceView,
  OrderUpdateView,
  PositionView,
} from '../schema/context.js';

export interface AccountServiceOptions {
  rest: BinanceRest;
  streamUrl: string;
  hub: Hub;
  logger: Logger;
  keepaliveMs?: number;
}

/** Per-caller account data (placeholder until the user data stream lands). */
export class AccountService implements AccountApi {
  constructor(readonly options: AccountServiceOptions) {}

  private need(creds: Credentials | undefined, secret: boolean): never {
    if (!creds) throw unauthenticated('This field needs your Binance API key.');
    if (secret && !creds.apiSecret)
      throw unauthenticated('This field needs your Binance API secret too.');
    throw upstreamUnavailable('Account data is not available yet.');
  }

  subscribeEvents(
    creds: Credentials | undefined,
  ): Promise<AsyncIterableIterator<AccountEventView>> {
    return Promise.resolve().then(() => this.need(creds, false));
  }

  subscribeBalances(creds: Credentials | undefined): Promise<AsyncIterableIterator<BalanceView[]>> {
    return Promise.resolve().then(() => this.need(creds, true));
  }

  subscribePositions(
    creds: Credentials | undefined,
  ): Promise<AsyncIterableIterator<PositionView[]>> {
    return Promise.resolve().then(() => this.need(creds, true));
  }

  subscribeOrderUpdates(
    creds: Credentials | undefined,
  ): Promise<AsyncIterableIterator<OrderUpdateView>> {
    return Promise.resolve().then(() => this.need(creds, false));
  }

  async close(): Promise<void> {}
}
