import { createHash } from 'node:crypto';
import type { BinanceRest, Credentials } from '../binance/rest.js';
import { GatewayError, unauthenticated, upstreamUnavailable } from '../errors.js';
import type { Hub, SubscribeOptions, TopicSource } from '../hub/hub.js';
import type { Logger } from '../log.js';
import type {
  AccountApi,
  AccountEventView,
  BalanceView,
  OrderUpdateView,
  PositionView,
} from '../schema/context.js';
import {
  parseBalanceSnapshot,
  parsePositionSnapshot,
  type AccountSnapshot,
} from './account-book.js';
import { AccountState } from './account-state.js';
import { AccountDataError, isKeyRejected, isSignatureRejected, toClientError } from './errors.js';
import { toAccountEventView } from './events.js';
import { wsUserSocketFactory, type UserSocketFactory } from './user-socket.js';
import {
  systemClock,
  UserStream,
  type ListenKeyApi,
  type StreamClock,
  type UserStreamState,
} from './user-stream.js';

/** Options of the account side; the optional ones default to `DEFAULT_ACCOUNT_SERVICE_OPTIONS`. */
export interface AccountServiceOptions {
  rest: BinanceRest;
  /** Stream base URL without a path; `/private/ws?listenKey=…` is appended. */
  streamUrl: string;
  hub: Hub;
  logger: Logger;
  /** listenKey PUT interval (Binance keys live 60 min after the last PUT). */
  keepaliveMs?: number;
  /** A user stream (and an account state) stays up this long after its last subscription. */
  streamLingerMs?: number;
  /** A key Binance rejected is refused without asking Binance again for this long. */
  rejectionTtlMs?: number;
  /** A subscription that cannot get its stream up (or its first snapshot) within this fails. */
  readyTimeoutMs?: number;
  /** Per-subscriber queue length; account data is never dropped, a slower reader is ended. */
  queueCapacity?: number;
  /** Replace the user-data connection this long after it opened (Binance cuts at 24 h). */
  rotateAfterMs?: number;
  /** A user-data socket silent this long (no frame, no pong) is replaced. */
  staleAfterMs?: number;
  clientPingIntervalMs?: number;
  /** Tests: another socket implementation. */
  socketFactory?: UserSocketFactory;
  /** Tests: injected time. */
  clock?: StreamClock;
}

/** Defaults, in one place. */
export const DEFAULT_ACCOUNT_SERVICE_OPTIONS = {
  keepaliveMs: 30 * 60_000,
  streamLingerMs: 1_000,
  rejectionTtlMs: 60_000,
  readyTimeoutMs: 10_000,
  queueCapacity: 10_000,
} as const;

/** One user data stream in `status()`: counters only, never a credential or listenKey. */
export interface AccountStreamStatus {
  /** first 12 hex digits of sha256(apiKey) */
  keyHash: string;
  state: UserStreamState;
  listenKeyRenewals: number;
  reconnects: number;
  /** live subscriptions on this key's topics (events, balances, positions) */
  subscribers: number;
  /** ms since the last event, null before the first */
  lastEventAgeMs: number | null;
}

/** sha256 hex of a credential: the only form in which one appears in topics, logs and status. */
export function credentialHash(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\n')).digest('hex');
}

/** Something that receives the mapped events of one key. */
interface StreamSink {
  onView?(view: AccountEventView): void;
  onResync?(): void;
  onFail?(error: GatewayError): void;
}

interface StreamEntry {
  keyHash: string;
  stream: UserStream;
  sinks: Set<StreamSink>;
  unlisten: () => void;
}

interface StateEntry {
  state: AccountState;
  dispose: () => void;
}

interface Lease<T> {
  value: T;
  /** idempotent */
  release(): void;
}

/**
 * Reference-counted values with a lazy close (graphql-ws client `lazyCloseTimeout`): the last
 * release starts a linger, and the value is disposed only if nobody comes back. A value that
 * can no longer be used (a failed stream) is replaced on the next lease, and the old one is
 * still disposed when its own last lease goes.
 */
class LeaseRegistry<T> {
  private readonly current = new Map<string, Slot<T>>();
  private readonly all = new Set<Slot<T>>();
  private closed = false;

  constructor(
    private readonly lingerMs: number,
    private readonly clock: StreamClock,
    private readonly dispose: (value: T) => void,
  ) {}

  lease(key: string, create: () => T, usable: (value: T) => boolean): Lease<T> {
    if (this.closed) throw upstreamUnavailable('The gateway is shutting down.');
    let slot = this.current.get(key);
    if (slot && !usable(slot.value)) {
      this.current.delete(key);
      slot = undefined;
    }
    if (!slot) {
      slot = { key, value: create(), refs: 0, cancelLinger: undefined };
      this.current.set(key, slot);
      this.all.add(slot);
    }
    const s = slot;
    s.refs += 1;
    s.cancelLinger?.();
    s.cancelLinger = undefined;
    let released = false;
    return {
      value: s.value,
      release: () => {
        if (released || this.closed) return;
        released = true;
        s.refs -= 1;
        if (s.refs > 0) return;
        s.cancelLinger = this.clock.schedule(() => {
          s.cancelLinger = undefined;
          if (s.refs > 0 || this.closed) return;
          this.drop(s);
        }, this.lingerMs);
      },
    };
  }

  /** Forgets the value under `key` (if it is still this one) so the next lease makes a new one. */
  forget(key: string, value: T): void {
    if (this.current.get(key)?.value === value) this.current.delete(key);
  }

  entries(): [string, T][] {
    return [...this.current.values()].map((s) => [s.key, s.value]);
  }

  closeAll(): void {
    this.closed = true;
    for (const s of [...this.all]) {
      s.cancelLinger?.();
      this.drop(s);
    }
  }

  private drop(s: Slot<T>): void {
    if (!this.all.delete(s)) return;
    if (this.current.get(s.key) === s) this.current.delete(s.key);
    this.dispose(s.value);
  }
}

interface Slot<T> {
  key: string;
  value: T;
  refs: number;
  cancelLinger: (() => void) | undefined;
}

/**
 * An iterator over another that keeps only some values. An explicit class, not an async
 * generator: its `return()` reaches the inner lease even while a `next()` is pending
 * (stack-notes trap 3).
 */
class FilteredIterator<T, U extends T> implements AsyncIterableIterator<U> {
  constructor(
    private readonly inner: AsyncIterableIterator<T>,
    private readonly keep: (value: T) => value is U,
  ) {}

  async next(): Promise<IteratorResult<U>> {
    for (;;) {
      const r = await this.inner.next();
      if (r.done) return { value: undefined, done: true };
      if (this.keep(r.value)) return { value: r.value, done: false };
    }
  }

  async return(): Promise<IteratorResult<U>> {
    await this.inner.return?.();
    return { value: undefined, done: true };
  }

  async throw(error?: unknown): Promise<IteratorResult<U>> {
    await this.inner.return?.();
    throw error instanceof Error ? error : new Error(String(error));
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<U> {
    return this;
  }
}

/**
 * Per-caller account data (issue 4). Each distinct API key gets one `UserStream` (one
 * listenKey, one `/private` connection) shared by every subscription of that key on every
 * connection and transport; each key+secret gets one `AccountState` (signed snapshot + deltas).
 * Subscriptions are hub leases on `account:<sha256(key)>` topics with the `disconnect` policy:
 * account data is never dropped.
 *
 * Credentials live in memory only, inside closures of the stream and state they serve. They
 * appear nowhere else: topics, logs and `status()` carry sha256 hashes, and every error a
 * caller sees is a fixed text (`toClientError`). Keys Binance rejects are remembered (by hash)
 * for `rejectionTtlMs`, so a client retrying a bad key cannot make the gateway hammer Binance.
 */
export class AccountService implements AccountApi {
  private readonly rest: BinanceRest;
  private readonly hub: Hub;
  private readonly logger: Logger;
  private readonly clock: StreamClock;
  private readonly connect: UserSocketFactory;
  private readonly opts: { [K in keyof typeof DEFAULT_ACCOUNT_SERVICE_OPTIONS]: number };
  private readonly subscribeOptions: SubscribeOptions;
  private readonly streams: LeaseRegistry<StreamEntry>;
  private readonly states: LeaseRegistry<StateEntry>;
  /** hash → until when, and the error to answer meanwhile */
  private readonly rejected = new Map<string, { until: number; error: GatewayError }>();
  private readonly unknownTypesSeen = new Set<string>();

  constructor(readonly options: AccountServiceOptions) {
    this.rest = options.rest;
    this.hub = options.hub;
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
    const d = DEFAULT_ACCOUNT_SERVICE_OPTIONS;
    this.opts = {
      keepaliveMs: options.keepaliveMs ?? d.keepaliveMs,
      streamLingerMs: options.streamLingerMs ?? d.streamLingerMs,
      rejectionTtlMs: options.rejectionTtlMs ?? d.rejectionTtlMs,
      readyTimeoutMs: options.readyTimeoutMs ?? d.readyTimeoutMs,
      queueCapacity: options.queueCapacity ?? d.queueCapacity,
    };
    this.subscribeOptions = { policy: 'disconnect', capacity: this.opts.queueCapacity };
    this.connect =
      options.socketFactory ??
      wsUserSocketFactory({
        streamUrl: options.streamUrl,
        logger: options.logger,
        ...(options.staleAfterMs !== undefined && { staleAfterMs: options.staleAfterMs }),
        ...(options.clientPingIntervalMs !== undefined && {
          clientPingIntervalMs: options.clientPingIntervalMs,
        }),
      });
    this.streams = new LeaseRegistry(this.opts.streamLingerMs, this.clock, (entry) => {
      entry.unlisten();
      entry.stream.close();
      this.logger.debug('user data stream released', { keyHash: entry.keyHash.slice(0, 12) });
    });
    this.states = new LeaseRegistry(this.opts.streamLingerMs, this.clock, (entry) =>
      entry.dispose(),
    );
  }

  // ---- AccountApi ---------------------------------------------------------------------------

  /** Every user-data event of the caller's account that the `AccountEvent` union carries. */
  async subscribeEvents(
    creds: Credentials | undefined,
  ): Promise<AsyncIterableIterator<AccountEventView>> {
    const apiKey = this.needKey(creds);
    const hold = await this.holdStream(apiKey);
    try {
      const keyHash = hold.value.keyHash;
      return this.hub.subscribe<AccountEventView>(
        `account:${keyHash}`,
        () => this.eventSource(apiKey),
        this.subscribeOptions,
      );
    } finally {
      hold.release();
    }
  }

  /** The caller's `ORDER_TRADE_UPDATE`s, for one symbol when given (compared upper-case). */
  async subscribeOrderUpdates(
    creds: Credentials | undefined,
    symbol: string | undefined,
  ): Promise<AsyncIterableIterator<OrderUpdateView>> {
    const events = await this.subscribeEvents(creds);
    const wanted = symbol?.trim().toUpperCase();
    return new FilteredIterator(
      events,
      (e): e is OrderUpdateView =>
        e.__typename === 'OrderUpdate' && (wanted === undefined || e.symbol === wanted),
    );
  }

  /** Non-zero balances: the full list on subscribe and after each change. */
  subscribeBalances(creds: Credentials | undefined): Promise<AsyncIterableIterator<BalanceView[]>> {
    return this.subscribeState(creds, 'balances', (s) => s.balances());
  }

  /** Open positions: the full list on subscribe and after each change. */
  subscribePositions(
    creds: Credentials | undefined,
  ): Promise<AsyncIterableIterator<PositionView[]>> {
    return this.subscribeState(creds, 'positions', (s) => s.positions());
  }

  /** One entry per API key with a user stream (lingering ones included). */
  status(): AccountStreamStatus[] {
    const byTopic = this.hub.subscribersByTopic();
    const now = this.clock.now();
    return this.streams.entries().map(([keyHash, entry]) => {
      let subscribers = 0;
      for (const [topic, n] of byTopic) {
        if (topic === `account:${keyHash}` || topic.startsWith(`account:${keyHash}:`)) {
          subscribers += n;
        }
      }
      const s = entry.stream.status();
      return {
        keyHash: keyHash.slice(0, 12),
        state: s.state,
        listenKeyRenewals: s.listenKeyRenewals,
        reconnects: s.reconnects,
        subscribers,
        lastEventAgeMs: s.lastEventAt === undefined ? null : now - s.lastEventAt,
      };
    });
  }

  /** Stops every keepalive, stream, snapshot retry and linger. No listenKey is deleted. */
  async close(): Promise<void> {
    this.states.closeAll();
    this.streams.closeAll();
    this.rejected.clear();
  }

  // ---- credentials and rejections -----------------------------------------------------------

  private needKey(creds: Credentials | undefined): string {
    if (!creds?.apiKey) {
      throw unauthenticated(
        'This field needs your Binance API key (X-MBX-APIKEY header or apiKey in connection_init).',
      );
    }
    return creds.apiKey;
  }

  private needSecret(creds: Credentials | undefined): { apiKey: string; apiSecret: string } {
    const apiKey = this.needKey(creds);
    if (!creds?.apiSecret) {
      throw unauthenticated(
        'This field needs your Binance API secret as well as the key (X-MBX-APISECRET header or apiSecret in connection_init): its first value is a signed snapshot.',
      );
    }
    return { apiKey, apiSecret: creds.apiSecret };
  }

  private throwIfRejected(hash: string): void {
    const r = this.rejected.get(hash);
    if (!r) return;
    if (r.until <= this.clock.now()) {
      this.rejected.delete(hash);
      return;
    }
    throw new AccountDataError(r.error.code, r.error.message, { ...r.error.extensions });
  }

  private remember(hash: string, err: unknown): void {
    this.rejected.set(hash, {
      until: this.clock.now() + this.opts.rejectionTtlMs,
      error: toClientError(err),
    });
    for (const [h, r] of this.rejected) if (r.until <= this.clock.now()) this.rejected.delete(h);
  }

  // ---- streams ------------------------------------------------------------------------------

  private listenKeyApi(apiKey: string): ListenKeyApi {
    const keyOf = (body: unknown): string | undefined => {
      const k = (body as { listenKey?: unknown } | null)?.listenKey;
      return typeof k === 'string' && k !== '' ? k : undefined;
    };
    return {
      create: async () => {
        const key = keyOf(await this.rest.userStream('POST', apiKey));
        if (key === undefined) throw upstreamUnavailable('Binance returned no listenKey.');
        return key;
      },
      keepalive: async () => keyOf(await this.rest.userStream('PUT', apiKey)),
    };
  }

  private leaseStream(apiKey: string): Lease<StreamEntry> {
    const keyHash = credentialHash(apiKey);
    return this.streams.lease(
      keyHash,
      () => this.createStream(apiKey, keyHash),
      (entry) => !entry.stream.over,
    );
  }

  private createStream(apiKey: string, keyHash: string): StreamEntry {
    const logger = this.logger.child({ keyHash: keyHash.slice(0, 12) });
    const stream = new UserStream({
      keyHash: keyHash.slice(0, 12),
      api: this.listenKeyApi(apiKey),
      connect: this.connect,
      logger,
      clock: this.clock,
      keepaliveMs: this.opts.keepaliveMs,
      ...(this.options.rotateAfterMs !== undefined && {
        rotateAfterMs: this.options.rotateAfterMs,
      }),
    });
    const entry: StreamEntry = { keyHash, stream, sinks: new Set(), unlisten: () => undefined };
    entry.unlisten = stream.listen({
      onEvent: (event) => {
        const mapped = toAccountEventView(event);
        switch (mapped.kind) {
          case 'view':
            for (const sink of [...entry.sinks]) sink.onView?.(mapped.view);
            return;
          case 'malformed':
            logger.warn('user data event skipped: malformed', { type: event.e, why: mapped.why });
            return;
          case 'unknown':
            if (!this.unknownTypesSeen.has(event.e)) {
              this.unknownTypesSeen.add(event.e);
              logger.debug('user data event type not carried by the schema', { type: event.e });
            }
            return;
          case 'skipped':
            return;
        }
      },
      onResync: () => {
        for (const sink of [...entry.sinks]) sink.onResync?.();
      },
      onFail: (error) => {
        if (isKeyRejected(error)) this.remember(keyHash, error);
        this.streams.forget(keyHash, entry);
        for (const sink of [...entry.sinks]) sink.onFail?.(error);
      },
    });
    stream.start();
    return entry;
  }

  /**
   * A short hold on the key's stream that lasts until it is live: a key Binance rejects fails
   * here, in the caller's own subscription, before any topic exists.
   */
  private async holdStream(apiKey: string): Promise<Lease<StreamEntry>> {
    this.throwIfRejected(credentialHash(apiKey));
    const hold = this.leaseStream(apiKey);
    try {
      await this.withTimeout(hold.value.stream.ready());
      return hold;
    } catch (err) {
      hold.release();
      throw toClientError(err);
    }
  }

  private eventSource(apiKey: string): TopicSource<AccountEventView> {
    let lease: Lease<StreamEntry> | undefined;
    let sink: StreamSink | undefined;
    return {
      start: (publish, fail) => {
        lease = this.leaseStream(apiKey);
        sink = { onView: publish, onFail: fail };
        lease.value.sinks.add(sink);
        if (lease.value.stream.over) fail(upstreamUnavailable('The account stream has ended.'));
      },
      stop: () => {
        if (sink) lease?.value.sinks.delete(sink);
        lease?.release();
      },
    };
  }

  // ---- balances and positions ---------------------------------------------------------------

  private async snapshot(creds: Credentials): Promise<AccountSnapshot> {
    const [balances, positions] = await Promise.all([
      this.rest.signed('GET', '/fapi/v3/balance', {}, creds, 5),
      this.rest.signed('GET', '/fapi/v3/positionRisk', {}, creds, 5),
    ]);
    return {
      balances: parseBalanceSnapshot(balances),
      positions: parsePositionSnapshot(positions),
    };
  }

  private leaseState(
    creds: { apiKey: string; apiSecret: string },
    stateHash: string,
  ): Lease<StateEntry> {
    return this.states.lease(
      stateHash,
      () => this.createState(creds, stateHash),
      (entry) => !entry.state.failed,
    );
  }

  private createState(creds: { apiKey: string; apiSecret: string }, stateHash: string): StateEntry {
    const streamLease = this.leaseStream(creds.apiKey);
    const keyHash = streamLease.value.keyHash;
    const logger = this.logger.child({ keyHash: keyHash.slice(0, 12) });
    let entry: StateEntry | undefined;
    const state = new AccountState({
      fetchSnapshot: () =>
        this.snapshot({ apiKey: creds.apiKey, apiSecret: creds.apiSecret }).catch(
          (err: unknown) => {
            if (!(err instanceof GatewayError)) {
              logger.warn('account snapshot unreadable', {
                error: err instanceof Error ? err.message : String(err),
              });
            }
            throw err;
          },
        ),
      logger,
      clock: this.clock,
      onFailed: (err) => {
        if (isSignatureRejected(err)) this.remember(stateHash, err);
        else if (isKeyRejected(err)) this.remember(keyHash, err);
        if (entry) this.states.forget(stateHash, entry);
      },
    });
    const sink: StreamSink = {
      onView: (view) => {
        if (view.__typename === 'AccountUpdate') state.apply(view);
      },
      onResync: () => state.resync(),
      onFail: (error) => state.fail(error),
    };
    streamLease.value.sinks.add(sink);
    entry = {
      state,
      dispose: () => {
        streamLease.value.sinks.delete(sink);
        streamLease.release();
        state.close();
      },
    };
    // the snapshot is taken once the socket is up: deltas after it are on top of it
    streamLease.value.stream.ready().then(
      () => state.resync(),
      (err: unknown) => state.fail(err),
    );
    return entry;
  }

  private async subscribeState<T extends BalanceView[] | PositionView[]>(
    creds: Credentials | undefined,
    which: 'balances' | 'positions',
    read: (state: AccountState) => T,
  ): Promise<AsyncIterableIterator<T>> {
    const c = this.needSecret(creds);
    const stateHash = credentialHash(c.apiKey, c.apiSecret);
    this.throwIfRejected(stateHash);
    const streamHold = await this.holdStream(c.apiKey);
    let stateHold: Lease<StateEntry> | undefined;
    try {
      stateHold = this.leaseState(c, stateHash);
      await this.withTimeout(stateHold.value.state.ready());
      const keyHash = streamHold.value.keyHash;
      return this.hub.subscribe<T>(
        `account:${keyHash}:${which}:${stateHash}`,
        () => this.stateSource(c, stateHash, which, read),
        this.subscribeOptions,
      );
    } catch (err) {
      throw toClientError(err);
    } finally {
      stateHold?.release();
      streamHold.release();
    }
  }

  private stateSource<T extends BalanceView[] | PositionView[]>(
    creds: { apiKey: string; apiSecret: string },
    stateHash: string,
    which: 'balances' | 'positions',
    read: (state: AccountState) => T,
  ): TopicSource<T> {
    let lease: Lease<StateEntry> | undefined;
    let unlisten: (() => void) | undefined;
    return {
      start: (publish, fail) => {
        lease = this.leaseState(creds, stateHash);
        const state = lease.value.state;
        const onList = (): void => publish(read(state));
        unlisten = state.listen(
          which === 'balances'
            ? { onBalances: onList, onFail: fail }
            : { onPositions: onList, onFail: fail },
        );
        if (state.loaded) onList();
      },
      stop: () => {
        unlisten?.();
        lease?.release();
      },
      current: () => {
        const state = lease?.value.state;
        return state?.loaded ? read(state) : undefined;
      },
    };
  }

  private withTimeout<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const cancel = this.clock.schedule(
        () =>
          reject(
            upstreamUnavailable(
              'Binance account data cannot be reached right now; try again later.',
            ),
          ),
        this.opts.readyTimeoutMs,
      );
      promise.then(
        (v) => {
          cancel();
          resolve(v);
        },
        (err: unknown) => {
          cancel();
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }
}
