import { stringifyWithBigInts } from '../binance/json.js';
import { windowIndices } from './history.js';
import { answerParamErrors, Params } from './params.js';
import {
  checkSignedRequest,
  DEFAULT_SIGNING_RULES,
  mandatoryParamMessage,
  type SigningRules,
} from './signing.js';
import {
  binanceError,
  jsonResponse,
  type Clock,
  type Fill,
  type MarketForAccounts,
  type SimRequest,
  type SimResponse,
  type SimSymbolSpec,
  type StreamSink,
} from './types.js';

/**
 * The simulator's accounts: API keys, listenKeys, signed account endpoints, order entry and the
 * user-data events Binance pushes on `/private` (reference §6, §7.2, §7.3).
 *
 * Model, deliberately small:
 * - single-asset, cross margin, one-way mode (`positionSide` BOTH) for every account;
 * - MARKET orders and the marketable part of LIMIT orders are taken from the public book through
 *   `MarketForAccounts.executeTaker` (so they also appear as public trades);
 * - the unfilled rest of a GTC/GTX LIMIT order rests as an open order of the account only: it is
 *   NOT inserted into the public book. When the mark price later crosses its price, the sweep
 *   timer sends the rest to the book as a taker, up to its limit;
 * - money is exact decimal arithmetic on bigints scaled by 10^8 (Binance's 8 decimals); fees,
 *   entry prices and PnL are rounded half away from zero to 8 decimals.
 */

/** One simulated account and its credentials. */
export interface AccountSpec {
  /** Short name used by the control methods (`alice`, `bob`). */
  name: string;
  /** Sent by clients in `X-MBX-APIKEY`. */
  apiKey: string;
  /** HMAC-SHA256 secret for signed endpoints. Never logged nor echoed. */
  apiSecret: string;
  /** Starting wallet balances by asset as decimal strings; default `{ USDT: '10000' }`. */
  balances?: Record<string, string>;
}

/** The two accounts the simulator always knows (gateway-contract.md, "demo accounts"). */
export const DEMO_ACCOUNTS: readonly AccountSpec[] = [
  {
    name: 'alice',
    apiKey: 'alice-demo-api-key',
    apiSecret: 'alice-demo-api-secret',
    balances: { USDT: '10000' },
  },
  {
    name: 'bob',
    apiKey: 'bob-demo-api-key',
    apiSecret: 'bob-demo-api-secret',
    balances: { USDT: '25000' },
  },
];

/** Everything `Accounts` can be tuned with; the optional fields default to `DEFAULT_ACCOUNTS_OPTIONS`. */
export interface AccountsOptions {
  /** Where orders are filled and mark prices come from. */
  market: MarketForAccounts;
  /** Where user-data events go, keyed by listenKey (the `/private` stream name). */
  sink: StreamSink;
  /** Server time: listenKey lifetime, recvWindow checks, event times. */
  clock: Clock;
  /** Seeds listenKeys, client order ids and the demo auto-trader, so runs are reproducible. */
  seed: number;
  /** Extra accounts; the demo accounts are always present as well. */
  accounts?: AccountSpec[];
  /** A listenKey lives this long after its creation or last keep-alive (Binance: 60 min). */
  listenKeyValidityMs?: number;
  /** First order id; ids then increase by one. Above 2^53 like real USDⓈ-M ids. */
  orderIdBase?: bigint;
  /** Period of the timer that expires listenKeys and fills crossed resting orders; 0: no timer. */
  sweepIntervalMs?: number;
  /** Taker commission rate as a decimal string (Binance's default tier: 0.0005). */
  takerFeeRate?: string;
  /** Maker commission rate reported by `commissionRate` (Binance's default tier: 0.0002). */
  makerFeeRate?: string;
  /** Maintenance margin rate used for `maintMargin` figures. */
  maintMarginRate?: string;
  /** Leverage of a symbol until changed. */
  defaultLeverage?: number;
  /** Symbols the demo auto-trader picks from (those the market does not list are skipped). */
  autoTradeSymbols?: string[];
  /** The auto-trader's order size is 1..this many step sizes. */
  autoTradeMaxSteps?: number;
  /** Oldest events are dropped from `emittedEvents()` beyond this many per account. */
  maxEmittedEventsPerAccount?: number;
  /** Finished orders kept for `GET /fapi/v1/order` per account. */
  orderHistoryLimit?: number;
  /** Fills kept for `GET /fapi/v1/userTrades` per account. */
  tradeHistoryLimit?: number;
  /** recvWindow rules of signed endpoints. */
  signing?: SigningRules;
}

/** The defaults, in one place. */
export const DEFAULT_ACCOUNTS_OPTIONS = {
  listenKeyValidityMs: 60 * 60_000,
  orderIdBase: 8_389_765_489_680_951_453n,
  sweepIntervalMs: 1_000,
  takerFeeRate: '0.0005',
  makerFeeRate: '0.0002',
  maintMarginRate: '0.004',
  defaultLeverage: 20,
  autoTradeSymbols: ['BTCUSDT', 'ETHUSDT'],
  autoTradeMaxSteps: 3,
  maxEmittedEventsPerAccount: 10_000,
  orderHistoryLimit: 1_000,
  tradeHistoryLimit: 10_000,
  signing: DEFAULT_SIGNING_RULES,
} satisfies Required<Omit<AccountsOptions, 'market' | 'sink' | 'clock' | 'seed' | 'accounts'>>;

type Side = 'BUY' | 'SELL';
type OrderType = 'MARKET' | 'LIMIT';
type TimeInForce = 'GTC' | 'IOC' | 'FOK' | 'GTX';
type OrderStatus = 'NEW' | 'PARTIALLY_FILLED' | 'FILLED' | 'CANCELED' | 'EXPIRED';
type ExecutionType = 'NEW' | 'TRADE' | 'CANCELED' | 'EXPIRED';

// ---------------------------------------------------------------------------------------------
// Exact decimals: bigint scaled by 10^8

const DECIMALS = 8;
const ONE = 10n ** BigInt(DECIMALS);

function abs(v: bigint): bigint {
  return v < 0n ? -v : v;
}

/** n / d rounded half away from zero (d > 0). */
function roundDiv(n: bigint, d: bigint): bigint {
  const q = n / d;
  const r = n % d;
  if (2n * abs(r) >= d) return q + (n < 0n ? -1n : 1n);
  return q;
}

function mul(a: bigint, b: bigint): bigint {
  return roundDiv(a * b, ONE);
}

/** Parses a decimal string into its scaled value and its number of significant decimals. */
function parseDecimal(text: string): { value: bigint; decimals: number } | undefined {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(text);
  if (!m) return undefined;
  const frac = (m[3] ?? '').replace(/0+$/, '');
  if (frac.length > DECIMALS) return { value: 0n, decimals: frac.length };
  const magnitude = BigInt(m[2] ?? '0') * ONE + BigInt(frac.padEnd(DECIMALS, '0') || '0');
  return { value: m[1] === '-' ? -magnitude : magnitude, decimals: frac.length };
}

/** Parses a decimal from the market (trusted); more than 8 decimals are rounded. */
function marketDecimal(text: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(text.trim());
  if (!m) throw new Error(`market returned a malformed decimal: ${JSON.stringify(text)}`);
  const frac = m[3] ?? '';
  const digits = BigInt((m[2] ?? '0') + frac);
  const scaled =
    frac.length <= DECIMALS
      ? digits * 10n ** BigInt(DECIMALS - frac.length)
      : roundDiv(digits, 10n ** BigInt(frac.length - DECIMALS));
  return m[1] === '-' ? -scaled : scaled;
}

/** Formats a scaled value with at least `minDecimals` and at most `maxDecimals` decimals. */
function fmt(v: bigint, minDecimals: number, maxDecimals = DECIMALS): string {
  const unit = 10n ** BigInt(DECIMALS - maxDecimals);
  const rounded = roundDiv(abs(v), unit) * unit;
  const int = (rounded / ONE).toString();
  let frac = (rounded % ONE).toString().padStart(DECIMALS, '0').slice(0, maxDecimals);
  while (frac.length > minDecimals && frac.endsWith('0')) frac = frac.slice(0, -1);
  const sign = v < 0n && rounded !== 0n ? '-' : '';
  return frac.length > 0 ? `${sign}${int}.${frac}` : `${sign}${int}`;
}

/** Exactly `decimals` decimals, as Binance writes prices and quantities of a symbol. */
function fixed(v: bigint, decimals: number): string {
  return fmt(v, decimals, decimals);
}

// ---------------------------------------------------------------------------------------------
// Deterministic randomness

function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32: small, fast, good enough for ids and demo trading. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomString(random: () => number, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHANUMERIC[Math.floor(random() * ALPHANUMERIC.length)];
  return out;
}

// ---------------------------------------------------------------------------------------------
// State

interface Balance {
  wallet: bigint;
  updateTimeMs: number;
}

interface Position {
  symbol: string;
  marginAsset: string;
  /** signed: negative is short */
  amount: bigint;
  entryPrice: bigint;
  /** accumulated realized PnL before fees (`cr`) */
  realized: bigint;
  updateTimeMs: number;
}

interface SimOrder {
  orderId: bigint;
  clientOrderId: string;
  symbol: string;
  side: Side;
  type: OrderType;
  timeInForce: TimeInForce;
  origQty: bigint;
  /** 0 for MARKET */
  price: bigint;
  reduceOnly: boolean;
  selfTradePreventionMode: string;
  executedQty: bigint;
  cumQuote: bigint;
  status: OrderStatus;
  timeMs: number;
  updateTimeMs: number;
}

/** One fill of one of the account's orders: a `GET /fapi/v1/userTrades` row. */
interface UserTrade {
  symbol: string;
  /** the market's trade id (`t` of ORDER_TRADE_UPDATE and TRADE_LITE) */
  id: number;
  orderId: bigint;
  side: Side;
  price: bigint;
  qty: bigint;
  quote: bigint;
  /** realized PnL before fees (`rp`) */
  realized: bigint;
  /** commission paid (`n`) */
  commission: bigint;
  commissionAsset: string;
  timeMs: number;
}

interface ActiveListenKey {
  key: string;
  expiresAtMs: number;
}

class AccountState {
  readonly balances = new Map<string, Balance>();
  readonly positions = new Map<string, Position>();
  readonly leverage = new Map<string, number>();
  /** every order still open plus the most recent finished ones, by id */
  readonly orders = new Map<bigint, SimOrder>();
  readonly emitted: string[] = [];
  /** the newest fills, oldest first */
  readonly trades: UserTrade[] = [];
  /** acceptance times of recent orders, for X-MBX-ORDER-COUNT-* */
  readonly orderTimesMs: number[] = [];
  listenKey: ActiveListenKey | undefined;
  nextAutoSide: Side = 'BUY';
  readonly random: () => number;
  /** Binance's `accountAlias`: a short stable tag per account */
  readonly alias: string;

  constructor(
    readonly spec: AccountSpec,
    seed: number,
    nowMs: number,
  ) {
    this.random = prng(seed ^ hashString(spec.name));
    this.alias = randomString(prng(hashString(`alias:${spec.name}`)), 4);
    const balances = spec.balances ?? { USDT: '10000' };
    for (const [asset, amount] of Object.entries(balances)) {
      const parsed = parseDecimal(amount);
      if (!parsed || parsed.decimals > DECIMALS) {
        throw new Error(`Accounts: balance of ${asset} for account ${spec.name} is not a decimal`);
      }
      this.balances.set(asset, { wallet: parsed.value, updateTimeMs: nowMs });
    }
  }

  balance(asset: string, nowMs: number): Balance {
    let b = this.balances.get(asset);
    if (!b) {
      b = { wallet: 0n, updateTimeMs: nowMs };
      this.balances.set(asset, b);
    }
    return b;
  }

  position(symbol: string, marginAsset: string): Position {
    let p = this.positions.get(symbol);
    if (!p) {
      p = { symbol, marginAsset, amount: 0n, entryPrice: 0n, realized: 0n, updateTimeMs: 0 };
      this.positions.set(symbol, p);
    }
    return p;
  }

  openOrders(symbol?: string): SimOrder[] {
    const out: SimOrder[] = [];
    for (const o of this.orders.values()) {
      if ((o.status === 'NEW' || o.status === 'PARTIALLY_FILLED') && o.type === 'LIMIT') {
        if (symbol === undefined || o.symbol === symbol) out.push(o);
      }
    }
    return out;
  }
}

/** Margin figures of one asset, as the account endpoints report them. */
interface AssetFigures {
  wallet: bigint;
  unrealized: bigint;
  positionInitialMargin: bigint;
  openOrderInitialMargin: bigint;
  maintMargin: bigint;
  marginBalance: bigint;
  available: bigint;
  maxWithdraw: bigint;
}

/** Figures of one position at the current mark price. */
interface PositionFigures {
  position: Position;
  spec: SimSymbolSpec | undefined;
  mark: bigint;
  notional: bigint;
  unrealized: bigint;
  initialMargin: bigint;
  maintMargin: bigint;
  openOrderInitialMargin: bigint;
  bidNotional: bigint;
  askNotional: bigint;
  leverage: number;
}

/** A validated new-order request. */
interface OrderRequest {
  symbol: string;
  spec: SimSymbolSpec;
  side: Side;
  type: OrderType;
  timeInForce: TimeInForce;
  quantity: bigint;
  price: bigint;
  reduceOnly: boolean;
  clientOrderId: string | undefined;
  respType: 'ACK' | 'RESULT';
  selfTradePreventionMode: string;
}

const CONDITIONAL_TYPES = new Set([
  'STOP',
  'STOP_MARKET',
  'TAKE_PROFIT',
  'TAKE_PROFIT_MARKET',
  'TRAILING_STOP_MARKET',
]);
const TIME_IN_FORCE = new Set<string>(['GTC', 'IOC', 'FOK', 'GTX']);
const STP_MODES = new Set(['NONE', 'EXPIRE_TAKER', 'EXPIRE_MAKER', 'EXPIRE_BOTH']);
const CLIENT_ORDER_ID = /^[.A-Z:/a-z0-9_-]{1,36}$/;
const MAX_LEVERAGE = 125;
/** The notional cap of the one leverage bracket (`maxNotionalValue`). */
const MAX_NOTIONAL = '1000000';

const MSG = {
  badApiKeyFormat: 'API-key format invalid.',
  rejectedApiKey: 'Invalid API-key, IP, or permissions for action.',
  noListenKey: 'This listenKey does not exist.',
  invalidSymbol: 'Invalid symbol.',
  badPrecision: 'Precision is over the maximum defined for this asset.',
  quantityNotPositive: 'Quantity less than or equal to zero.',
  priceNotPositive: 'Price less than or equal to 0.',
  qtyStep: 'Qty not increased by step size.',
  priceTick: 'Price not increased by tick size.',
  algoOnly:
    'Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.',
  postOnlyRejected:
    'Due to the order could not be executed as maker, the Post Only order will be rejected. The order will not be recorded in the order history',
  fokRejected:
    'Due to the order could not be filled immediately, the FOK order has been rejected. The order will not be recorded in the order history',
  marginInsufficient: 'Margin is insufficient.',
  reduceOnlyRejected: 'ReduceOnly Order is rejected.',
  unknownOrder: 'Unknown order sent.',
  noSuchOrder: 'Order does not exist.',
} as const;

const WEIGHT = {
  listenKey: 1,
  account: 5,
  order: 1,
  openOrdersAll: 40,
  leverageBracket: 1,
  userTrades: 5,
  allOrders: 5,
  positionMode: 30,
  changePositionMode: 1,
  multiAssetsMode: 30,
  accountConfig: 5,
  symbolConfig: 5,
  commissionRate: 20,
} as const;

/** userTrades and allOrders look back 7 days by default and at most 7 days per query. */
const HISTORY_WINDOW_HOURS = 7 * 24;

type Handler = (req: SimRequest) => SimResponse;

/**
 * The simulator's accounts and everything private: listenKeys, signed REST, orders, balances,
 * positions, and the user-data events of each account on its active listenKey only.
 *
 * Timers (the sweep, the demo auto-trader) are owned here and cleared by `stop()`.
 */
export class Accounts {
  private readonly market: MarketForAccounts;
  private readonly sink: StreamSink;
  private readonly clock: Clock;
  private readonly opts: typeof DEFAULT_ACCOUNTS_OPTIONS;
  private readonly takerFeeRate: bigint;
  private readonly makerFeeRate: bigint;
  private readonly maintMarginRate: bigint;
  private readonly accounts = new Map<string, AccountState>();
  private readonly byApiKey = new Map<string, AccountState>();
  private readonly routes = new Map<string, Handler>();
  private readonly random: () => number;
  private nextOrderId: bigint;
  private sweepTimer: NodeJS.Timeout | undefined;
  private autoTimers: NodeJS.Timeout[] = [];

  constructor(options: AccountsOptions) {
    this.market = options.market;
    this.sink = options.sink;
    this.clock = options.clock;
    const d = DEFAULT_ACCOUNTS_OPTIONS;
    this.opts = {
      listenKeyValidityMs: options.listenKeyValidityMs ?? d.listenKeyValidityMs,
      orderIdBase: options.orderIdBase ?? d.orderIdBase,
      sweepIntervalMs: options.sweepIntervalMs ?? d.sweepIntervalMs,
      takerFeeRate: options.takerFeeRate ?? d.takerFeeRate,
      makerFeeRate: options.makerFeeRate ?? d.makerFeeRate,
      maintMarginRate: options.maintMarginRate ?? d.maintMarginRate,
      defaultLeverage: options.defaultLeverage ?? d.defaultLeverage,
      autoTradeSymbols: options.autoTradeSymbols ?? d.autoTradeSymbols,
      autoTradeMaxSteps: options.autoTradeMaxSteps ?? d.autoTradeMaxSteps,
      maxEmittedEventsPerAccount:
        options.maxEmittedEventsPerAccount ?? d.maxEmittedEventsPerAccount,
      orderHistoryLimit: options.orderHistoryLimit ?? d.orderHistoryLimit,
      tradeHistoryLimit: options.tradeHistoryLimit ?? d.tradeHistoryLimit,
      signing: options.signing ?? d.signing,
    };
    this.takerFeeRate = this.rateOption('takerFeeRate', this.opts.takerFeeRate);
    this.makerFeeRate = this.rateOption('makerFeeRate', this.opts.makerFeeRate);
    this.maintMarginRate = this.rateOption('maintMarginRate', this.opts.maintMarginRate);
    if (!(this.opts.listenKeyValidityMs > 0)) {
      throw new Error('Accounts: listenKeyValidityMs must be positive');
    }
    this.random = prng(options.seed);
    this.nextOrderId = this.opts.orderIdBase;

    const now = this.clock.now();
    const extra = options.accounts ?? [];
    // A caller may re-specify a demo account (e.g. another balance) under the same name and key.
    const specs = [...DEMO_ACCOUNTS.filter((a) => !extra.some((e) => e.name === a.name)), ...extra];
    for (const spec of specs) {
      if (this.accounts.has(spec.name)) {
        throw new Error(`Accounts: account name ${spec.name} is used twice`);
      }
      if (spec.apiKey === '' || this.byApiKey.has(spec.apiKey)) {
        throw new Error(`Accounts: account ${spec.name} has an empty or shared API key`);
      }
      const demo = DEMO_ACCOUNTS.find((a) => a.name === spec.name);
      if (demo && demo.apiKey !== spec.apiKey) {
        throw new Error(`Accounts: demo account ${spec.name} must keep its documented API key`);
      }
      const state = new AccountState(spec, options.seed, now);
      this.accounts.set(spec.name, state);
      this.byApiKey.set(spec.apiKey, state);
    }

    this.registerRoutes();
    if (this.opts.sweepIntervalMs > 0) {
      this.sweepTimer = setInterval(() => this.sweep(), this.opts.sweepIntervalMs);
      this.sweepTimer.unref();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Public API

  /**
   * Answers the private REST endpoints (listenKey, account, balance, positionRisk, order,
   * openOrder(s), allOrders, userTrades, leverage, leverageBracket, positionSide/dual,
   * symbolConfig, accountConfig, multiAssetsMargin, commissionRate); `undefined` for any other
   * method + path, so the REST router can try the market routes next.
   */
  route(req: SimRequest): SimResponse | undefined {
    const handler = this.routes.get(`${req.method.toUpperCase()} ${req.path}`);
    if (!handler) return undefined;
    this.expireDueListenKeys();
    return handler(req);
  }

  /** Names of all accounts, demo accounts first. */
  accountNames(): string[] {
    return [...this.accounts.keys()];
  }

  /** The account an API key belongs to (the REST layer and the fault injector need it). */
  specByApiKey(apiKey: string): Readonly<AccountSpec> | undefined {
    return this.byApiKey.get(apiKey)?.spec;
  }

  /** The account's active listenKey, or undefined when it has none (or it just expired). */
  listenKeyOf(accountName: string): string | undefined {
    this.expireDueListenKeys();
    return this.accounts.get(accountName)?.listenKey?.key;
  }

  /**
   * Fault injection: expires the account's listenKey now. Publishes `listenKeyExpired` on it
   * (twice in a row with `twice`, as Binance has been seen to do) and forgets the key, so PUT
   * answers -1125 and the next POST creates a new key. False when the account has no active key.
   */
  expireListenKey(apiKeyOrAccountName: string, options: { twice?: boolean } = {}): boolean {
    this.expireDueListenKeys();
    const acct = this.accounts.get(apiKeyOrAccountName) ?? this.byApiKey.get(apiKeyOrAccountName);
    if (!acct?.listenKey) return false;
    this.expireKey(acct, options.twice === true ? 2 : 1);
    return true;
  }

  /**
   * Places an order for an account without HTTP or signature, through the same code path as
   * `POST /fapi/v1/order` (same validation, events and response body). Parameters are Binance's
   * (`symbol`, `side`, `type`, `quantity`, `price`, `timeInForce`, `newClientOrderId`,
   * `reduceOnly`, `newOrderRespType`, …). As on Binance the default response is ACK (the order
   * as accepted, status NEW); pass `newOrderRespType: 'RESULT'` for the final state.
   */
  placeOrder(accountName: string, params: Record<string, string> | URLSearchParams): SimResponse {
    this.expireDueListenKeys();
    const acct = this.account(accountName);
    const search = params instanceof URLSearchParams ? params : new URLSearchParams(params);
    return this.newOrder(acct, search);
  }

  /**
   * Sets a symbol's leverage for the account and pushes `ACCOUNT_CONFIG_UPDATE` with `ac`, as
   * Binance does after `POST /fapi/v1/leverage`.
   */
  publishAccountConfigUpdate(accountName: string, symbol: string, leverage: number): void {
    this.expireDueListenKeys();
    this.setLeverage(this.account(accountName), symbol, leverage);
  }

  /**
   * The user-data event texts published for an account (on whichever listenKey was active),
   * oldest first, so tests can compare what a client received with what was sent. Events of an
   * account without an active key are lost, as on Binance, and are not listed.
   */
  emittedEvents(accountName: string): string[] {
    return [...this.account(accountName).emitted];
  }

  /**
   * Demo mode: every account places a small MARKET order every `intervalMs` (staggered between
   * accounts), sizes and symbols drawn from the seed, sides alternating and turned towards flat
   * when a position grows, so positions stay small. Restarting replaces the previous schedule.
   */
  startAutoTrading(intervalMs = 3_000): void {
    if (!(intervalMs > 0)) throw new Error('Accounts: auto-trading interval must be positive');
    this.stopAutoTrading();
    const accounts = [...this.accounts.values()];
    accounts.forEach((acct, i) => {
      const offsetMs = Math.round((intervalMs * (i + 1)) / (accounts.length + 1));
      const first = setTimeout(() => {
        this.autoTrade(acct);
        const every = setInterval(() => this.autoTrade(acct), intervalMs);
        every.unref();
        this.autoTimers.push(every);
      }, offsetMs);
      first.unref();
      this.autoTimers.push(first);
    });
  }

  /** Stops the demo auto-trader only. */
  stopAutoTrading(): void {
    for (const t of this.autoTimers) clearTimeout(t);
    this.autoTimers = [];
  }

  /** Clears every timer this object owns. REST and control methods keep working (lazily). */
  stop(): void {
    this.stopAutoTrading();
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  /**
   * What the sweep timer does: expires due listenKeys and sends resting orders whose price the
   * mark price has crossed to the book. Public so tests with a fake clock can drive it.
   */
  sweep(): void {
    this.expireDueListenKeys();
    for (const acct of this.accounts.values()) {
      for (const order of acct.openOrders()) this.tryFillResting(acct, order);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Routing and authentication

  private registerRoutes(): void {
    const r = (method: string, path: string, handler: Handler): void => {
      this.routes.set(`${method} ${path}`, handler);
    };
    r('POST', '/fapi/v1/listenKey', (req) =>
      this.withApiKey(req, WEIGHT.listenKey, (a) => this.listenKeyPost(a)),
    );
    r('PUT', '/fapi/v1/listenKey', (req) =>
      this.withApiKey(req, WEIGHT.listenKey, (a) => this.listenKeyPut(a)),
    );
    r('DELETE', '/fapi/v1/listenKey', (req) =>
      this.withApiKey(req, WEIGHT.listenKey, (a) => this.listenKeyDelete(a)),
    );
    for (const v of ['v2', 'v3'] as const) {
      r('GET', `/fapi/${v}/account`, (req) =>
        this.signed(req, WEIGHT.account, (a) =>
          jsonResponse(v === 'v3' ? this.accountV3(a) : this.accountV2(a), WEIGHT.account),
        ),
      );
      r('GET', `/fapi/${v}/balance`, (req) =>
        this.signed(req, WEIGHT.account, (a) => jsonResponse(this.balances(a), WEIGHT.account)),
      );
      r('GET', `/fapi/${v}/positionRisk`, (req) =>
        this.signed(req, WEIGHT.account, (a) => this.positionRisk(a, req.params, v)),
      );
    }
    r('POST', '/fapi/v1/order', (req) =>
      this.signed(req, WEIGHT.order, (a) => this.newOrder(a, req.params)),
    );
    r('GET', '/fapi/v1/order', (req) =>
      this.signed(req, WEIGHT.order, (a) => this.queryOrder(a, req.params)),
    );
    r('DELETE', '/fapi/v1/order', (req) =>
      this.signed(req, WEIGHT.order, (a) => this.cancelOrder(a, req.params)),
    );
    r('GET', '/fapi/v1/openOrders', (req) =>
      this.signed(req, WEIGHT.order, (a) => this.openOrdersRoute(a, req.params)),
    );
    r('DELETE', '/fapi/v1/allOpenOrders', (req) =>
      this.signed(req, WEIGHT.order, (a) => this.cancelAll(a, req.params)),
    );
    r('POST', '/fapi/v1/leverage', (req) =>
      this.signed(req, WEIGHT.order, (a) => this.leverageRoute(a, req.params)),
    );
    r('GET', '/fapi/v1/leverageBracket', (req) =>
      this.signed(req, WEIGHT.leverageBracket, () => this.leverageBracketRoute(req.params)),
    );
    r('GET', '/fapi/v1/openOrder', (req) =>
      this.signed(req, WEIGHT.order, (a) => this.queryOpenOrder(a, req.params)),
    );
    r('GET', '/fapi/v1/userTrades', (req) =>
      this.signed(req, WEIGHT.userTrades, (a) => this.userTradesRoute(a, req.params)),
    );
    r('GET', '/fapi/v1/allOrders', (req) =>
      this.signed(req, WEIGHT.allOrders, (a) => this.allOrdersRoute(a, req.params)),
    );
    r('GET', '/fapi/v1/positionSide/dual', (req) =>
      this.signed(req, WEIGHT.positionMode, () =>
        jsonResponse({ dualSidePosition: false }, WEIGHT.positionMode),
      ),
    );
    r('POST', '/fapi/v1/positionSide/dual', (req) =>
      this.signed(req, WEIGHT.changePositionMode, (a) => this.changePositionMode(a, req.params)),
    );
    r('GET', '/fapi/v1/multiAssetsMargin', (req) =>
      this.signed(req, WEIGHT.multiAssetsMode, () =>
        jsonResponse({ multiAssetsMargin: false }, WEIGHT.multiAssetsMode),
      ),
    );
    r('GET', '/fapi/v1/accountConfig', (req) =>
      this.signed(req, WEIGHT.accountConfig, () =>
        jsonResponse(
          {
            feeTier: 0,
            canTrade: true,
            canDeposit: true,
            canWithdraw: true,
            dualSidePosition: false,
            updateTime: 0,
            multiAssetsMargin: false,
            tradeGroupId: -1,
          },
          WEIGHT.accountConfig,
        ),
      ),
    );
    r('GET', '/fapi/v1/symbolConfig', (req) =>
      this.signed(req, WEIGHT.symbolConfig, (a) => this.symbolConfigRoute(a, req.params)),
    );
    r('GET', '/fapi/v1/commissionRate', (req) =>
      this.signed(req, WEIGHT.commissionRate, () => this.commissionRateRoute(req.params)),
    );
  }

  /** USER_STREAM security: the API key alone. Missing → 401 -2014, unknown → 401 -2015. */
  private withApiKey(
    req: SimRequest,
    weight: number,
    next: (acct: AccountState) => SimResponse,
  ): SimResponse {
    const apiKey = req.headers['x-mbx-apikey'];
    if (apiKey === undefined || apiKey === '') {
      return binanceError(401, -2014, MSG.badApiKeyFormat, weight);
    }
    const acct = this.byApiKey.get(apiKey);
    if (!acct) return binanceError(401, -2015, MSG.rejectedApiKey, weight);
    return next(acct);
  }

  /** TRADE / USER_DATA security: API key, then timestamp/recvWindow, then the HMAC signature. */
  private signed(
    req: SimRequest,
    weight: number,
    next: (acct: AccountState) => SimResponse,
  ): SimResponse {
    return this.withApiKey(req, weight, (acct) => {
      const failure = checkSignedRequest(
        req,
        acct.spec.apiSecret,
        this.clock.now(),
        this.opts.signing,
      );
      if (failure) return binanceError(failure.status, failure.code, failure.msg, weight);
      return next(acct);
    });
  }

  private account(name: string): AccountState {
    const acct = this.accounts.get(name);
    if (!acct) throw new Error(`Accounts: no account named ${JSON.stringify(name)}`);
    return acct;
  }

  private rateOption(name: string, text: string): bigint {
    const parsed = parseDecimal(text);
    if (!parsed || parsed.decimals > DECIMALS || parsed.value < 0n) {
      throw new Error(`Accounts: ${name} must be a non-negative decimal with at most 8 decimals`);
    }
    return parsed.value;
  }

  // -------------------------------------------------------------------------------------------
  // listenKeys

  private listenKeyPost(acct: AccountState): SimResponse {
    const now = this.clock.now();
    if (!acct.listenKey) {
      acct.listenKey = { key: this.newListenKey(), expiresAtMs: 0 };
    }
    acct.listenKey.expiresAtMs = now + this.opts.listenKeyValidityMs;
    return jsonResponse({ listenKey: acct.listenKey.key }, WEIGHT.listenKey);
  }

  private listenKeyPut(acct: AccountState): SimResponse {
    if (!acct.listenKey) return binanceError(400, -1125, MSG.noListenKey, WEIGHT.listenKey);
    acct.listenKey.expiresAtMs = this.clock.now() + this.opts.listenKeyValidityMs;
    return jsonResponse({ listenKey: acct.listenKey.key }, WEIGHT.listenKey);
  }

  private listenKeyDelete(acct: AccountState): SimResponse {
    acct.listenKey = undefined;
    return jsonResponse({}, WEIGHT.listenKey);
  }

  private newListenKey(): string {
    const inUse = new Set<string>();
    for (const a of this.accounts.values()) if (a.listenKey) inUse.add(a.listenKey.key);
    for (;;) {
      const key = randomString(this.random, 64);
      if (!inUse.has(key)) return key;
    }
  }

  private expireDueListenKeys(): void {
    const now = this.clock.now();
    for (const acct of this.accounts.values()) {
      if (acct.listenKey && now >= acct.listenKey.expiresAtMs) this.expireKey(acct, 1);
    }
  }

  private expireKey(acct: AccountState, times: number): void {
    const key = acct.listenKey?.key;
    if (key === undefined) return;
    for (let i = 0; i < times; i++) {
      this.publish(acct, { e: 'listenKeyExpired', E: this.nowInt(), listenKey: key });
    }
    acct.listenKey = undefined;
  }

  private nowInt(): number {
    return Math.floor(this.clock.now());
  }

  /** Sends one event on the account's active key; lost when there is none (as on Binance). */
  private publish(acct: AccountState, event: object): void {
    const key = acct.listenKey?.key;
    if (key === undefined) return;
    const payload = stringifyWithBigInts(event);
    this.sink.publish(key, payload);
    acct.emitted.push(payload);
    const excess = acct.emitted.length - this.opts.maxEmittedEventsPerAccount;
    if (excess > 0) acct.emitted.splice(0, excess);
  }

  // -------------------------------------------------------------------------------------------
  // Account figures

  private leverageOf(acct: AccountState, symbol: string): number {
    return acct.leverage.get(symbol) ?? this.opts.defaultLeverage;
  }

  private markOf(symbol: string): bigint {
    return marketDecimal(this.market.markPrice(symbol));
  }

  /** The mark price; the entry price when the market has none (e.g. replay mode). */
  private markOrEntry(position: Position): bigint {
    try {
      return this.markOf(position.symbol);
    } catch {
      return position.entryPrice;
    }
  }

  private positionFigures(acct: AccountState, position: Position): PositionFigures {
    const spec = this.market.spec(position.symbol);
    const leverage = BigInt(this.leverageOf(acct, position.symbol));
    const mark = this.markOrEntry(position);
    const notional = mul(position.amount, mark);
    const unrealized = mul(mark - position.entryPrice, position.amount);
    let bidNotional = 0n;
    let askNotional = 0n;
    for (const o of acct.openOrders(position.symbol)) {
      const n = mul(o.origQty - o.executedQty, o.price);
      if (o.side === 'BUY') bidNotional += n;
      else askNotional += n;
    }
    const bigger = bidNotional > askNotional ? bidNotional : askNotional;
    return {
      position,
      spec,
      mark,
      notional,
      unrealized,
      initialMargin: roundDiv(abs(notional), leverage),
      maintMargin: mul(abs(notional), this.maintMarginRate),
      openOrderInitialMargin: roundDiv(bigger, leverage),
      bidNotional,
      askNotional,
      leverage: Number(leverage),
    };
  }

  /** Positions worth reporting: with an amount or open orders (v3 rule; v2 lists all known). */
  private activePositions(acct: AccountState, all: boolean): PositionFigures[] {
    const openSymbols = new Set(acct.openOrders().map((o) => o.symbol));
    for (const symbol of openSymbols) {
      const spec = this.market.spec(symbol);
      if (spec) acct.position(symbol, spec.quoteAsset);
    }
    const out: PositionFigures[] = [];
    for (const p of acct.positions.values()) {
      if (all || p.amount !== 0n || openSymbols.has(p.symbol)) {
        out.push(this.positionFigures(acct, p));
      }
    }
    return out;
  }

  private assetFigures(acct: AccountState, asset: string, positions: PositionFigures[]) {
    const wallet = acct.balances.get(asset)?.wallet ?? 0n;
    let unrealized = 0n;
    let positionInitialMargin = 0n;
    let openOrderInitialMargin = 0n;
    let maintMargin = 0n;
    for (const f of positions) {
      if (f.position.marginAsset !== asset) continue;
      unrealized += f.unrealized;
      positionInitialMargin += f.initialMargin;
      openOrderInitialMargin += f.openOrderInitialMargin;
      maintMargin += f.maintMargin;
    }
    const marginBalance = wallet + unrealized;
    let available = marginBalance - positionInitialMargin - openOrderInitialMargin;
    if (available < 0n) available = 0n;
    const maxWithdraw = available < wallet ? available : wallet < 0n ? 0n : wallet;
    const figures: AssetFigures = {
      wallet,
      unrealized,
      positionInitialMargin,
      openOrderInitialMargin,
      maintMargin,
      marginBalance,
      available,
      maxWithdraw,
    };
    return figures;
  }

  private totals(a: AssetFigures) {
    return {
      totalInitialMargin: fixed(a.positionInitialMargin + a.openOrderInitialMargin, 8),
      totalMaintMargin: fixed(a.maintMargin, 8),
      totalWalletBalance: fixed(a.wallet, 8),
      totalUnrealizedProfit: fixed(a.unrealized, 8),
      totalMarginBalance: fixed(a.marginBalance, 8),
      totalPositionInitialMargin: fixed(a.positionInitialMargin, 8),
      totalOpenOrderInitialMargin: fixed(a.openOrderInitialMargin, 8),
      totalCrossWalletBalance: fixed(a.wallet, 8),
      totalCrossUnPnl: fixed(a.unrealized, 8),
      availableBalance: fixed(a.available, 8),
      maxWithdrawAmount: fixed(a.maxWithdraw, 8),
    };
  }

  private assetRow(acct: AccountState, asset: string, a: AssetFigures) {
    return {
      asset,
      walletBalance: fixed(a.wallet, 8),
      unrealizedProfit: fixed(a.unrealized, 8),
      marginBalance: fixed(a.marginBalance, 8),
      maintMargin: fixed(a.maintMargin, 8),
      initialMargin: fixed(a.positionInitialMargin + a.openOrderInitialMargin, 8),
      positionInitialMargin: fixed(a.positionInitialMargin, 8),
      openOrderInitialMargin: fixed(a.openOrderInitialMargin, 8),
      crossWalletBalance: fixed(a.wallet, 8),
      crossUnPnl: fixed(a.unrealized, 8),
      availableBalance: fixed(a.available, 8),
      maxWithdrawAmount: fixed(a.maxWithdraw, 8),
      updateTime: acct.balances.get(asset)?.updateTimeMs ?? 0,
    };
  }

  /** `GET /fapi/v3/account`: USDT totals (single-asset mode), assets, active positions. */
  private accountV3(acct: AccountState): object {
    const positions = this.activePositions(acct, false);
    const usdt = this.assetFigures(acct, 'USDT', positions);
    return {
      ...this.totals(usdt),
      assets: [...acct.balances.keys()].map((asset) =>
        this.assetRow(acct, asset, this.assetFigures(acct, asset, positions)),
      ),
      positions: positions.map((f) => ({
        symbol: f.position.symbol,
        positionSide: 'BOTH',
        positionAmt: this.qtyText(f.spec, f.position.amount),
        unrealizedProfit: fixed(f.unrealized, 8),
        isolatedMargin: '0',
        notional: fmt(f.notional, 0),
        isolatedWallet: '0',
        initialMargin: fmt(f.initialMargin, 0),
        maintMargin: fmt(f.maintMargin, 0),
        updateTime: f.position.updateTimeMs,
      })),
    };
  }

  /** `GET /fapi/v2/account`: the older shape with flags and every position the account touched. */
  private accountV2(acct: AccountState): object {
    const positions = this.activePositions(acct, true);
    const usdt = this.assetFigures(acct, 'USDT', positions);
    return {
      feeTier: 0,
      feeBurn: false,
      canTrade: true,
      canDeposit: true,
      canWithdraw: true,
      updateTime: 0,
      multiAssetsMargin: false,
      tradeGroupId: -1,
      ...this.totals(usdt),
      assets: [...acct.balances.keys()].map((asset) => ({
        ...this.assetRow(acct, asset, this.assetFigures(acct, asset, positions)),
        marginAvailable: true,
      })),
      positions: positions.map((f) => ({
        symbol: f.position.symbol,
        initialMargin: fmt(f.initialMargin, 0),
        maintMargin: fmt(f.maintMargin, 0),
        unrealizedProfit: fixed(f.unrealized, 8),
        positionInitialMargin: fmt(f.initialMargin, 0),
        openOrderInitialMargin: fmt(f.openOrderInitialMargin, 0),
        leverage: String(f.leverage),
        isolated: false,
        entryPrice: this.priceText(f.spec, f.position.entryPrice),
        breakEvenPrice: this.priceText(f.spec, this.breakEven(f.position)),
        maxNotional: MAX_NOTIONAL,
        bidNotional: fmt(f.bidNotional, 0),
        askNotional: fmt(f.askNotional, 0),
        positionSide: 'BOTH',
        positionAmt: this.qtyText(f.spec, f.position.amount),
        updateTime: f.position.updateTimeMs,
      })),
    };
  }

  /** `GET /fapi/v3/balance` (and v2): one row per asset the account holds. */
  private balances(acct: AccountState): object[] {
    const positions = this.activePositions(acct, false);
    return [...acct.balances.entries()].map(([asset, b]) => {
      const a = this.assetFigures(acct, asset, positions);
      return {
        accountAlias: acct.alias,
        asset,
        balance: fixed(a.wallet, 8),
        crossWalletBalance: fixed(a.wallet, 8),
        crossUnPnl: fixed(a.unrealized, 8),
        availableBalance: fixed(a.available, 8),
        maxWithdrawAmount: fixed(a.maxWithdraw, 8),
        marginAvailable: true,
        updateTime: b.updateTimeMs,
      };
    });
  }

  /** `GET /fapi/v3/positionRisk[?symbol]` (and the v2 shape). */
  private positionRisk(acct: AccountState, params: URLSearchParams, version: 'v2' | 'v3') {
    const symbol = params.get('symbol');
    if (symbol !== null && !this.market.hasSymbol(symbol)) {
      return binanceError(400, -1121, MSG.invalidSymbol, WEIGHT.account);
    }
    const rows = this.activePositions(acct, version === 'v2').filter(
      (f) => symbol === null || f.position.symbol === symbol,
    );
    const body = rows.map((f) => {
      const common = {
        symbol: f.position.symbol,
        positionSide: 'BOTH',
        positionAmt: this.qtyText(f.spec, f.position.amount),
        entryPrice: this.priceText(f.spec, f.position.entryPrice),
        breakEvenPrice: this.priceText(f.spec, this.breakEven(f.position)),
        markPrice: fixed(f.mark, 8),
        unRealizedProfit: fixed(f.unrealized, 8),
        liquidationPrice: '0',
        isolatedMargin: '0',
        notional: fmt(f.notional, 0),
      };
      if (version === 'v2') {
        return {
          ...common,
          marginType: 'cross',
          isAutoAddMargin: 'false',
          leverage: String(f.leverage),
          maxNotionalValue: MAX_NOTIONAL,
          isolatedWallet: '0',
          updateTime: f.position.updateTimeMs,
        };
      }
      return {
        ...common,
        marginAsset: f.position.marginAsset,
        isolatedWallet: '0',
        initialMargin: fmt(f.initialMargin + f.openOrderInitialMargin, 0),
        maintMargin: fmt(f.maintMargin, 0),
        positionInitialMargin: fmt(f.initialMargin, 0),
        openOrderInitialMargin: fmt(f.openOrderInitialMargin, 0),
        adl: f.position.amount === 0n ? 0 : 1,
        bidNotional: fmt(f.bidNotional, 0),
        askNotional: fmt(f.askNotional, 0),
        updateTime: f.position.updateTimeMs,
      };
    });
    return jsonResponse(body, WEIGHT.account);
  }

  /**
   * Breakeven price, assuming the taker rate was paid to open and will be paid to close:
   * long `ep·(1+r)/(1−r)`, short `ep·(1−r)/(1+r)`.
   */
  private breakEven(p: Position): bigint {
    if (p.amount === 0n) return 0n;
    const r = this.takerFeeRate;
    return p.amount > 0n
      ? roundDiv(p.entryPrice * (ONE + r), ONE - r)
      : roundDiv(p.entryPrice * (ONE - r), ONE + r);
  }

  private qtyText(spec: SimSymbolSpec | undefined, v: bigint): string {
    return spec ? fixed(v, spec.quantityPrecision) : fmt(v, 0);
  }

  /** Prices at least at the symbol's precision, up to 8 decimals when an average needs them. */
  private priceText(spec: SimSymbolSpec | undefined, v: bigint): string {
    if (v === 0n) return '0';
    return fmt(v, spec?.pricePrecision ?? 0);
  }

  // -------------------------------------------------------------------------------------------
  // Orders

  private newOrder(acct: AccountState, params: URLSearchParams): SimResponse {
    const checked = this.validateOrder(acct, params);
    if ('status' in checked) return this.withOrderCount(acct, checked);
    const req = checked;
    const now = this.nowInt();

    const quantityText = fixed(req.quantity, req.spec.quantityPrecision);
    let fills: Fill[];
    try {
      fills =
        req.type === 'MARKET'
          ? this.market.executeTaker(req.symbol, req.side, quantityText)
          : this.market.executeTaker(
              req.symbol,
              req.side,
              quantityText,
              fixed(req.price, req.spec.pricePrecision),
            );
    } catch {
      return this.withOrderCount(
        acct,
        binanceError(500, -1000, 'An unknown error occured while processing the request.'),
      );
    }

    const order: SimOrder = {
      orderId: this.nextOrderId,
      clientOrderId: req.clientOrderId ?? randomString(this.random, 22),
      symbol: req.symbol,
      side: req.side,
      type: req.type,
      timeInForce: req.timeInForce,
      origQty: req.quantity,
      price: req.price,
      reduceOnly: req.reduceOnly,
      selfTradePreventionMode: req.selfTradePreventionMode,
      executedQty: 0n,
      cumQuote: 0n,
      status: 'NEW',
      timeMs: now,
      updateTimeMs: now,
    };
    this.nextOrderId += 1n;
    acct.orders.set(order.orderId, order);
    acct.orderTimesMs.push(now);
    const ack = this.orderJson(req.spec, order, 'response');

    this.publish(acct, this.orderUpdate(acct, req.spec, order, 'NEW', now));
    for (const fill of fills) this.applyFill(acct, req.spec, order, fill, now);
    if (order.status !== 'FILLED') {
      const restsOpen =
        order.type === 'LIMIT' && (order.timeInForce === 'GTC' || order.timeInForce === 'GTX');
      if (!restsOpen) {
        order.status = 'EXPIRED';
        order.updateTimeMs = now;
        const reason = order.type === 'MARKET' ? '9' : order.timeInForce === 'IOC' ? '2' : '0';
        this.publish(acct, this.orderUpdate(acct, req.spec, order, 'EXPIRED', now, { er: reason }));
      }
    }
    this.trimHistory(acct);
    const body = req.respType === 'RESULT' ? this.orderJson(req.spec, order, 'response') : ack;
    return this.withOrderCount(acct, jsonResponse(stringifyWithBigInts(body), WEIGHT.order));
  }

  /** Binance's checks of `POST /fapi/v1/order`, in roughly Binance's order. */
  private validateOrder(acct: AccountState, params: URLSearchParams): OrderRequest | SimResponse {
    const err = (code: number, msg: string): SimResponse => binanceError(400, code, msg);
    const missing = (name: string): SimResponse => err(-1102, mandatoryParamMessage(name));

    const symbol = params.get('symbol');
    if (!symbol) return missing('symbol');
    const spec = this.market.hasSymbol(symbol) ? this.market.spec(symbol) : undefined;
    if (!spec) return err(-1121, MSG.invalidSymbol);
    if ((spec.status ?? 'TRADING') !== 'TRADING') return err(-1122, 'Invalid symbol status.');

    const side = params.get('side');
    if (!side) return missing('side');
    if (side !== 'BUY' && side !== 'SELL') return err(-1117, 'Invalid side.');

    const type = params.get('type');
    if (!type) return missing('type');
    if (CONDITIONAL_TYPES.has(type)) return err(-4120, MSG.algoOnly);
    if (type !== 'MARKET' && type !== 'LIMIT') return err(-1116, 'Invalid orderType.');

    const positionSide = params.get('positionSide');
    if (positionSide !== null && positionSide !== 'BOTH') {
      if (positionSide === 'LONG' || positionSide === 'SHORT') {
        return err(-4061, "Order's position side does not match user's setting.");
      }
      return missing('positionSide');
    }

    const quantityText = params.get('quantity');
    if (!quantityText) return missing('quantity');
    const quantity = parseDecimal(quantityText);
    if (!quantity) return missing('quantity');
    if (quantity.decimals > spec.quantityPrecision || quantity.decimals > DECIMALS) {
      return err(-1111, MSG.badPrecision);
    }
    if (quantity.value <= 0n) return err(-4003, MSG.quantityNotPositive);
    const step = marketDecimal(spec.stepSize);
    if (step > 0n && quantity.value % step !== 0n) return err(-4023, MSG.qtyStep);

    let price = 0n;
    let timeInForce: TimeInForce = 'GTC';
    const priceText = params.get('price');
    if (type === 'MARKET') {
      if (priceText !== null) return err(-1106, "Parameter 'price' sent when not required.");
    } else {
      const tif = params.get('timeInForce');
      if (!tif) return missing('timeInForce');
      if (!TIME_IN_FORCE.has(tif)) return err(-1115, 'Invalid timeInForce.');
      timeInForce = tif as TimeInForce;
      if (!priceText) return missing('price');
      const parsed = parseDecimal(priceText);
      if (!parsed) return missing('price');
      if (parsed.decimals > spec.pricePrecision || parsed.decimals > DECIMALS) {
        return err(-1111, MSG.badPrecision);
      }
      if (parsed.value <= 0n) return err(-4001, MSG.priceNotPositive);
      const tick = marketDecimal(spec.tickSize);
      if (tick > 0n && parsed.value % tick !== 0n) return err(-4014, MSG.priceTick);
      price = parsed.value;
    }

    const reduceOnlyText = params.get('reduceOnly');
    if (reduceOnlyText !== null && reduceOnlyText !== 'true' && reduceOnlyText !== 'false') {
      return missing('reduceOnly');
    }
    const reduceOnly = reduceOnlyText === 'true';

    const clientOrderId = params.get('newClientOrderId') ?? undefined;
    if (clientOrderId !== undefined) {
      if (!CLIENT_ORDER_ID.test(clientOrderId)) {
        return err(
          -1100,
          "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
        );
      }
      if (acct.openOrders().some((o) => o.clientOrderId === clientOrderId)) {
        return err(-4116, 'ClientOrderId is duplicated.');
      }
    }

    const respTypeText = params.get('newOrderRespType') ?? 'ACK';
    if (respTypeText !== 'ACK' && respTypeText !== 'RESULT') return missing('newOrderRespType');
    const stp = params.get('selfTradePreventionMode') ?? 'NONE';
    if (!STP_MODES.has(stp)) return missing('selfTradePreventionMode');

    const position = acct.positions.get(symbol)?.amount ?? 0n;
    const signed = side === 'BUY' ? quantity.value : -quantity.value;
    if (
      reduceOnly &&
      (position === 0n || position > 0n === signed > 0n || abs(signed) > abs(position))
    ) {
      return err(-2022, MSG.reduceOnlyRejected);
    }

    let mark: bigint;
    try {
      mark = this.markOf(symbol);
    } catch {
      return binanceError(500, -1000, 'An unknown error occured while processing the request.');
    }
    if (timeInForce === 'GTX' && (side === 'BUY' ? price > mark : price < mark)) {
      return err(-5022, MSG.postOnlyRejected);
    }
    if (timeInForce === 'FOK' && (side === 'BUY' ? price < mark : price > mark)) {
      return err(-5021, MSG.fokRejected);
    }

    // Margin: the part that opens or extends exposure needs initial margin at the order price.
    const sameDirection = position === 0n || position > 0n === signed > 0n;
    const opening = sameDirection
      ? quantity.value
      : quantity.value > abs(position)
        ? quantity.value - abs(position)
        : 0n;
    if (opening > 0n) {
      const estPrice = type === 'MARKET' ? mark : price;
      const required = roundDiv(mul(opening, estPrice), BigInt(this.leverageOf(acct, symbol)));
      const figures = this.assetFigures(acct, spec.quoteAsset, this.activePositions(acct, false));
      if (required > figures.available) return err(-2019, MSG.marginInsufficient);
    }

    return {
      symbol,
      spec,
      side,
      type,
      timeInForce,
      quantity: quantity.value,
      price,
      reduceOnly,
      clientOrderId,
      respType: respTypeText,
      selfTradePreventionMode: stp,
    };
  }

  /**
   * Books one fill: position (average entry on increase, realized PnL on reduce, new entry at
   * the fill price on a flip), wallet (realized PnL minus taker commission), order progress;
   * then pushes TRADE_LITE, ORDER_TRADE_UPDATE (TRADE) and ACCOUNT_UPDATE, in that order.
   */
  private applyFill(
    acct: AccountState,
    spec: SimSymbolSpec,
    order: SimOrder,
    fill: Fill,
    now: number,
  ): void {
    const price = marketDecimal(fill.price);
    const remaining = order.origQty - order.executedQty;
    let qty = marketDecimal(fill.quantity);
    if (qty > remaining) qty = remaining;
    if (qty <= 0n) return;
    const notional = mul(price, qty);
    const fee = mul(notional, this.takerFeeRate);

    const position = acct.position(order.symbol, spec.quoteAsset);
    const signed = order.side === 'BUY' ? qty : -qty;
    let realized = 0n;
    const held = abs(position.amount);
    if (position.amount === 0n || position.amount > 0n === signed > 0n) {
      position.entryPrice = roundDiv(held * position.entryPrice + qty * price, held + qty);
    } else {
      const closing = qty < held ? qty : held;
      const direction = position.amount > 0n ? 1n : -1n;
      realized = roundDiv(closing * (price - position.entryPrice) * direction, ONE);
      if (qty > held) position.entryPrice = price;
      else if (qty === held) position.entryPrice = 0n;
    }
    position.amount += signed;
    position.realized += realized;
    position.updateTimeMs = now;

    const balance = acct.balance(spec.quoteAsset, now);
    balance.wallet += realized - fee;
    balance.updateTimeMs = now;

    order.executedQty += qty;
    order.cumQuote += notional;
    order.status = order.executedQty >= order.origQty ? 'FILLED' : 'PARTIALLY_FILLED';
    order.updateTimeMs = now;

    acct.trades.push({
      symbol: order.symbol,
      id: fill.tradeId,
      orderId: order.orderId,
      side: order.side,
      price,
      qty,
      quote: notional,
      realized,
      commission: fee,
      commissionAsset: spec.quoteAsset,
      timeMs: now,
    });
    const excess = acct.trades.length - this.opts.tradeHistoryLimit;
    if (excess > 0) acct.trades.splice(0, excess);

    const lastQty = fixed(qty, spec.quantityPrecision);
    const lastPrice = fixed(price, spec.pricePrecision);
    this.publish(acct, {
      e: 'TRADE_LITE',
      E: now,
      T: now,
      s: order.symbol,
      q: fixed(order.origQty, spec.quantityPrecision),
      p: order.type === 'MARKET' ? '0' : fixed(order.price, spec.pricePrecision),
      m: false,
      c: order.clientOrderId,
      S: order.side,
      L: lastPrice,
      l: lastQty,
      t: fill.tradeId,
      i: order.orderId,
    });
    this.publish(
      acct,
      this.orderUpdate(acct, spec, order, 'TRADE', now, {
        l: lastQty,
        L: lastPrice,
        n: fixed(fee, 8),
        t: fill.tradeId,
        rp: fixed(realized, 8),
      }),
    );
    const unrealized = mul(this.markOrEntry(position) - position.entryPrice, position.amount);
    this.publish(acct, {
      e: 'ACCOUNT_UPDATE',
      E: now,
      T: now,
      a: {
        m: 'ORDER',
        B: [
          {
            a: spec.quoteAsset,
            wb: fixed(balance.wallet, 8),
            cw: fixed(balance.wallet, 8),
            bc: '0',
          },
        ],
        P: [
          {
            s: order.symbol,
            pa: fixed(position.amount, spec.quantityPrecision),
            ep: this.priceText(spec, position.entryPrice),
            bep: this.priceText(spec, this.breakEven(position)),
            cr: fixed(position.realized, 8),
            up: fixed(unrealized, 8),
            mt: 'cross',
            iw: '0',
            ps: 'BOTH',
          },
        ],
      },
    });
  }

  /** `ORDER_TRADE_UPDATE` with every field of the reference table (trailing-only ones omitted). */
  private orderUpdate(
    acct: AccountState,
    spec: SimSymbolSpec,
    order: SimOrder,
    x: ExecutionType,
    now: number,
    trade: { l?: string; L?: string; n?: string; t?: number; rp?: string; er?: string } = {},
  ): object {
    let bids = 0n;
    let asks = 0n;
    for (const o of acct.openOrders(order.symbol)) {
      const n = mul(o.origQty - o.executedQty, o.price);
      if (o.side === 'BUY') bids += n;
      else asks += n;
    }
    return {
      e: 'ORDER_TRADE_UPDATE',
      E: now,
      T: now,
      o: {
        s: order.symbol,
        c: order.clientOrderId,
        S: order.side,
        o: order.type,
        f: order.timeInForce,
        q: fixed(order.origQty, spec.quantityPrecision),
        p: order.type === 'MARKET' ? '0' : fixed(order.price, spec.pricePrecision),
        ap: this.avgPriceText(spec, order, '0'),
        sp: '0',
        x,
        X: order.status,
        i: order.orderId,
        l: trade.l ?? '0',
        z: fixed(order.executedQty, spec.quantityPrecision),
        L: trade.L ?? '0',
        N: spec.quoteAsset,
        n: trade.n ?? '0',
        T: now,
        t: trade.t ?? 0,
        b: fmt(bids, 0),
        a: fmt(asks, 0),
        m: false,
        R: order.reduceOnly,
        wt: 'CONTRACT_PRICE',
        ot: order.type,
        ps: 'BOTH',
        cp: false,
        rp: trade.rp ?? '0',
        pP: false,
        si: 0,
        ss: 0,
        V: order.selfTradePreventionMode,
        pm: 'NONE',
        gtd: 0,
        er: trade.er ?? '0',
      },
    };
  }

  private avgPriceText(spec: SimSymbolSpec, order: SimOrder, zero: string): string {
    if (order.executedQty === 0n) return zero;
    return fmt(roundDiv(order.cumQuote * ONE, order.executedQty), spec.pricePrecision);
  }

  /** Binance's order JSON: the new-order/cancel response, or the query/openOrders row. */
  private orderJson(spec: SimSymbolSpec, o: SimOrder, shape: 'response' | 'query'): object {
    const qp = spec.quantityPrecision;
    const pp = spec.pricePrecision;
    const common = {
      clientOrderId: o.clientOrderId,
      cumQty: fixed(o.executedQty, qp),
      cumQuote: fmt(o.cumQuote, pp),
      executedQty: fixed(o.executedQty, qp),
      orderId: o.orderId,
      avgPrice: this.avgPriceText(spec, o, fixed(0n, pp)),
      origQty: fixed(o.origQty, qp),
      price: o.type === 'MARKET' ? '0' : fixed(o.price, pp),
      reduceOnly: o.reduceOnly,
      side: o.side,
      positionSide: 'BOTH',
      status: o.status,
      stopPrice: '0',
      closePosition: false,
      symbol: o.symbol,
    };
    const tail = {
      timeInForce: o.timeInForce,
      type: o.type,
      origType: o.type,
      updateTime: o.updateTimeMs,
      workingType: 'CONTRACT_PRICE',
      priceProtect: false,
      priceMatch: 'NONE',
      selfTradePreventionMode: o.selfTradePreventionMode,
      goodTillDate: 0,
    };
    if (shape === 'response') return { ...common, ...tail };
    const { cumQty: _cumQty, ...withoutCumQty } = common;
    return { ...withoutCumQty, time: o.timeMs, ...tail };
  }

  /** Adds Binance's per-account order counters to an order response. */
  private withOrderCount(acct: AccountState, res: SimResponse): SimResponse {
    const now = this.clock.now();
    const times = acct.orderTimesMs;
    while (times.length > 0 && (times[0] ?? now) <= now - 60_000) times.shift();
    const last10s = times.filter((t) => t > now - 10_000).length;
    return {
      ...res,
      headers: {
        ...res.headers,
        'X-MBX-ORDER-COUNT-10S': String(last10s),
        'X-MBX-ORDER-COUNT-1M': String(times.length),
      },
    };
  }

  /** Keeps open orders and the newest finished ones. */
  private trimHistory(acct: AccountState): void {
    let finished = 0;
    for (const o of acct.orders.values()) {
      if (o.status !== 'NEW' && o.status !== 'PARTIALLY_FILLED') finished += 1;
    }
    for (const [id, o] of acct.orders) {
      if (finished <= this.opts.orderHistoryLimit) break;
      if (o.status !== 'NEW' && o.status !== 'PARTIALLY_FILLED') {
        acct.orders.delete(id);
        finished -= 1;
      }
    }
  }

  /** A resting order whose price the mark has crossed takes liquidity up to its limit. */
  private tryFillResting(acct: AccountState, order: SimOrder): void {
    const spec = this.market.spec(order.symbol);
    if (!spec) return;
    let fills: Fill[];
    try {
      const mark = this.markOf(order.symbol);
      const crossed = order.side === 'BUY' ? mark <= order.price : mark >= order.price;
      if (!crossed) return;
      fills = this.market.executeTaker(
        order.symbol,
        order.side,
        fixed(order.origQty - order.executedQty, spec.quantityPrecision),
        fixed(order.price, spec.pricePrecision),
      );
    } catch {
      return;
    }
    const now = this.nowInt();
    for (const fill of fills) this.applyFill(acct, spec, order, fill, now);
    if (fills.length > 0) this.trimHistory(acct);
  }

  /** Finds an order by `orderId` (exact 64-bit digits) or `origClientOrderId`. */
  private findOrder(
    acct: AccountState,
    params: URLSearchParams,
  ): { order: SimOrder | undefined; spec: SimSymbolSpec } | SimResponse {
    const symbol = params.get('symbol');
    if (!symbol) return binanceError(400, -1102, mandatoryParamMessage('symbol'));
    const spec = this.market.hasSymbol(symbol) ? this.market.spec(symbol) : undefined;
    if (!spec) return binanceError(400, -1121, MSG.invalidSymbol);
    const idText = params.get('orderId');
    const clientId = params.get('origClientOrderId');
    if (!idText && !clientId) {
      return binanceError(
        400,
        -1102,
        "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
      );
    }
    let order: SimOrder | undefined;
    if (idText) {
      if (!/^\d{1,20}$/.test(idText)) {
        return binanceError(
          400,
          -1100,
          "Illegal characters found in parameter 'orderId'; legal range is '^[0-9]{1,20}$'.",
        );
      }
      order = acct.orders.get(BigInt(idText));
    } else {
      for (const o of acct.orders.values()) if (o.clientOrderId === clientId) order = o;
    }
    if (order && order.symbol !== symbol) order = undefined;
    return { order, spec };
  }

  private queryOrder(acct: AccountState, params: URLSearchParams): SimResponse {
    const found = this.findOrder(acct, params);
    if ('status' in found) return found;
    if (!found.order) return binanceError(400, -2013, MSG.noSuchOrder);
    return jsonResponse(
      stringifyWithBigInts(this.orderJson(found.spec, found.order, 'query')),
      WEIGHT.order,
    );
  }

  private cancelOrder(acct: AccountState, params: URLSearchParams): SimResponse {
    const found = this.findOrder(acct, params);
    if ('status' in found) return found;
    const order = found.order;
    if (!order || (order.status !== 'NEW' && order.status !== 'PARTIALLY_FILLED')) {
      return binanceError(400, -2011, MSG.unknownOrder);
    }
    this.cancel(acct, found.spec, order);
    return jsonResponse(
      stringifyWithBigInts(this.orderJson(found.spec, order, 'response')),
      WEIGHT.order,
    );
  }

  private cancel(acct: AccountState, spec: SimSymbolSpec, order: SimOrder): void {
    const now = this.nowInt();
    order.status = 'CANCELED';
    order.updateTimeMs = now;
    this.publish(acct, this.orderUpdate(acct, spec, order, 'CANCELED', now));
  }

  private cancelAll(acct: AccountState, params: URLSearchParams): SimResponse {
    const symbol = params.get('symbol');
    if (!symbol) return binanceError(400, -1102, mandatoryParamMessage('symbol'));
    const spec = this.market.hasSymbol(symbol) ? this.market.spec(symbol) : undefined;
    if (!spec) return binanceError(400, -1121, MSG.invalidSymbol);
    for (const o of acct.openOrders(symbol)) this.cancel(acct, spec, o);
    this.trimHistory(acct);
    return jsonResponse(
      { code: 200, msg: 'The operation of cancel all open order is done.' },
      WEIGHT.order,
    );
  }

  private openOrdersRoute(acct: AccountState, params: URLSearchParams): SimResponse {
    const symbol = params.get('symbol') ?? undefined;
    if (symbol !== undefined && !this.market.hasSymbol(symbol)) {
      return binanceError(400, -1121, MSG.invalidSymbol);
    }
    const rows: object[] = [];
    for (const o of acct.openOrders(symbol)) {
      const spec = this.market.spec(o.symbol);
      if (spec) rows.push(this.orderJson(spec, o, 'query'));
    }
    return jsonResponse(
      stringifyWithBigInts(rows),
      symbol === undefined ? WEIGHT.openOrdersAll : WEIGHT.order,
    );
  }

  /**
   * `GET /fapi/v1/leverageBracket[?symbol]`: the notional brackets of the simulator's margin
   * model, one bracket per symbol (leverage up to 125, the one maintenance margin rate, the
   * `maxNotionalValue` the other endpoints report). An array of `{symbol, brackets}`, or one
   * object when `symbol` is sent, as Binance answers.
   */
  private leverageBracketRoute(params: URLSearchParams): SimResponse {
    const symbol = params.get('symbol');
    if (symbol !== null && !this.market.hasSymbol(symbol)) {
      return binanceError(400, -1121, MSG.invalidSymbol, WEIGHT.leverageBracket);
    }
    const entry = (s: string) => ({
      symbol: s,
      brackets: [
        {
          bracket: 1,
          initialLeverage: MAX_LEVERAGE,
          notionalCap: Number(MAX_NOTIONAL),
          notionalFloor: 0,
          maintMarginRatio: Number(fmt(this.maintMarginRate, 0)),
          cum: 0,
        },
      ],
    });
    if (symbol !== null) return jsonResponse(entry(symbol), WEIGHT.leverageBracket);
    const all = this.market.symbols?.() ?? [];
    return jsonResponse(all.map(entry), WEIGHT.leverageBracket);
  }

  private leverageRoute(acct: AccountState, params: URLSearchParams): SimResponse {
    const symbol = params.get('symbol');
    if (!symbol) return binanceError(400, -1102, mandatoryParamMessage('symbol'));
    if (!this.market.hasSymbol(symbol)) return binanceError(400, -1121, MSG.invalidSymbol);
    const text = params.get('leverage');
    if (!text || !/^\d{1,4}$/.test(text)) {
      return binanceError(400, -1102, mandatoryParamMessage('leverage'));
    }
    const leverage = Number(text);
    if (leverage < 1 || leverage > MAX_LEVERAGE) {
      return binanceError(400, -4028, `Leverage ${leverage} is not valid`);
    }
    this.setLeverage(acct, symbol, leverage);
    return jsonResponse({ leverage, maxNotionalValue: MAX_NOTIONAL, symbol }, WEIGHT.order);
  }

  private setLeverage(acct: AccountState, symbol: string, leverage: number): void {
    if (!Number.isInteger(leverage) || leverage < 1 || leverage > MAX_LEVERAGE) {
      throw new Error(`Accounts: leverage must be an integer in 1..${MAX_LEVERAGE}`);
    }
    acct.leverage.set(symbol, leverage);
    const now = this.nowInt();
    this.publish(acct, {
      e: 'ACCOUNT_CONFIG_UPDATE',
      E: now,
      T: now,
      ac: { s: symbol, l: leverage },
    });
  }

  // -------------------------------------------------------------------------------------------
  // Trade and order history, account configuration

  /**
   * The time window of userTrades/allOrders: as sent; 7 days from `startTime` or up to
   * `endTime` when only one is sent; the last 7 days when neither is (unbounded when the query
   * starts at an id instead).
   */
  private historyWindow(
    range: { startTime?: number; endTime?: number },
    fromAnId: boolean,
  ): [number, number] {
    const week = HISTORY_WINDOW_HOURS * 3_600_000;
    const { startTime, endTime } = range;
    if (startTime !== undefined) return [startTime, endTime ?? startTime + week];
    if (endTime !== undefined) return [endTime - week, endTime];
    return fromAnId ? [-Infinity, Infinity] : [this.clock.now() - week, Infinity];
  }

  /**
   * `GET /fapi/v1/userTrades?symbol[&orderId][&startTime][&endTime][&fromId][&limit]`: the
   * account's fills, ascending by trade id, each as its ORDER_TRADE_UPDATE reported it (`t`,
   * `L`, `l`, `n`, `rp`). `fromId` excludes a time window (-1128); windows span ≤ 7 days.
   */
  private userTradesRoute(acct: AccountState, params: URLSearchParams): SimResponse {
    return answerParamErrors(() => {
      const p = new Params(params, WEIGHT.userTrades);
      const symbol = p.required('symbol');
      if (!this.market.hasSymbol(symbol)) p.fail(-1121, MSG.invalidSymbol);
      const orderId = p.id('orderId');
      const fromId = p.long('fromId');
      const range = p.timeRange(HISTORY_WINDOW_HOURS);
      if (fromId !== undefined && (range.startTime !== undefined || range.endTime !== undefined)) {
        p.fail(-1128, 'Combination of optional parameters invalid.');
      }
      const limit = p.limit(500, 1000);
      const [start, end] = this.historyWindow(range, fromId !== undefined || orderId !== undefined);
      const rows = acct.trades.filter(
        (t) =>
          t.symbol === symbol &&
          (orderId === undefined || t.orderId === orderId) &&
          (fromId === undefined || t.id >= fromId) &&
          t.timeMs >= start &&
          t.timeMs <= end,
      );
      const fromStart = fromId !== undefined || range.startTime !== undefined;
      const [from, to] = windowIndices(0, rows.length, limit, fromStart);
      const spec = this.market.spec(symbol);
      const body = rows.slice(from, to).map((t) => this.userTradeJson(spec, t));
      return jsonResponse(stringifyWithBigInts(body), WEIGHT.userTrades);
    });
  }

  private userTradeJson(spec: SimSymbolSpec | undefined, t: UserTrade): object {
    const pp = spec?.pricePrecision ?? DECIMALS;
    const qp = spec?.quantityPrecision ?? DECIMALS;
    return {
      buyer: t.side === 'BUY',
      commission: fixed(t.commission, 8),
      commissionAsset: t.commissionAsset,
      id: t.id,
      maker: false,
      orderId: t.orderId,
      price: fixed(t.price, pp),
      qty: fixed(t.qty, qp),
      quoteQty: fixed(t.quote, Math.min(DECIMALS, pp + qp)),
      realizedPnl: fixed(t.realized, 8),
      side: t.side,
      positionSide: 'BOTH',
      symbol: t.symbol,
      time: t.timeMs,
    };
  }

  /**
   * `GET /fapi/v1/allOrders[?symbol][&orderId][&startTime][&endTime][&limit]`: open orders and
   * the kept finished ones (`orderHistoryLimit`), ascending by id; `orderId` starts there.
   */
  private allOrdersRoute(acct: AccountState, params: URLSearchParams): SimResponse {
    return answerParamErrors(() => {
      const p = new Params(params, WEIGHT.allOrders);
      let symbol: string | undefined;
      if (p.has('symbol')) {
        symbol = p.required('symbol');
        if (!this.market.hasSymbol(symbol)) p.fail(-1121, MSG.invalidSymbol);
      }
      const orderId = p.id('orderId');
      const range = p.timeRange(HISTORY_WINDOW_HOURS);
      const limit = p.limit(500, 1000);
      const [start, end] = this.historyWindow(range, orderId !== undefined);
      const rows = [...acct.orders.values()]
        .filter(
          (o) =>
            (symbol === undefined || o.symbol === symbol) &&
            (orderId === undefined || o.orderId >= orderId) &&
            o.timeMs >= start &&
            o.timeMs <= end,
        )
        .sort((a, b) => (a.orderId < b.orderId ? -1 : a.orderId > b.orderId ? 1 : 0));
      const fromStart = orderId !== undefined || range.startTime !== undefined;
      const [from, to] = windowIndices(0, rows.length, limit, fromStart);
      const body = rows.slice(from, to).flatMap((o) => {
        const spec = this.market.spec(o.symbol);
        return spec ? [this.orderJson(spec, o, 'query')] : [];
      });
      return jsonResponse(stringifyWithBigInts(body), WEIGHT.allOrders);
    });
  }

  /** `GET /fapi/v1/openOrder?symbol&(orderId|origClientOrderId)`: an open order, else -2013. */
  private queryOpenOrder(acct: AccountState, params: URLSearchParams): SimResponse {
    const found = this.findOrder(acct, params);
    if ('status' in found) return found;
    const order = found.order;
    if (!order || (order.status !== 'NEW' && order.status !== 'PARTIALLY_FILLED')) {
      return binanceError(400, -2013, MSG.noSuchOrder);
    }
    return jsonResponse(
      stringifyWithBigInts(this.orderJson(found.spec, order, 'query')),
      WEIGHT.order,
    );
  }

  /**
   * `POST /fapi/v1/positionSide/dual?dualSidePosition=true|false`. Every simulated account is in
   * one-way mode and stays there: `false` is Binance's -4059 (no need to change); `true` is
   * refused as Binance refuses it with open orders (-4067) or a position (-4068), and otherwise
   * with -1020, since the simulator does not model hedge mode.
   */
  private changePositionMode(acct: AccountState, params: URLSearchParams): SimResponse {
    return answerParamErrors(() => {
      const p = new Params(params, WEIGHT.changePositionMode);
      const value = p.required('dualSidePosition').toLowerCase();
      if (value !== 'true' && value !== 'false') {
        p.fail(-1102, mandatoryParamMessage('dualSidePosition'));
      }
      if (value === 'false') p.fail(-4059, 'No need to change position side.');
      if (acct.openOrders().length > 0) {
        p.fail(-4067, 'Position side cannot be changed if there exists open orders.');
      }
      for (const position of acct.positions.values()) {
        if (position.amount !== 0n) {
          p.fail(-4068, 'Position side cannot be changed if there exists position.');
        }
      }
      return p.fail(-1020, 'This operation is not supported.');
    });
  }

  /** `GET /fapi/v1/symbolConfig[?symbol]`: cross margin, the account's leverage, one row per symbol. */
  private symbolConfigRoute(acct: AccountState, params: URLSearchParams): SimResponse {
    const symbol = params.get('symbol');
    if (symbol !== null && !this.market.hasSymbol(symbol)) {
      return binanceError(400, -1121, MSG.invalidSymbol, WEIGHT.symbolConfig);
    }
    const symbols = symbol !== null ? [symbol] : (this.market.symbols?.() ?? []);
    return jsonResponse(
      symbols.map((s) => ({
        symbol: s,
        marginType: 'CROSSED',
        isAutoAddMargin: false,
        leverage: this.leverageOf(acct, s),
        maxNotionalValue: MAX_NOTIONAL,
      })),
      WEIGHT.symbolConfig,
    );
  }

  /** `GET /fapi/v1/commissionRate?symbol`: the maker and taker rates the simulator charges. */
  private commissionRateRoute(params: URLSearchParams): SimResponse {
    const symbol = params.get('symbol');
    if (!symbol) {
      return binanceError(400, -1102, mandatoryParamMessage('symbol'), WEIGHT.commissionRate);
    }
    if (!this.market.hasSymbol(symbol)) {
      return binanceError(400, -1121, MSG.invalidSymbol, WEIGHT.commissionRate);
    }
    return jsonResponse(
      {
        symbol,
        makerCommissionRate: fmt(this.makerFeeRate, 4),
        takerCommissionRate: fmt(this.takerFeeRate, 4),
      },
      WEIGHT.commissionRate,
    );
  }

  // -------------------------------------------------------------------------------------------
  // Demo auto-trader

  private autoTrade(acct: AccountState): void {
    try {
      this.expireDueListenKeys();
      const symbols = this.opts.autoTradeSymbols.filter((s) => {
        const spec = this.market.hasSymbol(s) ? this.market.spec(s) : undefined;
        return spec !== undefined && (spec.status ?? 'TRADING') === 'TRADING';
      });
      const symbol = symbols[Math.floor(acct.random() * symbols.length)];
      const spec = symbol === undefined ? undefined : this.market.spec(symbol);
      if (symbol === undefined || !spec) return;
      const step = marketDecimal(spec.stepSize);
      const maxSteps = BigInt(Math.max(1, this.opts.autoTradeMaxSteps));
      const steps = 1n + BigInt(Math.floor(acct.random() * Number(maxSteps)));
      const position = acct.positions.get(symbol)?.amount ?? 0n;
      let side = acct.nextAutoSide;
      acct.nextAutoSide = side === 'BUY' ? 'SELL' : 'BUY';
      if (abs(position) >= 2n * maxSteps * step) side = position > 0n ? 'SELL' : 'BUY';
      this.newOrder(
        acct,
        new URLSearchParams({
          symbol,
          side,
          type: 'MARKET',
          quantity: fixed(steps * step, spec.quantityPrecision),
        }),
      );
    } catch {
      // Demo trading is best effort: a market without liquidity must not stop the timer.
    }
  }
}
