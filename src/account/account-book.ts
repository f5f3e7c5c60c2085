import type { AccountUpdateView, BalanceView, PositionView } from '../schema/context.js';

/**
 * The live balances and open positions of one account: a signed REST snapshot, then kept
 * current from `ACCOUNT_UPDATE` deltas. Pure (no I/O, no timers), so the rules are unit-tested
 * on their own:
 *
 * - a delta carries only what changed (reference §6.4: `P` is "a delta, not a snapshot"), and
 *   each item in it is absolute (`wb`, `pa` are the new values, not increments), so applying it
 *   is "replace this item";
 * - positions are keyed by (symbol, positionSide): hedge mode holds LONG and SHORT at once;
 * - an item that becomes zero is removed: the lists show non-zero balances and open positions.
 */

/** The two lists a signed snapshot yields. */
export interface AccountSnapshot {
  balances: BalanceView[];
  positions: PositionView[];
}

/** Which of the two lists a change touched, so only those topics publish. */
export interface BookChange {
  balances: boolean;
  positions: boolean;
}

/** True for any spelling of zero Binance uses: "0", "0.00000000", "-0.000". */
export function isZeroDecimal(text: string): boolean {
  return /^[+-]?0*(\.0*)?$/.test(text.trim()) && /\d/.test(text);
}

const positionKey = (p: Pick<PositionView, 'symbol' | 'positionSide'>): string =>
  `${p.symbol}|${p.positionSide}`;

function sameBalance(a: BalanceView | undefined, b: BalanceView): boolean {
  return (
    a !== undefined &&
    a.walletBalance === b.walletBalance &&
    a.crossWalletBalance === b.crossWalletBalance
  );
}

function samePosition(a: PositionView | undefined, b: PositionView): boolean {
  return (
    a !== undefined &&
    a.positionAmount === b.positionAmount &&
    a.entryPrice === b.entryPrice &&
    a.unrealizedProfit === b.unrealizedProfit
  );
}

/** The current state of one account, with the delta reducer. */
export class AccountBook {
  private readonly balances = new Map<string, BalanceView>();
  private readonly positions = new Map<string, PositionView>();

  /** Replaces everything with a snapshot; tells which list differs from before. */
  reset(snapshot: AccountSnapshot): BookChange {
    const before = { balances: this.balanceList(), positions: this.positionList() };
    this.balances.clear();
    this.positions.clear();
    for (const b of snapshot.balances) this.setBalance(b);
    for (const p of snapshot.positions) this.setPosition(p);
    return {
      balances: JSON.stringify(before.balances) !== JSON.stringify(this.balanceList()),
      positions: JSON.stringify(before.positions) !== JSON.stringify(this.positionList()),
    };
  }

  /** Applies one `ACCOUNT_UPDATE` delta; tells which list actually changed. */
  apply(update: Pick<AccountUpdateView, 'balances' | 'positions'>): BookChange {
    const change: BookChange = { balances: false, positions: false };
    for (const b of update.balances) {
      if (isZeroDecimal(b.walletBalance)) {
        if (this.balances.delete(b.asset)) change.balances = true;
      } else if (!sameBalance(this.balances.get(b.asset), b)) {
        this.balances.set(b.asset, { ...b });
        change.balances = true;
      }
    }
    for (const p of update.positions) {
      const key = positionKey(p);
      if (isZeroDecimal(p.positionAmount)) {
        if (this.positions.delete(key)) change.positions = true;
      } else if (!samePosition(this.positions.get(key), p)) {
        this.positions.set(key, { ...p });
        change.positions = true;
      }
    }
    return change;
  }

  /** Non-zero balances, by asset. */
  balanceList(): BalanceView[] {
    return [...this.balances.values()]
      .sort((a, b) => (a.asset < b.asset ? -1 : a.asset > b.asset ? 1 : 0))
      .map((b) => ({ ...b }));
  }

  /** Open positions, by symbol then side. */
  positionList(): PositionView[] {
    return [...this.positions.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, p]) => ({ ...p }));
  }

  private setBalance(b: BalanceView): void {
    if (!isZeroDecimal(b.walletBalance)) this.balances.set(b.asset, { ...b });
  }

  private setPosition(p: PositionView): void {
    if (!isZeroDecimal(p.positionAmount)) this.positions.set(positionKey(p), { ...p });
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function text(o: Record<string, unknown>, k: string, what: string): string {
  const v = o[k];
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  throw new Error(`${what}: field ${k} is missing`);
}

/** `GET /fapi/v3/balance` → non-zero balances (`balance` is the wallet balance). */
export function parseBalanceSnapshot(body: unknown): BalanceView[] {
  if (!Array.isArray(body)) throw new Error('balance snapshot is not a list');
  return body.filter(isRecord).flatMap((row) => {
    const balance: BalanceView = {
      asset: text(row, 'asset', 'balance snapshot'),
      walletBalance: text(row, 'balance', 'balance snapshot'),
      crossWalletBalance: text(row, 'crossWalletBalance', 'balance snapshot'),
    };
    return isZeroDecimal(balance.walletBalance) ? [] : [balance];
  });
}

/** `GET /fapi/v3/positionRisk` → open positions (`positionAmt` ≠ 0). */
export function parsePositionSnapshot(body: unknown): PositionView[] {
  if (!Array.isArray(body)) throw new Error('position snapshot is not a list');
  return body.filter(isRecord).flatMap((row) => {
    const side = row.positionSide ?? 'BOTH';
    if (side !== 'BOTH' && side !== 'LONG' && side !== 'SHORT') return [];
    const position: PositionView = {
      symbol: text(row, 'symbol', 'position snapshot'),
      positionSide: side,
      positionAmount: text(row, 'positionAmt', 'position snapshot'),
      entryPrice: text(row, 'entryPrice', 'position snapshot'),
      unrealizedProfit: text(row, 'unRealizedProfit', 'position snapshot'),
    };
    return isZeroDecimal(position.positionAmount) ? [] : [position];
  });
}
