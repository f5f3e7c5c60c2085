import type {
  AccountConfigUpdateView,
  AccountEventView,
  AccountUpdateView,
  BalanceView,
  OrderUpdateView,
  PositionView,
} from '../schema/context.js';

/**
 * The user-data wire format (reference §6.4), validated in one place: frames arrive already
 * parsed by `parseJsonExact`, so 64-bit ids are exact digit strings (pitfall 3). Everything past
 * this module is typed; nothing downstream re-checks shapes.
 */

/** One user-data event as Binance sent it: `e` (type) and `E` (event time) checked, rest raw. */
export interface UserEvent {
  e: string;
  E: number;
  body: Readonly<Record<string, unknown>>;
}

/** What `toAccountEventView` makes of one event: a view, or why there is none. */
export type MappedEvent =
  | { kind: 'view'; view: AccountEventView }
  /** a known Binance type that the `AccountEvent` union does not carry (TRADE_LITE, ...) */
  | { kind: 'skipped' }
  /** a type this gateway has never heard of (Binance keeps adding them) */
  | { kind: 'unknown' }
  /** a known type whose fields are not what the reference documents */
  | { kind: 'malformed'; why: string };

/** Types Binance documents that the union does not carry; skipped without a log line. */
const SKIPPED_TYPES = new Set([
  'TRADE_LITE',
  'MARGIN_CALL',
  'ALGO_UPDATE',
  'STRATEGY_UPDATE',
  'GRID_UPDATE',
  'CONDITIONAL_ORDER_TRIGGER_REJECT',
  'listenKeyExpired',
]);

const POSITION_SIDES = new Set(['BOTH', 'LONG', 'SHORT']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads the envelope of a parsed frame: a bare event, or a combined `{stream, data}` one. */
export function readUserEvent(frame: unknown): UserEvent | undefined {
  const body = isRecord(frame) && isRecord(frame.data) ? frame.data : frame;
  if (!isRecord(body) || typeof body.e !== 'string') return undefined;
  const eventTime = typeof body.E === 'number' ? body.E : Number(body.E);
  if (!Number.isFinite(eventTime)) return undefined;
  return { e: body.e, E: eventTime, body };
}

class Malformed extends Error {}

function str(o: Record<string, unknown>, k: string): string {
  const v = o[k];
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  throw new Malformed(`field ${k} is not a string`);
}

/** An id: a safe integer or the exact digits `parseJsonExact` keeps for larger ones. */
function id(o: Record<string, unknown>, k: string): string {
  const v = o[k];
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return v;
  throw new Malformed(`field ${k} is not an integer id`);
}

function num(o: Record<string, unknown>, k: string, fallback?: number): number {
  const v = o[k];
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (v === undefined && fallback !== undefined) return fallback;
  throw new Malformed(`field ${k} is not a number`);
}

function rec(o: Record<string, unknown>, k: string): Record<string, unknown> {
  const v = o[k];
  if (!isRecord(v)) throw new Malformed(`field ${k} is not an object`);
  return v;
}

function list(o: Record<string, unknown>, k: string): Record<string, unknown>[] {
  const v = o[k];
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every(isRecord)) throw new Malformed(`field ${k} is not a list`);
  return v;
}

function side(o: Record<string, unknown>, k: string): 'BUY' | 'SELL' {
  const v = o[k];
  if (v === 'BUY' || v === 'SELL') return v;
  throw new Malformed(`field ${k} is not BUY or SELL`);
}

function positionSide(o: Record<string, unknown>, k: string): PositionView['positionSide'] {
  const v = o[k];
  if (typeof v === 'string' && POSITION_SIDES.has(v)) return v as PositionView['positionSide'];
  throw new Malformed(`field ${k} is not BOTH, LONG or SHORT`);
}

/** `ACCOUNT_UPDATE`: only what changed (`a.B`, `a.P`), as Binance sends it. */
function accountUpdate(ev: UserEvent): AccountUpdateView {
  const a = rec(ev.body, 'a');
  const balances: BalanceView[] = list(a, 'B').map((b) => ({
    asset: str(b, 'a'),
    walletBalance: str(b, 'wb'),
    crossWalletBalance: str(b, 'cw'),
  }));
  const positions: PositionView[] = list(a, 'P').map((p) => ({
    symbol: str(p, 's'),
    positionSide: positionSide(p, 'ps'),
    positionAmount: str(p, 'pa'),
    entryPrice: str(p, 'ep'),
    unrealizedProfit: str(p, 'up'),
  }));
  return {
    __typename: 'AccountUpdate',
    eventTime: ev.E,
    transactionTime: num(ev.body, 'T', ev.E),
    reason: str(a, 'm'),
    balances,
    positions,
  };
}

/** `ORDER_TRADE_UPDATE`: order and trade ids kept as exact digit strings. */
function orderUpdate(ev: UserEvent): OrderUpdateView {
  const o = rec(ev.body, 'o');
  return {
    __typename: 'OrderUpdate',
    eventTime: ev.E,
    transactionTime: num(ev.body, 'T', num(o, 'T', ev.E)),
    symbol: str(o, 's'),
    orderId: id(o, 'i'),
    clientOrderId: str(o, 'c'),
    side: side(o, 'S'),
    orderType: str(o, 'o'),
    executionType: str(o, 'x'),
    orderStatus: str(o, 'X'),
    price: str(o, 'p'),
    quantity: str(o, 'q'),
    averagePrice: str(o, 'ap'),
    lastFilledQuantity: str(o, 'l'),
    lastFilledPrice: str(o, 'L'),
    cumulativeFilledQuantity: str(o, 'z'),
    tradeId: o.t === undefined ? '0' : id(o, 't'),
    realizedProfit: o.rp === undefined ? '0' : str(o, 'rp'),
  };
}

/** `ACCOUNT_CONFIG_UPDATE`: `ac` (leverage of a symbol) or `ai` (multi-assets mode). */
function accountConfigUpdate(ev: UserEvent): AccountConfigUpdateView {
  const ac = ev.body.ac;
  const ai = ev.body.ai;
  let leverageChange: AccountConfigUpdateView['leverageChange'] = null;
  if (ac !== undefined) {
    const r = rec(ev.body, 'ac');
    const leverage = num(r, 'l');
    if (!Number.isInteger(leverage)) throw new Malformed('field ac.l is not an integer');
    leverageChange = { symbol: str(r, 's'), leverage };
  }
  let multiAssetsMode: boolean | null = null;
  if (ai !== undefined) {
    const j = rec(ev.body, 'ai').j;
    if (typeof j !== 'boolean') throw new Malformed('field ai.j is not a boolean');
    multiAssetsMode = j;
  }
  return {
    __typename: 'AccountConfigUpdate',
    eventTime: ev.E,
    transactionTime: num(ev.body, 'T', ev.E),
    leverageChange,
    multiAssetsMode,
  };
}

/**
 * Maps one user-data event to the schema's `AccountEvent` union. Done once per event and
 * shared by every subscriber of the key, never once per subscriber.
 */
export function toAccountEventView(ev: UserEvent): MappedEvent {
  try {
    switch (ev.e) {
      case 'ACCOUNT_UPDATE':
        return { kind: 'view', view: accountUpdate(ev) };
      case 'ORDER_TRADE_UPDATE':
        return { kind: 'view', view: orderUpdate(ev) };
      case 'ACCOUNT_CONFIG_UPDATE':
        return { kind: 'view', view: accountConfigUpdate(ev) };
      default:
        return SKIPPED_TYPES.has(ev.e) ? { kind: 'skipped' } : { kind: 'unknown' };
    }
  } catch (err) {
    if (err instanceof Malformed) return { kind: 'malformed', why: err.message };
    throw err;
  }
}

/**
 * A key that identifies one event across two connections of the same listenKey (the 24 h
 * rotation overlap): type, event time and the ids that tell events of the same millisecond
 * apart. Falls back to the whole body for types without ids (an ACCOUNT_UPDATE per fill can
 * share its `E` with the next one).
 */
export function eventIdentity(ev: UserEvent): string {
  const o = ev.body.o;
  if (ev.e === 'ORDER_TRADE_UPDATE' && isRecord(o)) {
    return `${ev.e}|${ev.E}|${String(o.i)}|${String(o.t)}|${String(o.x)}|${String(o.X)}|${String(o.z)}`;
  }
  return `${ev.e}|${ev.E}|${JSON.stringify(ev.body)}`;
}
