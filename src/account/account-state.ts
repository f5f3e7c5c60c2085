import { backoffDelayMs, DEFAULT_BACKOFF } from '../binance/backoff.js';
import type { GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { AccountUpdateView, BalanceView, PositionView } from '../schema/context.js';
import { AccountBook, type AccountSnapshot } from './account-book.js';
import { isKeyRejected, toClientError } from './errors.js';
import { systemClock, type StreamClock } from './user-stream.js';

/** What an `AccountState` tells the balance and position topics. */
export interface AccountStateListener {
  onBalances?(list: BalanceView[]): void;
  onPositions?(list: PositionView[]): void;
  onFail?(error: GatewayError): void;
}

/** How an `AccountState` gets its snapshot and reports its end; creds live in `fetchSnapshot`. */
export interface AccountStateOptions {
  /** The signed snapshot (`/fapi/v3/balance` + `/fapi/v3/positionRisk`), creds bound in. */
  fetchSnapshot(): Promise<AccountSnapshot>;
  logger: Logger;
  clock?: StreamClock;
  /** Called once when the state fails for good (the owner forgets it, remembers rejections). */
  onFailed?(error: unknown): void;
}

/**
 * The live balances and positions of one key+secret: an `AccountBook` filled from a signed
 * snapshot and kept current from the key's `ACCOUNT_UPDATE` deltas (design.md item 6).
 *
 * Deltas that arrive while a snapshot is in flight are held back and applied on top of it:
 * each delta item is absolute, so replaying them in order after the snapshot converges on the
 * newest state whichever of the two Binance computed first. After a reconnect or a new
 * listenKey (`resync()`), the snapshot is fetched again so a caller never keeps stale state.
 */
export class AccountState {
  private readonly book = new AccountBook();
  private readonly listeners = new Set<AccountStateListener>();
  private readonly clock: StreamClock;
  private held: AccountUpdateView[] | undefined;
  private inFlight = false;
  private again = false;
  private loadedValue = false;
  private failedValue = false;
  private closed = false;
  private retryAttempt = 0;
  private cancelRetry: (() => void) | undefined;
  private readonly readyPromise: Promise<void>;
  private resolveReady!: () => void;
  private rejectReady!: (error: GatewayError) => void;

  constructor(private readonly options: AccountStateOptions) {
    this.clock = options.clock ?? systemClock;
    this.readyPromise = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.readyPromise.catch(() => undefined);
  }

  /** Resolves after the first snapshot; rejects with a client-safe error if it fails. */
  ready(): Promise<void> {
    return this.readyPromise;
  }

  get loaded(): boolean {
    return this.loadedValue;
  }

  get failed(): boolean {
    return this.failedValue;
  }

  balances(): BalanceView[] {
    return this.book.balanceList();
  }

  positions(): PositionView[] {
    return this.book.positionList();
  }

  listen(listener: AccountStateListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Fetches the snapshot (again); calls during a fetch coalesce into one more fetch. */
  resync(): void {
    if (this.closed || this.failedValue) return;
    if (this.inFlight) {
      this.again = true;
      return;
    }
    this.cancelRetry?.();
    this.cancelRetry = undefined;
    this.inFlight = true;
    this.held = [];
    this.options.fetchSnapshot().then(
      (snapshot) => {
        this.inFlight = false;
        if (this.closed || this.failedValue) return;
        const held = this.held ?? [];
        this.held = undefined;
        const change = this.book.reset(snapshot);
        for (const update of held) {
          const c = this.book.apply(update);
          change.balances ||= c.balances;
          change.positions ||= c.positions;
        }
        this.retryAttempt = 0;
        if (!this.loadedValue) {
          this.loadedValue = true;
          this.resolveReady();
          this.notify(true, true);
        } else {
          this.notify(change.balances, change.positions);
        }
        if (this.again) {
          this.again = false;
          this.resync();
        }
      },
      (err: unknown) => {
        this.inFlight = false;
        if (this.closed || this.failedValue) return;
        const held = this.held ?? [];
        this.held = undefined;
        if (!this.loadedValue || isKeyRejected(err)) {
          this.fail(err);
          return;
        }
        // keep what we have (deltas included) and try again a little later
        for (const update of held) this.applyAndNotify(update);
        const delayMs = backoffDelayMs(this.retryAttempt++, DEFAULT_BACKOFF);
        this.options.logger.warn('account snapshot failed; retrying', {
          delayMs,
          error: toClientError(err).message,
        });
        this.cancelRetry = this.clock.schedule(() => {
          this.cancelRetry = undefined;
          this.resync();
        }, delayMs);
      },
    );
  }

  /** One `ACCOUNT_UPDATE` of this account. */
  apply(update: AccountUpdateView): void {
    if (this.closed || this.failedValue) return;
    if (this.held) {
      this.held.push(update);
      return;
    }
    if (!this.loadedValue) return;
    this.applyAndNotify(update);
  }

  /** The key's stream failed: so does this state. */
  fail(err: unknown): void {
    if (this.failedValue || this.closed) return;
    this.failedValue = true;
    const error = toClientError(err);
    this.rejectReady(error);
    this.options.onFailed?.(err);
    for (const l of [...this.listeners]) l.onFail?.(error);
  }

  close(): void {
    this.closed = true;
    this.cancelRetry?.();
    this.cancelRetry = undefined;
    this.listeners.clear();
  }

  private applyAndNotify(update: AccountUpdateView): void {
    const change = this.book.apply(update);
    this.notify(change.balances, change.positions);
  }

  private notify(balances: boolean, positions: boolean): void {
    if (!balances && !positions) return;
    const b = balances ? this.book.balanceList() : undefined;
    const p = positions ? this.book.positionList() : undefined;
    for (const l of [...this.listeners]) {
      if (b) l.onBalances?.(b);
      if (p) l.onPositions?.(p);
    }
  }
}
