import { backoffDelayMs, DEFAULT_BACKOFF, type BackoffOptions } from '../binance/backoff.js';
import { upstreamUnavailable, type GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import { isKeyRejected, isListenKeyMissing, toClientError } from './errors.js';
import { eventIdentity, type UserEvent } from './events.js';
import type { UserSocket, UserSocketFactory } from './user-socket.js';

/**
 * The listenKey lifecycle of one API key (reference §6.1, §6.2, pitfalls 5–7), as an explicit
 * state machine with injected REST calls, socket factory and clock, so its tests need neither
 * sockets nor real waiting:
 *
 * ```
 * idle ─start→ starting ─open→ live ─(expired | -1125 | keepalive failing)→ renewing ─open→ live
 *                                  └─(socket closed or dead)→ reconnecting ─open→ live
 * any ─(key rejected)→ failed          any ─close()→ closed
 * ```
 *
 * - one POST on start; a PUT every `keepaliveMs` (well inside the 60 min validity);
 * - a new key is obtained exactly once per incident: `-1125` from a PUT, `listenKeyExpired`
 *   (Binance may send it twice in a row), or `maxKeepaliveFailures` failed PUTs in a row.
 *   Renewal is single-flight, and an answer about a key that is no longer current is ignored;
 * - a lost socket is reconnected after a jittered backoff; the key is first checked with a PUT
 *   (a handshake with a dead key succeeds and then stays silent, reference §6.2);
 * - after a reconnect or a new key, listeners get `onResync`: events in the gap may be lost,
 *   so state derived from them must be reconciled from REST;
 * - before the 24 h cut the connection is rotated: the new socket opens before the old one
 *   closes, and events both carry during the overlap are delivered once;
 * - the key is NEVER deleted: other programs of the same user share it (pitfall 6).
 */

/** See the diagram in the module comment. */
export type UserStreamState =
  'idle' | 'starting' | 'live' | 'renewing' | 'reconnecting' | 'failed' | 'closed';

/** The two USER_STREAM calls the lifecycle needs; the API key is bound in by the owner. */
export interface ListenKeyApi {
  /** `POST /fapi/v1/listenKey`: the active key (the same one while it lives) or a new one. */
  create(): Promise<string>;
  /** `PUT /fapi/v1/listenKey`: extends the key; resolves with the key Binance reports, if any. */
  keepalive(): Promise<string | undefined>;
}

/** Injected time: a wall clock and one-shot timers that return their own cancel function. */
export interface StreamClock {
  now(): number;
  schedule(fn: () => void, delayMs: number): () => void;
}

/** Real time. */
export const systemClock: StreamClock = {
  now: () => Date.now(),
  schedule(fn, delayMs) {
    const t = setTimeout(fn, Math.max(0, delayMs));
    return () => clearTimeout(t);
  },
};

/** What a stream tells the parts built on it. */
export interface UserStreamListener {
  /** One user-data event, in order, each once (listenKeyExpired is handled here, not passed). */
  onEvent?(event: UserEvent): void;
  /** A reconnect or a new key happened: events may have been lost; reconcile from REST. */
  onResync?(): void;
  /** The stream is over for good (Binance rejected the key); a client-safe error. */
  onFail?(error: GatewayError): void;
}

/**
 * What one stream needs: the key's USER_STREAM calls, a socket factory and a clock (all
 * injected, so the lifecycle is tested without sockets), plus its timings.
 */
export interface UserStreamOptions {
  /** A short hash of the API key, for log lines only. */
  keyHash: string;
  api: ListenKeyApi;
  connect: UserSocketFactory;
  logger: Logger;
  clock?: StreamClock;
  /** Uniform random numbers in [0, 1) for the backoff jitter. */
  random?: () => number;
  /** PUT interval; Binance keys live 60 min after the last PUT. */
  keepaliveMs?: number;
  /** After a failed PUT (not -1125), the next one comes this soon. */
  keepaliveRetryMs?: number;
  /** Failed PUTs in a row after which one new key is obtained. */
  maxKeepaliveFailures?: number;
  /** A connection is replaced this long after it opened (Binance cuts at 24 h). */
  rotateAfterMs?: number;
  /** How long the old and the new connection overlap during a rotation. */
  rotationOverlapMs?: number;
  backoff?: BackoffOptions;
}

/** Defaults, in one place. */
export const DEFAULT_USER_STREAM_OPTIONS = {
  keepaliveMs: 30 * 60_000,
  keepaliveRetryMs: 60_000,
  maxKeepaliveFailures: 3,
  rotateAfterMs: 23 * 60 * 60_000 + 30 * 60_000,
  rotationOverlapMs: 2_000,
} as const;

/** Counters for `status()`; no credential and no listenKey in here. */
export interface UserStreamStatus {
  state: UserStreamState;
  /** keys obtained after the first one (expiry, -1125, failing keepalive) */
  listenKeyRenewals: number;
  /** sockets reopened after a loss */
  reconnects: number;
  /** planned replacements before the 24 h cut */
  rotations: number;
  /** when the last event was delivered (ms), undefined before the first */
  lastEventAt: number | undefined;
}

type ConnectReason = 'start' | 'renew' | 'reconnect' | 'rotate';

/** One socket and the key it listens on. */
interface Slot {
  id: number;
  key: string;
  why: ConnectReason;
  socket: UserSocket | undefined;
  open: boolean;
}

/** Named one-shot timers of one stream, all cleared in one place. */
class NamedTimers {
  private readonly cancels = new Map<string, () => void>();

  constructor(private readonly clock: StreamClock) {}

  set(name: string, delayMs: number, fn: () => void): void {
    this.clear(name);
    const cancel = this.clock.schedule(() => {
      this.cancels.delete(name);
      fn();
    }, delayMs);
    this.cancels.set(name, cancel);
  }

  has(name: string): boolean {
    return this.cancels.has(name);
  }

  clear(name: string): void {
    this.cancels.get(name)?.();
    this.cancels.delete(name);
  }

  clearAll(): void {
    for (const cancel of this.cancels.values()) cancel();
    this.cancels.clear();
  }
}

/** The user data stream of one API key, shared by every subscription of that key. */
export class UserStream {
  private stateValue: UserStreamState = 'idle';
  private listenKey: string | undefined;
  private current: Slot | undefined;
  private pending: Slot | undefined;
  private readonly retiring = new Set<Slot>();
  private readonly listeners = new Set<UserStreamListener>();
  private readonly timers: NamedTimers;
  private readonly clock: StreamClock;
  private readonly random: () => number;
  private readonly opts: { [K in keyof typeof DEFAULT_USER_STREAM_OPTIONS]: number };
  private readonly backoff: BackoffOptions;
  private readonly logger: Logger;
  /** a POST is in flight or waiting to be retried: no second renewal may start */
  private renewing = false;
  private everLive = false;
  private keepaliveFailures = 0;
  private reconnectAttempt = 0;
  private nextSlotId = 1;
  private renewals = 0;
  private reconnects = 0;
  private rotations = 0;
  private lastEventAt: number | undefined;
  /** per event identity, copies seen per socket; only while two sockets share a key */
  private dedupe: Map<string, Map<number, number>> | undefined;
  private readonly readyPromise: Promise<void>;
  private resolveReady!: () => void;
  private rejectReady!: (error: GatewayError) => void;

  constructor(private readonly options: UserStreamOptions) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.timers = new NamedTimers(this.clock);
    this.logger = options.logger;
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    const d = DEFAULT_USER_STREAM_OPTIONS;
    this.opts = {
      keepaliveMs: options.keepaliveMs ?? d.keepaliveMs,
      keepaliveRetryMs: options.keepaliveRetryMs ?? d.keepaliveRetryMs,
      maxKeepaliveFailures: options.maxKeepaliveFailures ?? d.maxKeepaliveFailures,
      rotateAfterMs: options.rotateAfterMs ?? d.rotateAfterMs,
      rotationOverlapMs: options.rotationOverlapMs ?? d.rotationOverlapMs,
    };
    this.readyPromise = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // a stream nobody awaited must not report an unhandled rejection
    this.readyPromise.catch(() => undefined);
  }

  get state(): UserStreamState {
    return this.stateValue;
  }

  /** True once failed or closed: such a stream is never reused. */
  get over(): boolean {
    return this.stateValue === 'failed' || this.stateValue === 'closed';
  }

  /** Resolves when the first socket is open; rejects (client-safe error) if the start fails. */
  ready(): Promise<void> {
    return this.readyPromise;
  }

  /** Adds a listener; the returned function removes it (idempotent). */
  listen(listener: UserStreamListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  status(): UserStreamStatus {
    return {
      state: this.stateValue,
      listenKeyRenewals: this.renewals,
      reconnects: this.reconnects,
      rotations: this.rotations,
      lastEventAt: this.lastEventAt,
    };
  }

  /** First POST, then the first socket. */
  start(): void {
    if (this.stateValue !== 'idle') return;
    this.setState('starting');
    this.obtainKey('start');
  }

  /** Stops keepalives, timers and sockets. The listenKey is left alone (never DELETEd). */
  close(): void {
    if (this.stateValue === 'closed') return;
    this.setState('closed');
    this.shutdown();
    this.rejectReady(upstreamUnavailable('The account stream was closed.'));
  }

  // ---- keys ---------------------------------------------------------------------------------

  private obtainKey(why: 'start' | 'renew'): void {
    this.renewing = true;
    this.timers.clear('keepalive');
    const previous = this.listenKey;
    this.options.api.create().then(
      (key) => {
        if (this.over) return;
        this.renewing = false;
        this.keepaliveFailures = 0;
        this.armKeepalive();
        if (why === 'renew' && key === previous && this.current?.open) {
          // a POST on a live key returns that key: the socket we have is still the right one
          this.setState('live');
          return;
        }
        if (why === 'renew' && key !== previous) {
          this.renewals += 1;
          this.logger.info('listenKey renewed', { renewals: this.renewals });
        }
        this.listenKey = key;
        this.connect(key, why === 'start' ? 'start' : 'renew');
      },
      (err: unknown) => {
        if (this.over) return;
        if (isKeyRejected(err) || why === 'start') {
          this.fail(err);
          return;
        }
        const delayMs = backoffDelayMs(this.reconnectAttempt++, this.backoff, this.random);
        this.logger.warn('listenKey request failed; retrying', {
          delayMs,
          error: toClientError(err).message,
        });
        this.timers.set('renew', delayMs, () => this.obtainKey('renew'));
      },
    );
  }

  /** One new key for one incident; a second trigger while the first is handled is ignored. */
  private renew(reason: string): void {
    if (this.renewing || this.over) return;
    this.logger.info('listenKey renewal', { reason });
    this.setState('renewing');
    this.obtainKey('renew');
  }

  private armKeepalive(delayMs: number = this.opts.keepaliveMs): void {
    this.timers.set('keepalive', delayMs, () => this.keepalive());
  }

  private keepalive(): void {
    if (this.over || this.renewing) return;
    const key = this.listenKey;
    this.options.api.keepalive().then(
      (returned) => {
        if (this.over || this.renewing || this.listenKey !== key) return;
        this.keepaliveFailures = 0;
        this.armKeepalive();
        if (returned !== undefined && returned !== key) this.adoptKey(returned);
      },
      (err: unknown) => {
        if (this.over || this.renewing || this.listenKey !== key) return;
        if (isKeyRejected(err)) return this.fail(err);
        if (isListenKeyMissing(err)) return this.renew('keepalive answered -1125');
        this.keepaliveFailures += 1;
        this.logger.warn('listenKey keepalive failed', { failures: this.keepaliveFailures });
        if (this.keepaliveFailures >= this.opts.maxKeepaliveFailures) {
          this.keepaliveFailures = 0;
          return this.renew('keepalive failing');
        }
        this.armKeepalive(Math.min(this.opts.keepaliveMs, this.opts.keepaliveRetryMs));
      },
    );
  }

  /** A PUT answered with another key than ours: that one is the live key now. */
  private adoptKey(key: string): void {
    this.renewals += 1;
    this.listenKey = key;
    this.logger.info('listenKey replaced by Binance', { renewals: this.renewals });
    this.connect(key, 'renew');
  }

  // ---- sockets ------------------------------------------------------------------------------

  private connect(key: string, why: ConnectReason): void {
    if (this.pending) {
      const abandoned = this.pending;
      this.pending = undefined;
      abandoned.socket?.close();
    }
    const slot: Slot = { id: this.nextSlotId++, key, why, socket: undefined, open: false };
    this.pending = slot;
    try {
      slot.socket = this.options.connect(key, {
        onOpen: () => this.onSlotOpen(slot),
        onEvent: (event) => this.onSlotEvent(slot, event),
        onClose: (info) => this.onSlotClose(slot, info),
      });
    } catch (err) {
      this.pending = undefined;
      this.logger.warn('user data socket could not be created', {
        error: err instanceof Error ? err.message.split(key).join('<listenKey>') : String(err),
      });
      this.scheduleReconnect();
    }
  }

  private onSlotOpen(slot: Slot): void {
    if (this.over || slot !== this.pending) {
      slot.socket?.close();
      return;
    }
    this.pending = undefined;
    slot.open = true;
    const old = this.current;
    this.current = slot;
    this.reconnectAttempt = 0;
    if (!this.renewing) this.setState('live');
    this.timers.set('rotate', this.opts.rotateAfterMs, () => this.rotate());
    if (old) this.retire(old, slot);
    this.logger.info('user data stream connected', { reason: slot.why });
    if (!this.everLive) {
      this.everLive = true;
      this.resolveReady();
      return;
    }
    if (slot.why === 'rotate') return;
    if (slot.why === 'reconnect') this.reconnects += 1;
    for (const l of [...this.listeners]) l.onResync?.();
  }

  /** The old socket of a rotation stays open for the overlap; one of a dead key closes now. */
  private retire(old: Slot, next: Slot): void {
    if (old.key !== next.key || !old.open) {
      old.socket?.close();
      return;
    }
    this.retiring.add(old);
    this.dedupe ??= new Map();
    this.timers.clear('dedupe-end');
    this.timers.set(`retire:${old.id}`, this.opts.rotationOverlapMs, () => old.socket?.close());
  }

  private onSlotEvent(slot: Slot, event: UserEvent): void {
    if (this.over || (slot !== this.current && !this.retiring.has(slot))) return;
    if (event.e === 'listenKeyExpired') {
      this.onExpired(slot, event);
      return;
    }
    if (this.dedupe && !this.firstCopy(slot, event)) return;
    this.lastEventAt = this.clock.now();
    for (const l of [...this.listeners]) l.onEvent?.(event);
  }

  private onExpired(slot: Slot, event: UserEvent): void {
    const expired = typeof event.body.listenKey === 'string' ? event.body.listenKey : slot.key;
    // an echo about a key we already replaced, or the second event of a doubled pair
    if (expired !== this.listenKey || slot.key !== this.listenKey || this.renewing) return;
    this.renew('listenKeyExpired');
  }

  /**
   * During a rotation both sockets carry the same events: deliver each one as many times as
   * the socket that has seen it most often has, i.e. exactly once for each real event.
   */
  private firstCopy(slot: Slot, event: UserEvent): boolean {
    const dedupe = (this.dedupe ??= new Map());
    const identity = eventIdentity(event);
    let counts = dedupe.get(identity);
    if (!counts) {
      counts = new Map();
      dedupe.set(identity, counts);
    }
    const mine = (counts.get(slot.id) ?? 0) + 1;
    counts.set(slot.id, mine);
    let others = 0;
    for (const [id, n] of counts) if (id !== slot.id && n > others) others = n;
    return mine > others;
  }

  private onSlotClose(slot: Slot, info: { code: number; reason: string }): void {
    this.timers.clear(`retire:${slot.id}`);
    if (this.retiring.delete(slot)) {
      // late copies from the new socket may still be on their way: keep the table a while
      if (this.retiring.size === 0) {
        this.timers.set('dedupe-end', this.opts.rotationOverlapMs, () => {
          this.dedupe = undefined;
        });
      }
      return;
    }
    if (this.over) return;
    if (slot === this.pending) {
      this.pending = undefined;
      this.logger.warn('user data socket failed to open', { code: info.code, reason: slot.why });
      if (slot.why === 'rotate' && this.current?.open) {
        this.timers.set('rotate', backoffDelayMs(0, this.backoff, this.random), () =>
          this.rotate(),
        );
        return;
      }
      this.scheduleReconnect();
      return;
    }
    if (slot === this.current) {
      this.current = undefined;
      this.logger.warn('user data socket closed', { code: info.code, reason: info.reason });
      if (this.pending || this.renewing) return;
      this.scheduleReconnect();
    }
  }

  private scheduleReconnect(): void {
    if (this.over || this.timers.has('reconnect')) return;
    if (!this.renewing) this.setState(this.everLive ? 'reconnecting' : 'starting');
    const delayMs = backoffDelayMs(this.reconnectAttempt++, this.backoff, this.random);
    this.logger.info('user data stream reconnecting', { delayMs, attempt: this.reconnectAttempt });
    this.timers.set('reconnect', delayMs, () => this.reconnectNow());
  }

  /** A PUT first: connecting to a dead key would "succeed" and then stay silent. */
  private reconnectNow(): void {
    if (this.over || this.renewing) return;
    const key = this.listenKey;
    this.options.api.keepalive().then(
      (returned) => {
        if (this.over || this.renewing || this.listenKey !== key || key === undefined) return;
        this.keepaliveFailures = 0;
        this.armKeepalive();
        if (returned !== undefined && returned !== key) return this.adoptKey(returned);
        if (this.current?.open || this.pending) return;
        this.connect(key, 'reconnect');
      },
      (err: unknown) => {
        if (this.over || this.renewing || this.listenKey !== key) return;
        if (isKeyRejected(err)) return this.fail(err);
        if (isListenKeyMissing(err)) return this.renew('listenKey gone while disconnected');
        this.scheduleReconnect();
      },
    );
  }

  private rotate(): void {
    if (this.over) return;
    const key = this.listenKey;
    if (this.renewing || this.pending || !this.current?.open || key === undefined) {
      this.timers.set('rotate', this.opts.rotationOverlapMs, () => this.rotate());
      return;
    }
    this.rotations += 1;
    this.logger.info('user data stream rotating before the 24 h cut', {
      rotations: this.rotations,
    });
    this.connect(key, 'rotate');
  }

  // ---- endings ------------------------------------------------------------------------------

  private fail(err: unknown): void {
    if (this.over) return;
    const error = toClientError(err);
    this.logger.warn('user data stream failed', { code: error.extensions.code });
    this.setState('failed');
    this.shutdown();
    this.rejectReady(error);
    for (const l of [...this.listeners]) l.onFail?.(error);
  }

  private shutdown(): void {
    this.timers.clearAll();
    const slots = [this.current, this.pending, ...this.retiring];
    this.current = undefined;
    this.pending = undefined;
    this.retiring.clear();
    this.dedupe = undefined;
    for (const s of slots) s?.socket?.close();
  }

  private setState(state: UserStreamState): void {
    if (this.stateValue === state) return;
    this.logger.debug('user data stream state', { from: this.stateValue, to: state });
    this.stateValue = state;
  }
}
