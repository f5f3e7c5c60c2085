import { backoffDelayMs, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import {
  StateTimers,
  UpstreamConnection,
  type ConnectionState,
  type UpstreamCloseInfo,
  type UpstreamLogger,
} from './connection.js';
import { streamPath, type StreamPath } from './streams.js';

/**
 * The gateway's single owner of upstream Binance stream connections (design item 4).
 *
 * - Each Binance stream is opened once, whatever the number of listeners: leases are counted
 *   per stream name; the last release starts a linger, then the stream is UNSUBSCRIBEd.
 * - One pool per routed path (`/public`, `/market`, `/private`, reference §1.2), each
 *   connection carrying up to 1024 streams (Binance's cap since 2025-07-02; the 1025th
 *   subscription closes the whole socket with 1008).
 * - Any close or dead socket → reconnect with jittered exponential backoff, resubscribe, and
 *   `onGap('reconnect')` to every listener, because events were lost and order books must be
 *   rebuilt (reference §2.5, §5).
 * - Before Binance's 24 h cut (pitfall 7), each connection is rotated: the replacement opens
 *   and subscribes first; per stream, delivery moves to it once it has provably caught up with
 *   the old one (see `StreamManager` for the sequence filter), and only then is the old socket
 *   closed. Listeners see neither a gap nor a duplicate, and no `onGap`.
 */

/** Receives the events of one Binance stream. */
export interface StreamListener {
  /** One event payload (the `data` of the combined frame), already parsed. */
  onData(data: unknown): void;
  /**
   * Events may have been lost (`reason`: `reconnect`, or `rotation` when a rotation could not
   * prove continuity). Order books must resync (reference §5: "any reconnect means resync").
   */
  onGap?(reason: string): void;
}

/** A listener's hold on a stream. `release()` is idempotent. */
export interface Lease {
  readonly stream: string;
  release(): void;
}

export interface SubscribeOptions {
  /**
   * The name is a listenKey: route it to `/private` (user data, reference §6.2), where frames
   * are parsed with the bigint-safe parser. Market stream names never need this.
   */
  userData?: boolean;
}

/** Options of the stream manager; every field but `baseUrl` has a default in `STREAM_MANAGER_DEFAULTS`. */
export interface StreamManagerOptions {
  /** Stream base URL without a path (`wss://fstream.binance.com`); the path is appended per stream. */
  baseUrl: string;
  /** Streams per connection; Binance allows 1024 and closes the socket (1008) above it. */
  maxStreamsPerConnection?: number;
  /**
   * Client messages per second per connection, pings included. Binance closes at more than 10
   * (1008 "Too many requests", pitfall 8); 4 leaves room for pongs and clock skew.
   */
  controlMessagesPerSecond?: number;
  /** Stream names per SUBSCRIBE/UNSUBSCRIBE (Binance accepted 200 in one message, §2.1). */
  maxParamsPerMessage?: number;
  /** How long a stream with no listener stays subscribed, so a quick re-subscribe is free. */
  lingerMs?: number;
  /** A connection with no frame and no pong for this long is dead (half-open TCP, pitfall 9). */
  staleAfterMs?: number;
  /** A quiet connection is pinged this often; must be below `staleAfterMs`. */
  clientPingIntervalMs?: number;
  /** Age at which a connection is replaced; Binance cuts every connection at 24 h. */
  rotateAfterMs?: number;
  /** Longest overlap of old and new connection during a rotation before the switch is forced. */
  rotationOverlapMs?: number;
  /** Reconnect backoff (reference §2.5: 0.5 s doubling to 60 s, with jitter). */
  reconnect?: Partial<BackoffOptions>;
  logger?: UpstreamLogger;
  /** Uniform [0, 1) source for backoff jitter; injected for tests. */
  random?: () => number;
  /** Wall clock in ms; injected for tests. */
  now?: () => number;
}

/** Every default, in one visible block. */
export const STREAM_MANAGER_DEFAULTS = {
  maxStreamsPerConnection: 1024,
  controlMessagesPerSecond: 4,
  maxParamsPerMessage: 200,
  lingerMs: 3_000,
  staleAfterMs: 60_000,
  clientPingIntervalMs: 30_000,
  /** 23 h 30 min: well before Binance's 24 h cut, leaving time for retries. */
  rotateAfterMs: 23 * 60 * 60_000 + 30 * 60_000,
  rotationOverlapMs: 10_000,
  reconnect: DEFAULT_BACKOFF,
} as const;

/** Error codes of the stream manager; callers switch on `code`, never on the message. */
export type StreamManagerErrorCode = 'UNKNOWN_STREAM' | 'MANAGER_CLOSED' | 'INVALID_OPTIONS';

/**
 * A coded failure of the stream manager. `UNKNOWN_STREAM` is a programming error of the caller
 * (names must be validated before they reach Binance, which acknowledges anything, §2.4).
 */
export class StreamManagerError extends Error {
  constructor(
    readonly code: StreamManagerErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StreamManagerError';
  }
}

/** Health of one pooled connection (it keeps its `id` across reconnects and rotations). */
export interface UpstreamConnectionStatus {
  id: number;
  path: StreamPath;
  /** `reconnecting` while waiting out the backoff before the next socket. */
  state: ConnectionState | 'reconnecting';
  streams: number;
  /** Stream names; listenKeys on `/private` are masked. */
  streamNames: string[];
  /** Since the last frame of the current socket; undefined before its first frame. */
  lastFrameAgeMs: number | undefined;
  reconnects: number;
  /** When the current socket opened. */
  openedAt: number | undefined;
  /** Over every socket this connection has had. */
  malformedFrames: number;
  /** A rotation is in progress (two sockets overlap). */
  rotating: boolean;
}

export interface StreamManagerStatus {
  connections: UpstreamConnectionStatus[];
  /** Distinct streams held (with listeners or lingering). */
  streams: number;
  reconnects: number;
  rotations: number;
  /**
   * Streams opened upstream (a first lease) / closed upstream (a linger that ran out).
   * Resubscriptions after reconnects and rotations are not counted here.
   */
  upstreamSubscribes: number;
  upstreamUnsubscribes: number;
  /** SUBSCRIBE and UNSUBSCRIBE messages sent, over every socket. */
  controlMessagesSent: number;
  pingsSent: number;
}

/** Buffered events of a rotation's new socket per stream before it has caught up. */
const MAX_HANDOVER_BUFFER = 10_000;

interface ListenerRecord {
  readonly listener: StreamListener;
}

/** Last delivered sequence of one filter key, and which socket delivered it. */
interface SeqMark {
  seq: number;
  source: number;
}

/** A rotation's new socket, for one stream, before delivery has moved to it. */
interface Handover {
  key: string;
  firstSeq: number;
  buffer: { seq: number | undefined; key: string; data: unknown }[];
}

interface StreamEntry {
  readonly name: string;
  readonly slot: Slot;
  readonly listeners: Set<ListenerRecord>;
  linger: NodeJS.Timeout | undefined;
  /** Socket whose events are delivered. */
  source: number | undefined;
  /** Per filter key (the symbol on all-market streams, else ''). */
  readonly marks: Map<string, SeqMark>;
  /** Something was delivered since the last reset: the stream has traffic. */
  delivered: boolean;
  handover: Handover | undefined;
}

/** One pooled connection: a slot that outlives its sockets (reconnects, rotations). */
interface Slot {
  readonly id: number;
  readonly path: StreamPath;
  readonly streams: Set<string>;
  /** Timers of this slot: `reconnect`, `rotate`, `overlap`; all cleared in `closeSlot`. */
  readonly timers: StateTimers;
  conn: UpstreamConnection | undefined;
  rotation: { next: UpstreamConnection } | undefined;
  closing: boolean;
  /** Consecutive failed attempts; reset when a socket delivers data (reference §2.5). */
  attempt: number;
  rotationAttempt: number;
  reconnects: number;
  malformedBase: number;
}

/**
 * Shared, reference-counted Binance stream subscriptions over pooled connections.
 *
 * Every delivery passes a per-stream sequence filter: seq = `u` for `depthUpdate` and
 * `bookTicker`, `a` for `aggTrade`, otherwise `E` (the largest `E` of an array payload); on
 * all-market streams (`!bookTicker`, …) the filter is kept per symbol. An event passes when its
 * seq is above the last delivered one, or equal to it and from the same socket (two events of
 * one stream may share an `E`; a socket never repeats an event).
 *
 * Rotation uses it to switch sockets without gap or duplicate: while both sockets are open,
 * only the old one delivers; the new one's events for a stream are held until the old one has
 * delivered the new one's first event (so nothing lies between them), then delivery moves to
 * the new socket, the held events pass the filter (duplicates drop out) and the old socket's
 * later events are ignored. Once every stream with traffic has moved, the old socket is closed.
 */
export class StreamManager {
  private readonly baseUrl: string;
  private readonly cfg: Required<Omit<StreamManagerOptions, 'baseUrl' | 'logger' | 'reconnect'>>;
  private readonly backoff: BackoffOptions;
  private readonly logger: UpstreamLogger | undefined;
  private readonly entries = new Map<string, StreamEntry>();
  private readonly pools: Record<StreamPath, Slot[]> = { public: [], market: [], private: [] };
  private readonly closing = new Set<Promise<void>>();
  private nextSlotId = 1;
  private closed = false;
  private readonly counters = {
    reconnects: 0,
    rotations: 0,
    upstreamSubscribes: 0,
    upstreamUnsubscribes: 0,
    controlMessagesSent: 0,
    pingsSent: 0,
  };

  constructor(options: StreamManagerOptions) {
    const d = STREAM_MANAGER_DEFAULTS;
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.cfg = {
      maxStreamsPerConnection: options.maxStreamsPerConnection ?? d.maxStreamsPerConnection,
      controlMessagesPerSecond: options.controlMessagesPerSecond ?? d.controlMessagesPerSecond,
      maxParamsPerMessage: options.maxParamsPerMessage ?? d.maxParamsPerMessage,
      lingerMs: options.lingerMs ?? d.lingerMs,
      staleAfterMs: options.staleAfterMs ?? d.staleAfterMs,
      clientPingIntervalMs: options.clientPingIntervalMs ?? d.clientPingIntervalMs,
      rotateAfterMs: options.rotateAfterMs ?? d.rotateAfterMs,
      rotationOverlapMs: options.rotationOverlapMs ?? d.rotationOverlapMs,
      random: options.random ?? Math.random,
      now: options.now ?? Date.now,
    };
    this.backoff = { ...d.reconnect, ...options.reconnect };
    this.logger = options.logger;
    this.validate();
  }

  private validate(): void {
    const fail = (msg: string): never => {
      throw new StreamManagerError('INVALID_OPTIONS', msg);
    };
    let url: URL | undefined;
    try {
      url = new URL(this.baseUrl);
    } catch {
      fail(`baseUrl is not a URL: ${this.baseUrl}`);
    }
    if (url && url.protocol !== 'ws:' && url.protocol !== 'wss:') {
      fail(`baseUrl must be ws: or wss:, got ${url.protocol}`);
    }
    const c = this.cfg;
    const positive: [string, number][] = [
      ['maxStreamsPerConnection', c.maxStreamsPerConnection],
      ['controlMessagesPerSecond', c.controlMessagesPerSecond],
      ['maxParamsPerMessage', c.maxParamsPerMessage],
      ['staleAfterMs', c.staleAfterMs],
      ['clientPingIntervalMs', c.clientPingIntervalMs],
      ['rotateAfterMs', c.rotateAfterMs],
      ['rotationOverlapMs', c.rotationOverlapMs],
      ['reconnect.initialDelayMs', this.backoff.initialDelayMs],
      ['reconnect.maxDelayMs', this.backoff.maxDelayMs],
    ];
    for (const [name, v] of positive) {
      if (!Number.isFinite(v) || v <= 0) fail(`${name} must be a positive number, got ${v}`);
    }
    if (!(c.lingerMs >= 0)) fail(`lingerMs must be >= 0, got ${c.lingerMs}`);
    if (c.maxStreamsPerConnection > 1024) fail('maxStreamsPerConnection: Binance allows 1024');
    if (c.controlMessagesPerSecond > 9) {
      fail('controlMessagesPerSecond: Binance allows 10 client messages/s, pongs included');
    }
    if (c.clientPingIntervalMs >= c.staleAfterMs) {
      fail('clientPingIntervalMs must be below staleAfterMs, or a quiet socket looks dead');
    }
    if (!(this.backoff.jitter >= 0 && this.backoff.jitter <= 1)) {
      fail('reconnect.jitter must be within [0, 1]');
    }
  }

  // ---- leases -----------------------------------------------------------------------------

  /**
   * Holds `stream` for `listener`. The first lease of a stream subscribes upstream; later ones
   * only attach. Throws `UNKNOWN_STREAM` for a name that has no routed path (validating
   * symbols is the caller's job: Binance acknowledges unknown ones and stays silent, §2.4).
   */
  subscribe(stream: string, listener: StreamListener, options: SubscribeOptions = {}): Lease {
    if (this.closed) throw new StreamManagerError('MANAGER_CLOSED', 'stream manager is closed');
    const path = options.userData ? userDataPath(stream) : streamPath(stream);
    if (path === undefined) {
      throw new StreamManagerError('UNKNOWN_STREAM', `no routed path for stream ${stream}`);
    }
    let entry = this.entries.get(stream);
    if (entry === undefined) {
      entry = this.openStream(stream, path);
    } else if (entry.slot.path !== path) {
      throw new StreamManagerError('UNKNOWN_STREAM', `stream ${stream} is already on /${path}`);
    }
    if (entry.linger !== undefined) {
      clearTimeout(entry.linger);
      entry.linger = undefined;
    }
    const record: ListenerRecord = { listener };
    entry.listeners.add(record);
    const held = entry;
    let released = false;
    return {
      stream,
      release: () => {
        if (released) return;
        released = true;
        this.release(held, record);
      },
    };
  }

  private release(entry: StreamEntry, record: ListenerRecord): void {
    if (!entry.listeners.delete(record) || entry.listeners.size > 0 || this.closed) return;
    if (this.entries.get(entry.name) !== entry) return;
    entry.linger = setTimeout(() => {
      entry.linger = undefined;
      if (entry.listeners.size === 0) this.closeStream(entry);
    }, this.cfg.lingerMs);
  }

  private openStream(name: string, path: StreamPath): StreamEntry {
    const slot = this.slotWithRoom(path);
    const entry: StreamEntry = {
      name,
      slot,
      listeners: new Set(),
      linger: undefined,
      source: slot.conn?.id,
      marks: new Map(),
      delivered: false,
      handover: undefined,
    };
    this.entries.set(name, entry);
    slot.streams.add(name);
    this.counters.upstreamSubscribes += 1;
    slot.conn?.subscribe([name]);
    slot.rotation?.next.subscribe([name]);
    return entry;
  }

  private closeStream(entry: StreamEntry): void {
    const { slot, name } = entry;
    this.entries.delete(name);
    slot.streams.delete(name);
    this.counters.upstreamUnsubscribes += 1;
    if (slot.streams.size === 0) {
      this.closeSlot(slot, 'no streams left');
      return;
    }
    slot.conn?.unsubscribe([name]);
    slot.rotation?.next.unsubscribe([name]);
  }

  // ---- slots ------------------------------------------------------------------------------

  private slotWithRoom(path: StreamPath): Slot {
    const pool = this.pools[path];
    const found = pool.find((s) => !s.closing && s.streams.size < this.cfg.maxStreamsPerConnection);
    if (found) return found;
    const slot: Slot = {
      id: this.nextSlotId++,
      path,
      streams: new Set(),
      timers: new StateTimers(),
      conn: undefined,
      rotation: undefined,
      closing: false,
      attempt: 0,
      rotationAttempt: 0,
      reconnects: 0,
      malformedBase: 0,
    };
    pool.push(slot);
    this.attach(slot, this.connect(slot));
    return slot;
  }

  /** Makes `conn` the slot's socket: every stream of the slot is delivered from it. */
  private attach(slot: Slot, conn: UpstreamConnection): void {
    slot.conn = conn;
    for (const name of slot.streams) {
      const entry = this.entries.get(name);
      if (entry) entry.source = conn.id;
    }
  }

  private connect(slot: Slot): UpstreamConnection {
    return new UpstreamConnection({
      baseUrl: this.baseUrl,
      path: slot.path,
      streams: slot.streams,
      clientPingIntervalMs: this.cfg.clientPingIntervalMs,
      staleAfterMs: this.cfg.staleAfterMs,
      controlMessagesPerSecond: this.cfg.controlMessagesPerSecond,
      maxParamsPerMessage: this.cfg.maxParamsPerMessage,
      now: this.cfg.now,
      ...(this.logger ? { logger: this.logger } : {}),
      onData: (stream, data, conn) => this.onData(slot, conn, stream, data),
      onOpen: (conn) => this.onSocketOpen(slot, conn),
      onClose: (conn, info) => this.onSocketClose(slot, conn, info),
      onSent: (_conn, kind) => {
        if (kind === 'PING') this.counters.pingsSent += 1;
        else this.counters.controlMessagesSent += 1;
      },
    });
  }

  private closeSlot(slot: Slot, why: string): void {
    if (slot.closing) return;
    slot.closing = true;
    slot.timers.clearAll();
    const pool = this.pools[slot.path];
    const i = pool.indexOf(slot);
    if (i >= 0) pool.splice(i, 1);
    for (const conn of [slot.conn, slot.rotation?.next]) {
      if (!conn) continue;
      const done = conn.close();
      this.closing.add(done);
      void done.then(() => this.closing.delete(done));
    }
    slot.rotation = undefined;
    this.logger?.debug('upstream connection released', { slot: slot.id, path: slot.path, why });
  }

  private onSocketOpen(slot: Slot, conn: UpstreamConnection): void {
    if (conn !== slot.conn || slot.closing) return;
    this.armRotation(slot, conn);
  }

  private onSocketClose(slot: Slot, conn: UpstreamConnection, info: UpstreamCloseInfo): void {
    slot.malformedBase += conn.stats().malformedFrames;
    if (this.closed || slot.closing) return;
    if (slot.rotation?.next === conn) {
      this.abandonRotation(slot, `replacement closed (${info.failure ?? info.code})`);
      return;
    }
    if (conn !== slot.conn) return; // the old socket of a finished rotation
    const why = info.failure ?? `closed ${info.code} ${info.reason}`.trim();
    if (slot.rotation && slot.rotation.next.state === 'open') {
      // the old socket died mid-rotation (e.g. the 24 h cut came first): finish on the new one
      this.completeRotation(slot, true);
      return;
    }
    this.reconnect(slot, why, conn.openedAt !== undefined);
  }

  // ---- reconnect --------------------------------------------------------------------------

  /**
   * Reconnects after a close or a dead socket (reference §2.5): every stream's continuity is
   * broken, so every listener hears `onGap('reconnect')` (only once per outage: attempts that
   * never open add nothing), then a new socket resubscribes after the backoff.
   */
  private reconnect(slot: Slot, why: string, wasOpen: boolean): void {
    this.dropRotation(slot, false);
    slot.conn = undefined;
    slot.timers.clearAll();
    slot.reconnects += 1;
    this.counters.reconnects += 1;
    const delay = backoffDelayMs(slot.attempt, this.backoff, this.cfg.random);
    slot.attempt += 1;
    this.logger?.warn('upstream reconnecting', {
      slot: slot.id,
      path: slot.path,
      why,
      delayMs: delay,
      attempt: slot.attempt,
      streams: slot.streams.size,
    });
    for (const name of [...slot.streams]) {
      const entry = this.entries.get(name);
      if (!entry) continue;
      this.resetFilter(entry);
      entry.source = undefined;
      if (wasOpen) this.gap(entry, 'reconnect');
    }
    slot.timers.set('reconnect', delay, () => {
      if (slot.closing || this.closed) return;
      if (slot.streams.size === 0) return this.closeSlot(slot, 'no streams left');
      this.attach(slot, this.connect(slot));
    });
  }

  // ---- rotation ---------------------------------------------------------------------------

  private armRotation(slot: Slot, conn: UpstreamConnection): void {
    const age = this.cfg.now() - (conn.openedAt ?? this.cfg.now());
    slot.timers.set('rotate', this.cfg.rotateAfterMs - age, () => this.startRotation(slot));
  }

  /** Opens the replacement socket first; the old one keeps delivering meanwhile. */
  private startRotation(slot: Slot): void {
    if (slot.closing || this.closed || slot.rotation || !slot.conn) return;
    const next = this.connect(slot);
    slot.rotation = { next };
    this.logger?.info('upstream rotating', {
      slot: slot.id,
      path: slot.path,
      streams: slot.streams.size,
      old: slot.conn.id,
      next: next.id,
    });
    slot.timers.set('overlap', this.cfg.rotationOverlapMs, () => {
      if (!slot.rotation) return;
      if (slot.rotation.next.state === 'open') this.completeRotation(slot, false);
      else this.abandonRotation(slot, 'replacement did not open in time');
    });
  }

  /** Moves every remaining stream to the new socket, closes the old one. */
  private completeRotation(slot: Slot, oldDied: boolean): void {
    const rotation = slot.rotation;
    if (!rotation) return;
    const { next } = rotation;
    const old = slot.conn;
    // cleared first: the switches below must not finish this rotation a second time
    slot.rotation = undefined;
    for (const name of [...slot.streams]) {
      const entry = this.entries.get(name);
      if (!entry || entry.source === next.id) continue;
      // unproven continuity: the new socket had events we could not line up, or the old
      // socket died with events possibly in flight
      const broken = entry.handover !== undefined || (oldDied && entry.delivered);
      this.switchSource(entry, next.id, broken);
    }
    slot.rotationAttempt = 0;
    slot.timers.clear('overlap');
    slot.conn = next;
    this.counters.rotations += 1;
    this.logger?.info('upstream rotated', {
      slot: slot.id,
      path: slot.path,
      old: old?.id,
      next: next.id,
      oldDied,
    });
    if (next.state === 'open') this.armRotation(slot, next);
    if (old && !oldDied) {
      const done = old.close();
      this.closing.add(done);
      void done.then(() => this.closing.delete(done));
    }
  }

  /** The replacement failed: keep the old socket, retry the rotation after a backoff. */
  private abandonRotation(slot: Slot, why: string): void {
    if (!slot.rotation) return;
    this.dropRotation(slot, true);
    const delay = backoffDelayMs(slot.rotationAttempt, this.backoff, this.cfg.random);
    slot.rotationAttempt += 1;
    this.logger?.warn('upstream rotation abandoned', {
      slot: slot.id,
      path: slot.path,
      why,
      retryInMs: delay,
    });
    slot.timers.clear('overlap');
    slot.timers.set('rotate', delay, () => this.startRotation(slot));
  }

  /**
   * Undoes a rotation in progress. Streams already moved to the new socket lose continuity;
   * `signalGaps` is false when the caller signals every stream's gap itself.
   */
  private dropRotation(slot: Slot, signalGaps: boolean): void {
    const rotation = slot.rotation;
    if (!rotation) return;
    slot.rotation = undefined;
    const old = slot.conn;
    for (const name of slot.streams) {
      const entry = this.entries.get(name);
      if (!entry) continue;
      entry.handover = undefined;
      if (entry.source === rotation.next.id) {
        this.resetFilter(entry);
        entry.source = old?.id;
        if (signalGaps) this.gap(entry, 'reconnect');
      }
    }
    if (rotation.next.state !== 'closed') {
      const done = rotation.next.close();
      this.closing.add(done);
      void done.then(() => this.closing.delete(done));
    }
  }

  // ---- delivery ---------------------------------------------------------------------------

  private onData(slot: Slot, conn: UpstreamConnection, stream: string, data: unknown): void {
    const entry = this.entries.get(stream);
    if (!entry || entry.slot !== slot) return; // unsubscribed, frames still in flight
    slot.attempt = 0; // the connection works: the next outage starts the backoff afresh
    const seq = sequenceOf(data);
    const key = filterKey(stream, data);
    if (entry.source === conn.id) {
      this.fromSource(entry, conn.id, seq, key, data);
    } else if (slot.rotation?.next === conn) {
      this.fromReplacement(entry, conn.id, seq, key, data);
    }
  }

  /** The sequence filter; see the class comment. */
  private fromSource(
    entry: StreamEntry,
    source: number,
    seq: number | undefined,
    key: string,
    data: unknown,
  ): void {
    if (seq !== undefined) {
      const mark = entry.marks.get(key);
      if (mark && (seq < mark.seq || (seq === mark.seq && mark.source !== source))) return;
      if (mark) {
        mark.seq = seq;
        mark.source = source;
      } else {
        entry.marks.set(key, { seq, source });
      }
    }
    entry.delivered = true;
    this.emit(entry, data);
    const h = entry.handover;
    if (h && h.key === key && seq !== undefined && h.firstSeq <= seq) {
      this.switchSource(entry, entry.slot.rotation?.next.id, false);
    }
  }

  /** An event of a rotation's new socket for a stream still delivered by the old one. */
  private fromReplacement(
    entry: StreamEntry,
    source: number,
    seq: number | undefined,
    key: string,
    data: unknown,
  ): void {
    if (!entry.delivered) {
      // nothing delivered yet from the old socket: nothing to line up with
      this.switchSource(entry, source, false);
      this.fromSource(entry, source, seq, key, data);
      return;
    }
    if (seq === undefined) return; // cannot be lined up; the old socket delivers these
    let h = entry.handover;
    if (!h) {
      h = { key, firstSeq: seq, buffer: [] };
      entry.handover = h;
    }
    h.buffer.push({ seq, key, data });
    const mark = entry.marks.get(h.key);
    if (mark && mark.seq >= h.firstSeq) {
      this.switchSource(entry, source, false);
    } else if (h.buffer.length >= MAX_HANDOVER_BUFFER) {
      this.switchSource(entry, source, true);
    }
  }

  /**
   * Delivery of `entry` moves to socket `to`; held events pass the filter in order. `broken`:
   * continuity could not be proven, so listeners hear `onGap('rotation')` first.
   */
  private switchSource(entry: StreamEntry, to: number | undefined, broken: boolean): void {
    if (to === undefined) return;
    const held = entry.handover?.buffer ?? [];
    entry.handover = undefined;
    entry.source = to;
    if (broken) {
      this.resetFilter(entry);
      this.gap(entry, 'rotation');
    }
    for (const ev of held) this.fromSource(entry, to, ev.seq, ev.key, ev.data);
    this.maybeFinishRotation(entry.slot);
  }

  /** Done when every stream that has traffic is delivered by the new socket. */
  private maybeFinishRotation(slot: Slot): void {
    const rotation = slot.rotation;
    if (!rotation) return;
    for (const name of slot.streams) {
      const entry = this.entries.get(name);
      if (entry && entry.delivered && entry.source !== rotation.next.id) return;
    }
    this.completeRotation(slot, false);
  }

  private resetFilter(entry: StreamEntry): void {
    entry.marks.clear();
    entry.delivered = false;
    entry.handover = undefined;
  }

  private emit(entry: StreamEntry, data: unknown): void {
    for (const { listener } of entry.listeners) {
      try {
        listener.onData(data);
      } catch (err) {
        this.logger?.error('stream listener threw', { stream: this.logName(entry), err });
      }
    }
  }

  private gap(entry: StreamEntry, reason: string): void {
    for (const { listener } of [...entry.listeners]) {
      try {
        listener.onGap?.(reason);
      } catch (err) {
        this.logger?.error('stream listener threw on gap', { stream: this.logName(entry), err });
      }
    }
  }

  private logName(entry: StreamEntry): string {
    return entry.slot.path === 'private' ? maskListenKey(entry.name) : entry.name;
  }

  // ---- health and shutdown ----------------------------------------------------------------

  /** Upstream health as data: one row per pooled connection, plus counters. */
  status(): StreamManagerStatus {
    const now = this.cfg.now();
    const connections: UpstreamConnectionStatus[] = [];
    for (const path of ['public', 'market', 'private'] as const) {
      for (const slot of this.pools[path]) {
        const stats = slot.conn?.stats();
        const names = [...slot.streams];
        connections.push({
          id: slot.id,
          path,
          state: stats?.state ?? 'reconnecting',
          streams: names.length,
          streamNames: path === 'private' ? names.map(maskListenKey) : names,
          lastFrameAgeMs: stats?.lastFrameAt === undefined ? undefined : now - stats.lastFrameAt,
          reconnects: slot.reconnects,
          openedAt: stats?.openedAt,
          malformedFrames:
            slot.malformedBase +
            (stats?.malformedFrames ?? 0) +
            (slot.rotation?.next.stats().malformedFrames ?? 0),
          rotating: slot.rotation !== undefined,
        });
      }
    }
    return { connections, streams: this.entries.size, ...this.counters };
  }

  /** Closes every connection and clears every timer; resolves when all sockets are closed. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const entry of this.entries.values()) {
        if (entry.linger !== undefined) clearTimeout(entry.linger);
        entry.linger = undefined;
      }
      this.entries.clear();
      for (const path of ['public', 'market', 'private'] as const) {
        for (const slot of [...this.pools[path]]) this.closeSlot(slot, 'manager closed');
      }
    }
    await Promise.all([...this.closing]);
  }
}

/**
 * The sequence number the delivery filter orders a stream's events by: `u` (order-book update
 * id) for `depthUpdate` and `bookTicker`, `a` (aggregate trade id) for `aggTrade`, otherwise
 * the event time `E` (the largest `E` of an array payload such as `!markPrice@arr`).
 * Undefined when the payload carries none; such events are delivered from one socket only.
 */
export function sequenceOf(data: unknown): number | undefined {
  if (Array.isArray(data)) {
    let max: number | undefined;
    for (const item of data) {
      const e = isRecord(item) ? numeric(item.E) : undefined;
      if (e !== undefined && (max === undefined || e > max)) max = e;
    }
    return max;
  }
  if (!isRecord(data)) return undefined;
  switch (data.e) {
    case 'depthUpdate':
    case 'bookTicker':
      return numeric(data.u);
    case 'aggTrade':
      return numeric(data.a);
    default:
      return numeric(data.E);
  }
}

/** All-market streams interleave symbols with their own sequences: filter per symbol. */
function filterKey(stream: string, data: unknown): string {
  if (!stream.startsWith('!') || !isRecord(data)) return '';
  return typeof data.s === 'string' ? data.s : '';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Numbers, or the exact digit strings the bigint-safe parser leaves for huge integers. */
function numeric(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
  return undefined;
}

/** A listenKey is routed to `/private` as is; it must be a plain token (no `/`, no spaces). */
function userDataPath(name: string): StreamPath | undefined {
  return /^[A-Za-z0-9]{1,256}$/.test(name) ? 'private' : undefined;
}

function maskListenKey(key: string): string {
  return `${key.slice(0, 4)}…`;
}
