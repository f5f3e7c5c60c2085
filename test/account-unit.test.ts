import { describe, expect, it } from 'vitest';
import {
  AccountBook,
  isZeroDecimal,
  parseBalanceSnapshot,
  parsePositionSnapshot,
  type AccountSnapshot,
} from '../src/account/account-book.js';
import { AccountState } from '../src/account/account-state.js';
import { readUserEvent, toAccountEventView, type UserEvent } from '../src/account/events.js';
import type {
  UserSocket,
  UserSocketFactory,
  UserSocketHandlers,
} from '../src/account/user-socket.js';
import {
  UserStream,
  type ListenKeyApi,
  type StreamClock,
  type UserStreamOptions,
} from '../src/account/user-stream.js';
import { parseJsonExact } from '../src/binance/json.js';
import { BinanceRestError } from '../src/binance/rest.js';
import type { GatewayError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import type { AccountUpdateView, BalanceView, PositionView } from '../src/schema/context.js';

// ---- fakes ----------------------------------------------------------------------------------

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Manual time: timers run only when the test advances the clock. */
class FakeClock implements StreamClock {
  private t = 1_000_000;
  private timers: { at: number; seq: number; fn: () => void; cancelled: boolean }[] = [];
  private seq = 0;

  now(): number {
    return this.t;
  }

  schedule(fn: () => void, delayMs: number): () => void {
    const timer = { at: this.t + Math.max(0, delayMs), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }

  pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /** Runs every timer due within `ms`, in order, letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await flush();
    for (;;) {
      this.timers = this.timers.filter((t) => !t.cancelled);
      const due = this.timers
        .filter((t) => t.at <= end)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers.splice(this.timers.indexOf(due), 1);
      this.t = due.at;
      due.fn();
      await flush();
    }
    this.t = end;
    await flush();
  }
}

const gone = (): BinanceRestError =>
  new BinanceRestError('UPSTREAM_UNAVAILABLE', 'listenKey gone', 400, -1125, undefined);
const unreachable = (): BinanceRestError =>
  new BinanceRestError('UPSTREAM_UNAVAILABLE', 'unreachable', undefined, undefined, undefined);
const rejected = (): BinanceRestError =>
  new BinanceRestError('INVALID_API_KEY', 'rejected', 401, -2015, undefined);

/** Binance's listenKey endpoints for one account: one active key at a time. */
class FakeListenKeys implements ListenKeyApi {
  posts = 0;
  puts = 0;
  active: string | undefined;
  issued = 0;
  /** when set, every PUT fails with it */
  putError: (() => Error) | undefined;
  postError: (() => Error) | undefined;

  create(): Promise<string> {
    this.posts += 1;
    if (this.postError) return Promise.reject(this.postError());
    this.active ??= `listenKey${++this.issued}`;
    return Promise.resolve(this.active);
  }

  keepalive(): Promise<string | undefined> {
    this.puts += 1;
    if (this.putError) return Promise.reject(this.putError());
    if (this.active === undefined) return Promise.reject(gone());
    return Promise.resolve(this.active);
  }
}

class FakeSocket implements UserSocket {
  closed = false;
  opened = false;

  constructor(
    readonly key: string,
    private readonly handlers: UserSocketHandlers,
  ) {}

  open(): void {
    this.opened = true;
    this.handlers.onOpen();
  }

  emit(body: Record<string, unknown>): void {
    const ev = readUserEvent(body);
    if (!ev) throw new Error('not an event');
    this.handlers.onEvent(ev);
  }

  /** The server side drops the connection. */
  drop(): void {
    if (this.closed) return;
    this.closed = true;
    this.handlers.onClose({ code: 1006, reason: '' });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    queueMicrotask(() => this.handlers.onClose({ code: 1000, reason: '' }));
  }
}

class FakeSockets {
  readonly all: FakeSocket[] = [];
  autoOpen = true;

  readonly factory: UserSocketFactory = (key, handlers) => {
    const s = new FakeSocket(key, handlers);
    this.all.push(s);
    if (this.autoOpen) queueMicrotask(() => !s.closed && s.open());
    return s;
  };

  open(): FakeSocket[] {
    return this.all.filter((s) => s.opened && !s.closed);
  }

  last(): FakeSocket {
    const s = this.all.at(-1);
    if (!s) throw new Error('no socket');
    return s;
  }
}

interface Rig {
  clock: FakeClock;
  api: FakeListenKeys;
  sockets: FakeSockets;
  stream: UserStream;
  events: UserEvent[];
  resyncs: number;
  failures: GatewayError[];
}

const KEEPALIVE = 30 * 60_000;

async function rig(options: Partial<UserStreamOptions> = {}): Promise<Rig> {
  const clock = new FakeClock();
  const api = new FakeListenKeys();
  const sockets = new FakeSockets();
  const stream = new UserStream({
    keyHash: 'abc',
    api,
    connect: sockets.factory,
    logger: silentLogger,
    clock,
    random: () => 0.5,
    keepaliveMs: KEEPALIVE,
    ...options,
  });
  const r: Rig = { clock, api, sockets, stream, events: [], resyncs: 0, failures: [] };
  stream.listen({
    onEvent: (e) => r.events.push(e),
    onResync: () => (r.resyncs += 1),
    onFail: (e) => r.failures.push(e),
  });
  stream.start();
  await flush();
  await stream.ready();
  return r;
}

let eventTime = 1_700_000_000_000;
const orderEvent = (id: string, status = 'NEW'): Record<string, unknown> =>
  parseJsonExact(
    `{"e":"ORDER_TRADE_UPDATE","E":${++eventTime},"T":${eventTime},"o":{"s":"BTCUSDT","c":"c1","S":"BUY","o":"MARKET","f":"GTC","q":"0.010","p":"0","ap":"0","sp":"0","x":"NEW","X":"${status}","i":${id},"l":"0","z":"0","L":"0","N":"USDT","n":"0","T":${eventTime},"t":0,"rp":"0"}}`,
  ) as Record<string, unknown>;

// ---- the delta reducer ------------------------------------------------------------------------

const bal = (asset: string, wb: string, cw = wb): BalanceView => ({
  asset,
  walletBalance: wb,
  crossWalletBalance: cw,
});
const pos = (
  symbol: string,
  positionSide: PositionView['positionSide'],
  positionAmount: string,
  entryPrice = '100',
  unrealizedProfit = '0',
): PositionView => ({ symbol, positionSide, positionAmount, entryPrice, unrealizedProfit });
const delta = (
  balances: BalanceView[],
  positions: PositionView[] = [],
): Pick<AccountUpdateView, 'balances' | 'positions'> => ({ balances, positions });

describe('AccountBook (balance/position delta reducer)', () => {
  it('starts from a snapshot and applies only what a delta carries', () => {
    const book = new AccountBook();
    book.reset({
      balances: [bal('USDT', '100'), bal('BNB', '2')],
      positions: [pos('BTCUSDT', 'BOTH', '0.5')],
    });
    const change = book.apply(delta([bal('USDT', '99.5', '99.4')]));
    expect(change).toEqual({ balances: true, positions: false });
    expect(book.balanceList()).toEqual([bal('BNB', '2'), bal('USDT', '99.5', '99.4')]);
    expect(book.positionList()).toEqual([pos('BTCUSDT', 'BOTH', '0.5')]);
  });

  it('keys positions by (symbol, positionSide) so hedge-mode LONG and SHORT coexist', () => {
    const book = new AccountBook();
    book.reset({ balances: [], positions: [] });
    book.apply(delta([], [pos('BTCUSDT', 'LONG', '1'), pos('BTCUSDT', 'SHORT', '-2')]));
    book.apply(delta([], [pos('BTCUSDT', 'LONG', '1.5', '101')]));
    expect(book.positionList()).toEqual([
      pos('BTCUSDT', 'LONG', '1.5', '101'),
      pos('BTCUSDT', 'SHORT', '-2'),
    ]);
  });

  it('removes a position whose amount becomes zero and a balance that becomes zero', () => {
    const book = new AccountBook();
    book.reset({ balances: [bal('USDT', '5'), bal('BNB', '1')], positions: [] });
    book.apply(delta([], [pos('ETHUSDT', 'BOTH', '-3')]));
    const change = book.apply(
      delta([bal('BNB', '0.00000000')], [pos('ETHUSDT', 'BOTH', '0.000', '0')]),
    );
    expect(change).toEqual({ balances: true, positions: true });
    expect(book.balanceList()).toEqual([bal('USDT', '5')]);
    expect(book.positionList()).toEqual([]);
    // removing what is not there, or repeating a value, is no change
    expect(book.apply(delta([bal('BNB', '0'), bal('USDT', '5')]))).toEqual({
      balances: false,
      positions: false,
    });
  });

  it('tells whether a new snapshot differs from what it had', () => {
    const book = new AccountBook();
    const snap: AccountSnapshot = { balances: [bal('USDT', '5')], positions: [] };
    expect(book.reset(snap)).toEqual({ balances: true, positions: false });
    expect(book.reset(snap)).toEqual({ balances: false, positions: false });
    expect(
      book.reset({ balances: [bal('USDT', '5')], positions: [pos('X', 'BOTH', '1')] }),
    ).toEqual({ balances: false, positions: true });
  });

  it('reads the signed snapshots, keeping non-zero balances and open positions only', () => {
    expect(
      parseBalanceSnapshot([
        { asset: 'USDT', balance: '10.5', crossWalletBalance: '10.4', availableBalance: '1' },
        { asset: 'BNB', balance: '0.00000000', crossWalletBalance: '0' },
      ]),
    ).toEqual([bal('USDT', '10.5', '10.4')]);
    expect(
      parsePositionSnapshot([
        {
          symbol: 'BTCUSDT',
          positionSide: 'BOTH',
          positionAmt: '-0.010',
          entryPrice: '60000.1',
          unRealizedProfit: '-1.5',
        },
        {
          symbol: 'ETHUSDT',
          positionSide: 'BOTH',
          positionAmt: '0.000',
          entryPrice: '0',
          unRealizedProfit: '0',
        },
      ]),
    ).toEqual([pos('BTCUSDT', 'BOTH', '-0.010', '60000.1', '-1.5')]);
    expect(isZeroDecimal('-0.000')).toBe(true);
    expect(isZeroDecimal('0.00000001')).toBe(false);
    expect(() => parseBalanceSnapshot({ code: -1 })).toThrow();
  });
});

describe('AccountState (snapshot + deltas)', () => {
  it('applies deltas that arrive during the snapshot on top of it, and publishes changes', async () => {
    let answer: (s: AccountSnapshot) => void = () => undefined;
    const state = new AccountState({
      fetchSnapshot: () => new Promise((resolve) => (answer = resolve)),
      logger: silentLogger,
    });
    const published: BalanceView[][] = [];
    state.listen({ onBalances: (l) => published.push(l) });
    state.resync();
    const update = (b: BalanceView[], p: PositionView[] = []): AccountUpdateView => ({
      __typename: 'AccountUpdate',
      eventTime: 1,
      transactionTime: 1,
      reason: 'ORDER',
      balances: b,
      positions: p,
    });
    state.apply(update([bal('USDT', '90')], [pos('BTCUSDT', 'BOTH', '1')]));
    answer({ balances: [bal('USDT', '100')], positions: [] });
    await state.ready();
    expect(state.balances()).toEqual([bal('USDT', '90')]);
    expect(state.positions()).toEqual([pos('BTCUSDT', 'BOTH', '1')]);
    state.apply(update([bal('USDT', '80')]));
    state.apply(update([bal('USDT', '80')]));
    expect(published.at(-1)).toEqual([bal('USDT', '80')]);
    expect(published.filter((l) => l[0]?.walletBalance === '80')).toHaveLength(1);
  });

  it('fails for good when the snapshot is rejected', async () => {
    const state = new AccountState({
      fetchSnapshot: () =>
        Promise.reject(new BinanceRestError('INVALID_API_KEY', 'x', 400, -1022, undefined)),
      logger: silentLogger,
    });
    state.resync();
    await expect(state.ready()).rejects.toMatchObject({
      extensions: { code: 'INVALID_API_KEY', binanceCode: -1022 },
    });
    expect(state.failed).toBe(true);
  });
});

// ---- event mapping --------------------------------------------------------------------------

describe('user data events', () => {
  it('maps ORDER_TRADE_UPDATE with its 64-bit order id exact', () => {
    const ev = readUserEvent(orderEvent('8389765489680951453', 'NEW'))!;
    const mapped = toAccountEventView(ev);
    expect(mapped.kind).toBe('view');
    if (mapped.kind !== 'view' || mapped.view.__typename !== 'OrderUpdate') throw new Error();
    expect(mapped.view.orderId).toBe('8389765489680951453');
    expect(mapped.view.tradeId).toBe('0');
  });

  it('maps ACCOUNT_UPDATE deltas and both ACCOUNT_CONFIG_UPDATE shapes, skips the rest', () => {
    const account = readUserEvent({
      e: 'ACCOUNT_UPDATE',
      E: 5,
      T: 4,
      a: {
        m: 'FUNDING_FEE',
        B: [{ a: 'USDT', wb: '1.5', cw: '1.4', bc: '0' }],
        P: [{ s: 'BTCUSDT', pa: '-1', ep: '2', up: '3', ps: 'SHORT', mt: 'isolated' }],
      },
    })!;
    expect(toAccountEventView(account)).toEqual({
      kind: 'view',
      view: {
        __typename: 'AccountUpdate',
        eventTime: 5,
        transactionTime: 4,
        reason: 'FUNDING_FEE',
        balances: [bal('USDT', '1.5', '1.4')],
        positions: [pos('BTCUSDT', 'SHORT', '-1', '2', '3')],
      },
    });
    const leverage = toAccountEventView(
      readUserEvent({ e: 'ACCOUNT_CONFIG_UPDATE', E: 1, T: 1, ac: { s: 'ETHUSDT', l: 25 } })!,
    );
    expect(leverage).toMatchObject({
      view: { leverageChange: { symbol: 'ETHUSDT', leverage: 25 }, multiAssetsMode: null },
    });
    const multi = toAccountEventView(
      readUserEvent({ e: 'ACCOUNT_CONFIG_UPDATE', E: 1, T: 1, ai: { j: true } })!,
    );
    expect(multi).toMatchObject({ view: { leverageChange: null, multiAssetsMode: true } });
    expect(toAccountEventView(readUserEvent({ e: 'TRADE_LITE', E: 1 })!).kind).toBe('skipped');
    expect(toAccountEventView(readUserEvent({ e: 'BRAND_NEW_EVENT', E: 1 })!).kind).toBe('unknown');
    expect(toAccountEventView(readUserEvent({ e: 'ORDER_TRADE_UPDATE', E: 1 })!).kind).toBe(
      'malformed',
    );
    expect(readUserEvent({ stream: 'k', data: { e: 'X', E: 2 } })?.e).toBe('X');
    expect(readUserEvent({ result: null, id: 1 })).toBeUndefined();
  });
});

// ---- the listenKey lifecycle --------------------------------------------------------------

describe('UserStream (listenKey lifecycle)', () => {
  it('starts with one POST and one socket, then PUTs every keepaliveMs', async () => {
    const r = await rig();
    expect(r.api.posts).toBe(1);
    expect(r.sockets.all.map((s) => s.key)).toEqual(['listenKey1']);
    expect(r.stream.state).toBe('live');
    await r.clock.advance(KEEPALIVE - 1);
    expect(r.api.puts).toBe(0);
    await r.clock.advance(1);
    expect(r.api.puts).toBe(1);
    await r.clock.advance(KEEPALIVE);
    await r.clock.advance(KEEPALIVE);
    expect(r.api.puts).toBe(3);
    expect(r.api.posts).toBe(1);
    expect(r.sockets.all).toHaveLength(1);
  });

  it('obtains exactly one new key when a PUT answers -1125, then asks for a resync', async () => {
    const r = await rig();
    r.api.active = undefined; // another program deleted it
    await r.clock.advance(KEEPALIVE);
    expect(r.api.posts).toBe(2);
    expect(r.stream.status().listenKeyRenewals).toBe(1);
    expect(r.sockets.open().map((s) => s.key)).toEqual(['listenKey2']);
    expect(r.sockets.all[0]!.closed).toBe(true);
    expect(r.resyncs).toBe(1);
    expect(r.stream.state).toBe('live');
    // the new key is kept alive like the first
    await r.clock.advance(KEEPALIVE);
    expect(r.api.posts).toBe(2);
    expect(r.api.puts).toBe(2);
  });

  it('obtains exactly one new key when listenKeyExpired arrives twice in a row', async () => {
    const r = await rig();
    const old = r.sockets.last();
    r.api.active = undefined;
    old.emit({ e: 'listenKeyExpired', E: 1, listenKey: 'listenKey1' });
    old.emit({ e: 'listenKeyExpired', E: 1, listenKey: 'listenKey1' });
    await r.clock.advance(0);
    // a late echo after the switch, and a keepalive due meanwhile, change nothing
    old.emit({ e: 'listenKeyExpired', E: 2, listenKey: 'listenKey1' });
    await r.clock.advance(KEEPALIVE);
    expect(r.api.posts).toBe(2);
    expect(r.stream.status().listenKeyRenewals).toBe(1);
    expect(r.sockets.open().map((s) => s.key)).toEqual(['listenKey2']);
    expect(r.resyncs).toBe(1);
    expect(r.events).toEqual([]); // listenKeyExpired is handled, not passed on
  });

  it('does not renew twice when the expiry event and a -1125 keepalive race', async () => {
    const r = await rig();
    r.api.active = undefined;
    await r.clock.advance(KEEPALIVE - 1);
    r.sockets.last().emit({ e: 'listenKeyExpired', E: 1, listenKey: 'listenKey1' });
    await r.clock.advance(1);
    expect(r.api.posts).toBe(2);
    expect(r.stream.status().listenKeyRenewals).toBe(1);
  });

  it('obtains one new key after repeated keepalive failures, and keeps a key that still lives', async () => {
    const r = await rig({ keepaliveRetryMs: 60_000, maxKeepaliveFailures: 3 });
    r.api.putError = unreachable;
    await r.clock.advance(KEEPALIVE);
    await r.clock.advance(60_000);
    expect(r.api.posts).toBe(1);
    await r.clock.advance(60_000); // third failure
    expect(r.api.posts).toBe(2);
    // the POST returned the same live key: the socket stays, nothing was renewed
    expect(r.stream.status().listenKeyRenewals).toBe(0);
    expect(r.sockets.all).toHaveLength(1);

    // now the key is gone as well: three more failures give one new key and one new socket
    r.api.active = undefined;
    await r.clock.advance(KEEPALIVE);
    await r.clock.advance(60_000);
    await r.clock.advance(60_000);
    expect(r.api.posts).toBe(3);
    expect(r.stream.status().listenKeyRenewals).toBe(1);
    expect(r.sockets.open().map((s) => s.key)).toEqual(['listenKey2']);
  });

  it('reconnects a dropped socket after a backoff, checking the key with a PUT first', async () => {
    const r = await rig();
    r.sockets.last().drop();
    expect(r.stream.state).toBe('reconnecting');
    await r.clock.advance(100);
    expect(r.sockets.all).toHaveLength(1); // backoff: 0.5 s with jitter, at least 250 ms
    await r.clock.advance(1_000);
    expect(r.api.puts).toBe(1);
    expect(r.api.posts).toBe(1);
    expect(r.sockets.open().map((s) => s.key)).toEqual(['listenKey1']);
    expect(r.stream.status().reconnects).toBe(1);
    expect(r.resyncs).toBe(1);
  });

  it('gets a new key when the key died while the socket was down', async () => {
    const r = await rig();
    r.api.active = undefined;
    r.sockets.last().drop();
    await r.clock.advance(1_000);
    expect(r.api.posts).toBe(2);
    expect(r.sockets.open().map((s) => s.key)).toEqual(['listenKey2']);
    expect(r.resyncs).toBe(1);
  });

  it('rotates before the 24 h cut: new socket first, each event delivered once', async () => {
    const r = await rig({ rotateAfterMs: 10_000, rotationOverlapMs: 1_000 });
    const first = r.sockets.last();
    first.emit(orderEvent('1'));
    await r.clock.advance(10_000);
    const second = r.sockets.last();
    expect(second).not.toBe(first);
    expect(second.key).toBe('listenKey1');
    expect(first.closed).toBe(false); // overlap: both open
    const a = orderEvent('2');
    const b = orderEvent('3');
    first.emit(a);
    second.emit(a);
    second.emit(b);
    first.emit(b);
    await r.clock.advance(1_000);
    expect(first.closed).toBe(true);
    const c = orderEvent('4');
    second.emit(c);
    expect(r.events.map((e) => String((e.body.o as { i: unknown }).i))).toEqual([
      '1',
      '2',
      '3',
      '4',
    ]);
    expect(r.stream.status().rotations).toBe(1);
    expect(r.resyncs).toBe(0);
    expect(r.api.posts).toBe(1);
  });

  it('does not merge two distinct events of the same millisecond on one socket', async () => {
    const r = await rig({ rotateAfterMs: 10_000, rotationOverlapMs: 1_000 });
    await r.clock.advance(10_000); // dedupe table active
    const s = r.sockets.last();
    const upd = { e: 'ACCOUNT_UPDATE', E: 9, T: 9, a: { m: 'ORDER', B: [], P: [] } };
    s.emit(upd);
    s.emit(upd);
    expect(r.events).toHaveLength(2);
  });

  it('fails for good when Binance rejects the key on a keepalive', async () => {
    const r = await rig();
    r.api.putError = rejected;
    await r.clock.advance(KEEPALIVE);
    expect(r.stream.state).toBe('failed');
    expect(r.failures.map((e) => e.extensions.code)).toEqual(['INVALID_API_KEY']);
    expect(r.sockets.open()).toEqual([]);
    expect(r.clock.pending()).toBe(0);
  });

  it('rejects ready() when the first POST fails, with a client-safe error', async () => {
    const clock = new FakeClock();
    const api = new FakeListenKeys();
    api.postError = rejected;
    const stream = new UserStream({
      keyHash: 'abc',
      api,
      connect: new FakeSockets().factory,
      logger: silentLogger,
      clock,
    });
    stream.start();
    await expect(stream.ready()).rejects.toMatchObject({
      extensions: { code: 'INVALID_API_KEY' },
    });
    expect(stream.state).toBe('failed');
  });

  it('close() stops every timer and socket', async () => {
    const r = await rig();
    r.stream.close();
    await flush();
    expect(r.clock.pending()).toBe(0);
    expect(r.sockets.open()).toEqual([]);
    await r.clock.advance(KEEPALIVE * 3);
    expect(r.api.puts).toBe(0);
  });
});
