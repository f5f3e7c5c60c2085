import WebSocket, { type RawData } from 'ws';
import { parseJsonExact } from './json.js';
import type { StreamPath } from './streams.js';

/**
 * One upstream socket to Binance's combined-stream endpoint `<baseUrl>/<path>/stream`
 * (reference §1.2, §3). It knows nothing about listeners, reconnects or rotation: the stream
 * manager owns those. What it does own is everything Binance's connection rules ask of a single
 * socket (reference §2):
 *
 * - server pings are answered with their payload (`ws`' `autoPong`, kept on: Binance drops a
 *   connection that has not echoed a ping within 10 min);
 * - a client ping when the socket has been quiet for `clientPingIntervalMs`, and the socket is
 *   declared dead when nothing (data, control reply, ping or pong) has arrived for
 *   `staleAfterMs`: server pings are ~3 min apart, far too slow to notice a half-open TCP
 *   connection on their own (pitfall 9);
 * - SUBSCRIBE / UNSUBSCRIBE batched into as few messages as possible and paced under
 *   `controlMessagesPerSecond`, pings and pongs included, because Binance closes a connection
 *   with 1008 "Too many requests" above 10 client messages per second (pitfall 8);
 * - every frame parsed once, at the edge, with the bigint-safe parser on `/private` (order ids
 *   exceed 2^53, pitfall 3); a malformed frame is counted and skipped, never fatal.
 */

/** `connecting → open → closing → closed`, or `connecting → closed` when the handshake fails. */
export type ConnectionState = 'connecting' | 'open' | 'closing' | 'closed';

/** The narrow logging surface the upstream side needs (`src/log.ts`' Logger fits it). */
export interface UpstreamLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** Why and how a connection ended; handed to `onClose` exactly once. */
export interface UpstreamCloseInfo {
  /** WebSocket close code (1006 for a drop without a close frame, as after `terminate()`). */
  code: number;
  reason: string;
  /** True when `close()` was called: a planned end (rotation, no streams left, shutdown). */
  requested: boolean;
  /** Set when the connection itself gave up: `stale`, `connect timeout`, `close timeout`. */
  failure?: string;
}

export interface UpstreamConnectionOptions {
  /** Stream base URL without a path, e.g. `wss://fstream.binance.com`. */
  baseUrl: string;
  /** Routed path (reference §1.2): a stream on the wrong path is acknowledged and then silent. */
  path: StreamPath;
  /** Streams to subscribe as soon as the socket opens (batched, like any other subscribe). */
  streams?: Iterable<string>;
  /** A client ping is sent after this much quiet; it counts toward Binance's 10 msg/s. */
  clientPingIntervalMs?: number;
  /** No frame and no pong for this long: the connection is terminated as dead. */
  staleAfterMs?: number;
  /** Budget of client messages per rolling second (control + pings + pongs); Binance allows 10. */
  controlMessagesPerSecond?: number;
  /** Stream names per SUBSCRIBE / UNSUBSCRIBE message (Binance accepted 200; no documented cap). */
  maxParamsPerMessage?: number;
  /** A requested close that gets no close frame back is cut after this long. */
  closeTimeoutMs?: number;
  /** Largest inbound frame; `!markPrice@arr` frames are a few hundred kB. */
  maxPayloadBytes?: number;
  logger?: UpstreamLogger;
  /** Injected wall clock (ms). */
  now?: () => number;
  /** One data frame of a combined stream: `{"stream": name, "data": payload}`. */
  onData(stream: string, data: unknown, connection: UpstreamConnection): void;
  onOpen?(connection: UpstreamConnection): void;
  /** Called once, after the socket is closed and every timer is cleared. */
  onClose?(connection: UpstreamConnection, info: UpstreamCloseInfo): void;
  /** Called for every client message sent, for the manager's counters. */
  onSent?(connection: UpstreamConnection, kind: 'SUBSCRIBE' | 'UNSUBSCRIBE' | 'PING'): void;
}

/** Defaults of the per-socket options, in one place. */
export const DEFAULT_CONNECTION_OPTIONS = {
  clientPingIntervalMs: 30_000,
  staleAfterMs: 60_000,
  controlMessagesPerSecond: 4,
  maxParamsPerMessage: 200,
  closeTimeoutMs: 2_000,
  maxPayloadBytes: 16 * 1024 * 1024,
} as const;

/** A snapshot of one socket, for `status()` and tests. */
export interface UpstreamConnectionStats {
  id: number;
  path: StreamPath;
  state: ConnectionState;
  /** Streams this socket carries or is about to carry (subscribed or queued). */
  streams: string[];
  /** When the handshake completed (ms), undefined before. */
  openedAt: number | undefined;
  /** When the last message frame arrived (ms). */
  lastFrameAt: number | undefined;
  framesReceived: number;
  /** Frames that were not JSON or not a known shape; each was skipped. */
  malformedFrames: number;
  controlMessagesSent: number;
  pingsSent: number;
  acks: number;
  errors: number;
}

type ControlMethod = 'SUBSCRIBE' | 'UNSUBSCRIBE';

interface PendingControl {
  method: ControlMethod;
  count: number;
  sentAt: number;
}

let nextConnectionId = 1;

/**
 * Named one-shot timers owned by one state (of a socket, of a pooled connection). Whoever owns
 * it clears them all in one place when the state changes, so no timer outlives the state that
 * armed it; setting a name again replaces the previous timer of that name.
 */
export class StateTimers {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  set(name: string, delayMs: number, fn: () => void): void {
    this.clear(name);
    const t = setTimeout(
      () => {
        this.timers.delete(name);
        fn();
      },
      Math.max(0, delayMs),
    );
    this.timers.set(name, t);
  }

  has(name: string): boolean {
    return this.timers.has(name);
  }

  clear(name: string): void {
    const t = this.timers.get(name);
    if (t !== undefined) clearTimeout(t);
    this.timers.delete(name);
  }

  clearAll(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}

/**
 * Client messages sent in the last second. Binance counts every client frame, pings and pongs
 * included, per connection and closes at more than 10 per second (reference §2.1); we stay
 * at `limit` per rolling second.
 */
class SendWindow {
  private readonly times: number[] = [];

  constructor(
    private readonly limit: number,
    private readonly windowMs = 1_000,
  ) {}

  private prune(now: number): void {
    while (this.times.length > 0 && this.times[0]! <= now - this.windowMs) this.times.shift();
  }

  /** Milliseconds until one more message may be sent (0: now). */
  waitMs(now: number): number {
    this.prune(now);
    if (this.times.length < this.limit) return 0;
    return this.times[this.times.length - this.limit]! + this.windowMs - now + 1;
  }

  record(now: number): void {
    this.times.push(now);
  }
}

/** One upstream combined-stream socket; see the module comment for the rules it follows. */
export class UpstreamConnection {
  /** Unique per socket (a reconnect or a rotation gets a new one). */
  readonly id = nextConnectionId++;
  readonly path: StreamPath;
  /** Resolves once the socket is closed and every timer is cleared. */
  readonly closed: Promise<void>;

  private stateValue: ConnectionState = 'connecting';
  private readonly timers = new StateTimers();
  private readonly ws: WebSocket;
  private readonly opts: Required<
    Pick<
      UpstreamConnectionOptions,
      | 'clientPingIntervalMs'
      | 'staleAfterMs'
      | 'controlMessagesPerSecond'
      | 'maxParamsPerMessage'
      | 'closeTimeoutMs'
    >
  >;
  private readonly logger: UpstreamLogger | undefined;
  private readonly now: () => number;
  private readonly window: SendWindow;
  private readonly parse: (text: string) => unknown;

  /** Streams wanted on this socket. */
  private readonly wanted = new Set<string>();
  /** Streams the server has been told about (a SUBSCRIBE sent and not undone). */
  private readonly sent = new Set<string>();
  /** Names whose wanted/sent difference has not been sent yet. */
  private readonly dirty = new Set<string>();
  private readonly pending = new Map<number, PendingControl>();
  private nextRequestId = 1;

  private openedAtValue: number | undefined;
  private lastFrameAtValue: number | undefined;
  private lastActivityAt: number;
  private framesReceived = 0;
  private malformedFrames = 0;
  private controlMessagesSent = 0;
  private pingsSent = 0;
  private acks = 0;
  private errors = 0;
  private closeRequested = false;
  private failure: string | undefined;
  private resolveClosed!: () => void;

  constructor(private readonly options: UpstreamConnectionOptions) {
    this.path = options.path;
    this.opts = {
      clientPingIntervalMs:
        options.clientPingIntervalMs ?? DEFAULT_CONNECTION_OPTIONS.clientPingIntervalMs,
      staleAfterMs: options.staleAfterMs ?? DEFAULT_CONNECTION_OPTIONS.staleAfterMs,
      controlMessagesPerSecond:
        options.controlMessagesPerSecond ?? DEFAULT_CONNECTION_OPTIONS.controlMessagesPerSecond,
      maxParamsPerMessage:
        options.maxParamsPerMessage ?? DEFAULT_CONNECTION_OPTIONS.maxParamsPerMessage,
      closeTimeoutMs: options.closeTimeoutMs ?? DEFAULT_CONNECTION_OPTIONS.closeTimeoutMs,
    };
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    this.window = new SendWindow(this.opts.controlMessagesPerSecond);
    this.parse = options.path === 'private' ? parseJsonExact : (text) => JSON.parse(text);
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.lastActivityAt = this.now();
    for (const name of options.streams ?? []) this.want(name);

    const url = `${options.baseUrl.replace(/\/+$/, '')}/${options.path}/stream`;
    this.ws = new WebSocket(url, {
      perMessageDeflate: false,
      maxPayload: options.maxPayloadBytes ?? DEFAULT_CONNECTION_OPTIONS.maxPayloadBytes,
      // autoPong stays on: Binance wants each ping's payload echoed (reference §2.1).
      autoPong: true,
    });
    this.ws.on('open', () => this.onOpen());
    this.ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    this.ws.on('ping', () => {
      // the automatic pong is a client message too: count it against the budget
      this.window.record(this.now());
      this.lastActivityAt = this.now();
    });
    this.ws.on('pong', () => (this.lastActivityAt = this.now()));
    this.ws.on('error', (err) => this.logger?.debug('upstream socket error', this.fields({ err })));
    this.ws.on('close', (code, reason) => this.onSocketClose(code, reason.toString()));
    // the handshake is bounded like silence is: a server that never answers is dead too
    this.enter('connecting');
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  /** Names this socket carries or will carry. */
  get streamNames(): ReadonlySet<string> {
    return this.wanted;
  }

  get openedAt(): number | undefined {
    return this.openedAtValue;
  }

  stats(): UpstreamConnectionStats {
    return {
      id: this.id,
      path: this.path,
      state: this.stateValue,
      streams: [...this.wanted],
      openedAt: this.openedAtValue,
      lastFrameAt: this.lastFrameAtValue,
      framesReceived: this.framesReceived,
      malformedFrames: this.malformedFrames,
      controlMessagesSent: this.controlMessagesSent,
      pingsSent: this.pingsSent,
      acks: this.acks,
      errors: this.errors,
    };
  }

  /** Queues a SUBSCRIBE for names not yet carried; sent batched with any others pending. */
  subscribe(names: Iterable<string>): void {
    if (this.stateValue === 'closing' || this.stateValue === 'closed') return;
    for (const name of names) this.want(name);
    this.scheduleFlush();
  }

  /** Queues an UNSUBSCRIBE; a name subscribed and unsubscribed before the flush sends nothing. */
  unsubscribe(names: Iterable<string>): void {
    if (this.stateValue === 'closing' || this.stateValue === 'closed') return;
    for (const name of names) {
      if (!this.wanted.delete(name)) continue;
      this.dirty.add(name);
    }
    this.scheduleFlush();
  }

  /** Closes with 1000 (cut after `closeTimeoutMs` if the server does not answer). */
  close(): Promise<void> {
    this.closeRequested = true;
    if (this.stateValue === 'connecting') {
      this.enter('closing');
      this.ws.terminate();
    } else if (this.stateValue === 'open') {
      this.enter('closing');
      this.timers.set('close', this.opts.closeTimeoutMs, () => {
        this.failure = 'close timeout';
        this.ws.terminate();
      });
      this.ws.close(1000, 'client closing');
    }
    return this.closed;
  }

  /** Drops the socket at once, without a close handshake, and reports `failure`. */
  terminate(failure: string): void {
    if (this.stateValue === 'closing' || this.stateValue === 'closed') return;
    this.failure = failure;
    this.enter('closing');
    this.ws.terminate();
  }

  // ---- state ------------------------------------------------------------------------------

  /** The one place where state changes and where timers are cleared and re-armed. */
  private enter(state: ConnectionState): void {
    this.stateValue = state;
    this.timers.clearAll();
    switch (state) {
      case 'connecting':
        this.timers.set('connect', this.opts.staleAfterMs, () => this.terminate('connect timeout'));
        break;
      case 'open':
        this.armStaleCheck();
        this.armPing();
        this.scheduleFlush();
        break;
      case 'closing':
      case 'closed':
        break;
    }
  }

  private onOpen(): void {
    if (this.stateValue !== 'connecting') return;
    const now = this.now();
    this.openedAtValue = now;
    this.lastActivityAt = now;
    this.enter('open');
    this.logger?.debug('upstream connected', this.fields({ streams: this.wanted.size }));
    this.options.onOpen?.(this);
  }

  private onSocketClose(code: number, reason: string): void {
    if (this.stateValue === 'closed') return;
    this.enter('closed');
    this.pending.clear();
    this.dirty.clear();
    this.sent.clear();
    const info: UpstreamCloseInfo = { code, reason, requested: this.closeRequested };
    if (this.failure !== undefined) info.failure = this.failure;
    const level = this.closeRequested ? 'debug' : 'warn';
    this.logger?.[level]('upstream closed', this.fields({ code, reason, failure: this.failure }));
    this.resolveClosed();
    this.options.onClose?.(this, info);
  }

  // ---- liveness ---------------------------------------------------------------------------

  /** Fires `staleAfterMs` after the last sign of life; re-arms itself while there is life. */
  private armStaleCheck(): void {
    const wait = this.lastActivityAt + this.opts.staleAfterMs - this.now();
    this.timers.set('stale', wait, () => {
      if (this.now() - this.lastActivityAt >= this.opts.staleAfterMs) {
        this.terminate('stale');
      } else {
        this.armStaleCheck();
      }
    });
  }

  /**
   * Pings only a quiet socket: a data frame proves liveness as well as a pong, and every ping
   * costs one of the 10 messages per second Binance allows.
   */
  private armPing(): void {
    const wait = this.lastActivityAt + this.opts.clientPingIntervalMs - this.now();
    this.timers.set('ping', wait, () => {
      const now = this.now();
      if (now - this.lastActivityAt < this.opts.clientPingIntervalMs) return this.armPing();
      const delay = this.window.waitMs(now);
      if (delay > 0) {
        this.timers.set('ping', delay, () => this.sendPing());
        return;
      }
      this.sendPing();
    });
  }

  private sendPing(): void {
    if (this.stateValue !== 'open') return;
    const now = this.now();
    this.window.record(now);
    this.pingsSent += 1;
    this.ws.ping();
    this.options.onSent?.(this, 'PING');
    // next ping one interval later unless frames arrive meanwhile
    this.timers.set('ping', this.opts.clientPingIntervalMs, () => this.armPing());
  }

  // ---- control messages -------------------------------------------------------------------

  private want(name: string): void {
    if (this.wanted.has(name)) return;
    this.wanted.add(name);
    this.dirty.add(name);
  }

  /** Defers the flush to the next turn so that names added together leave in one message. */
  private scheduleFlush(): void {
    if (this.stateValue !== 'open' || this.dirty.size === 0 || this.timers.has('flush')) return;
    this.timers.set('flush', 0, () => this.flush());
  }

  private flush(): void {
    while (this.stateValue === 'open') {
      const wait = this.window.waitMs(this.now());
      if (wait > 0) {
        if (this.dirty.size > 0) this.timers.set('flush', wait, () => this.flush());
        return;
      }
      const message = this.nextControlMessage();
      if (!message) return;
      this.sendControl(message.method, message.params);
    }
  }

  /** UNSUBSCRIBE first (frees room under the 1024 cap), then SUBSCRIBE, ≤ maxParams names each. */
  private nextControlMessage(): { method: ControlMethod; params: string[] } | undefined {
    const max = this.opts.maxParamsPerMessage;
    const unsubscribe: string[] = [];
    const subscribe: string[] = [];
    for (const name of this.dirty) {
      const want = this.wanted.has(name);
      const told = this.sent.has(name);
      if (want === told) {
        this.dirty.delete(name);
      } else if (!want && unsubscribe.length < max) {
        unsubscribe.push(name);
      } else if (want && subscribe.length < max) {
        subscribe.push(name);
      }
    }
    const [method, params] =
      unsubscribe.length > 0
        ? (['UNSUBSCRIBE', unsubscribe] as const)
        : (['SUBSCRIBE', subscribe] as const);
    if (params.length === 0) return undefined;
    for (const name of params) {
      this.dirty.delete(name);
      if (method === 'SUBSCRIBE') this.sent.add(name);
      else this.sent.delete(name);
    }
    return { method, params };
  }

  private sendControl(method: ControlMethod, params: string[]): void {
    const id = this.nextRequestId++;
    const now = this.now();
    this.window.record(now);
    this.pending.set(id, { method, count: params.length, sentAt: now });
    this.ws.send(JSON.stringify({ method, params, id }));
    this.controlMessagesSent += 1;
    this.logger?.debug('upstream control sent', this.fields({ method, id, ...this.names(params) }));
    this.options.onSent?.(this, method);
  }

  // ---- inbound ----------------------------------------------------------------------------

  private onMessage(data: RawData, isBinary: boolean): void {
    const now = this.now();
    this.lastActivityAt = now;
    this.lastFrameAtValue = now;
    this.framesReceived += 1;
    let frame: unknown;
    try {
      frame = isBinary ? undefined : this.parse(rawToString(data));
    } catch {
      frame = undefined;
    }
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
      return this.malformed(isBinary ? 'binary frame' : 'not a JSON object');
    }
    const f = frame as Record<string, unknown>;
    if (typeof f.stream === 'string' && 'data' in f) {
      this.options.onData(f.stream, f.data, this);
      return;
    }
    if ('id' in f || 'result' in f || 'error' in f) return this.onControlReply(f);
    this.malformed('unknown frame shape');
  }

  private malformed(why: string): void {
    this.malformedFrames += 1;
    this.logger?.warn(
      'upstream malformed frame skipped',
      this.fields({ why, malformedFrames: this.malformedFrames }),
    );
  }

  /** `{"result":null,"id":n}` or `{"error":{"code":c,"msg":m},"id":n}` (reference §2.2, §2.3). */
  private onControlReply(f: Record<string, unknown>): void {
    const id = typeof f.id === 'number' ? f.id : undefined;
    const request = id === undefined ? undefined : this.pending.get(id);
    if (id !== undefined) this.pending.delete(id);
    const context = {
      id,
      method: request?.method,
      streams: request?.count,
      latencyMs: request ? this.now() - request.sentAt : undefined,
    };
    if (f.error !== undefined && f.error !== null) {
      this.errors += 1;
      const err = f.error as { code?: unknown; msg?: unknown };
      this.logger?.warn(
        'upstream control error',
        this.fields({ ...context, code: err.code, msg: err.msg }),
      );
      return;
    }
    this.acks += 1;
    this.logger?.debug('upstream control ack', this.fields(context));
  }

  // ---- helpers ----------------------------------------------------------------------------

  private fields(extra: Record<string, unknown>): Record<string, unknown> {
    return { connection: this.id, path: this.path, ...extra };
  }

  /** Stream names for a log line; on `/private` the names are listenKeys, so only a count. */
  private names(params: string[]): Record<string, unknown> {
    return this.path === 'private'
      ? { count: params.length }
      : { count: params.length, streams: params.length <= 10 ? params : params.slice(0, 10) };
  }
}

function rawToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}
