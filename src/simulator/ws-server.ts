import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { parseStreamName } from '../binance/streams.js';
import type { Clock, StreamPath, StreamSink } from './types.js';

/** Binance's documented limits for one stream connection (reference §2.1). */
export interface StreamServerLimits {
  /** Client messages (JSON, ping, pong) allowed per second on one connection; more closes it 1008. */
  maxMessagesPerSecond: number;
  /** Streams one connection may hold; the next SUBSCRIBE gets error 4 and a 1008 close. */
  maxStreamsPerConnection: number;
  /** Interval of the server's ping frames (Binance: 3 minutes). */
  pingIntervalMs: number;
  /** A connection that has not answered a ping with its payload by then is dropped (Binance: 10 minutes). */
  pongTimeoutMs: number;
  /** A connection is closed this long after it opened (Binance: 24 h). */
  maxConnectionLifetimeMs: number;
  /** Largest client frame accepted. */
  maxPayloadBytes: number;
}

export const DEFAULT_STREAM_LIMITS: StreamServerLimits = {
  maxMessagesPerSecond: 10,
  maxStreamsPerConnection: 1024,
  pingIntervalMs: 180_000,
  pongTimeoutMs: 600_000,
  maxConnectionLifetimeMs: 24 * 60 * 60_000,
  maxPayloadBytes: 1 << 20,
};

export interface StreamServerOptions {
  limits: StreamServerLimits;
  clock: Clock;
  /** True when the upper-case symbol is listed (any status). */
  isKnownSymbol(symbol: string): boolean;
  /** Called when a connection subscribes to a stream (replay starts on its first subscriber). */
  onSubscribe?(stream: string): void;
}

type Route = StreamPath | 'legacy';

/** One client connection and everything it owns; all its timers are cleared in `dispose()`. */
class SimConnection {
  /** Every name acknowledged, valid or not: LIST_SUBSCRIPTIONS echoes them all, as Binance does. */
  readonly names = new Set<string>();
  /** private connections: event types to deliver (`events=` query), undefined for all */
  eventFilter: Set<string> | undefined;
  combined: boolean;
  private readonly messageTimes: number[] = [];
  private pingTimer: NodeJS.Timeout | undefined;
  private pongTimer: NodeJS.Timeout | undefined;
  private lifetimeTimer: NodeJS.Timeout | undefined;
  private outstandingPing: string | undefined;
  closed = false;

  constructor(
    readonly ws: WebSocket,
    readonly route: Route,
    combined: boolean,
    readonly openedAt: number,
  ) {
    this.combined = combined;
  }

  /** Records one inbound message and tells whether the connection is now over its rate. */
  countMessage(now: number, maxPerSecond: number): boolean {
    const times = this.messageTimes;
    times.push(now);
    while (times.length > 0 && times[0]! <= now - 1000) times.shift();
    return times.length > maxPerSecond;
  }

  startTimers(
    limits: StreamServerLimits,
    isSilent: () => boolean,
    onDead: (reason: string) => void,
  ): void {
    this.pingTimer = setInterval(() => {
      if (this.outstandingPing !== undefined || isSilent()) return;
      const payload = String(Date.now());
      this.outstandingPing = payload;
      this.ws.ping(payload);
      this.pongTimer = setTimeout(() => onDead('pong timeout'), limits.pongTimeoutMs);
    }, limits.pingIntervalMs);
    this.lifetimeTimer = setTimeout(
      () => onDead('lifetime'),
      Math.min(limits.maxConnectionLifetimeMs, 2 ** 31 - 1),
    );
  }

  /** A pong counts only when it echoes the outstanding ping's payload (Binance since 2024-02-09). */
  onPong(data: Buffer): void {
    if (this.outstandingPing !== undefined && data.toString() === this.outstandingPing) {
      this.outstandingPing = undefined;
      clearTimeout(this.pongTimer);
      this.pongTimer = undefined;
    }
  }

  dispose(): void {
    this.closed = true;
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    clearTimeout(this.lifetimeTimer);
  }
}

const CONTROL_METHODS = [
  'SUBSCRIBE',
  'UNSUBSCRIBE',
  'LIST_SUBSCRIPTIONS',
  'SET_PROPERTY',
  'GET_PROPERTY',
];

/**
 * The simulator's stream endpoint: `/public`, `/market`, `/private`, each with `/ws[/<s>…]`
 * (raw frames) and `/stream?streams=…` (combined `{stream,data}`), live control messages,
 * Binance's limits, pings and lifetime. It is also the `StreamSink` producers publish into:
 * a stream reaches a connection only when it is valid on that connection's path, exactly as on
 * Binance, where a stream on the wrong path, an upper-case name or an unknown symbol is
 * acknowledged and then silent.
 */
export class StreamServer implements StreamSink {
  private readonly wss: WebSocketServer;
  private readonly subscribers = new Map<string, Set<SimConnection>>();
  private readonly connections = new Set<SimConnection>();
  private silentMode = false;
  /** counters for tests and the control endpoint */
  readonly stats = {
    connectionsOpened: 0,
    closedForRate: 0,
    closedForStreams: 0,
    closedForPong: 0,
    closedForLifetime: 0,
  };

  constructor(private readonly options: StreamServerOptions) {
    this.wss = new WebSocketServer({
      noServer: true,
      autoPong: false,
      maxPayload: options.limits.maxPayloadBytes,
      perMessageDeflate: false,
    });
  }

  /** Routes an HTTP upgrade; answers 404 for paths Binance does not serve. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://sim');
    const parsed = parseStreamUrl(url);
    if (!parsed) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, parsed));
  }

  private accept(ws: WebSocket, parsed: ParsedStreamUrl): void {
    const conn = new SimConnection(ws, parsed.route, parsed.combined, this.options.clock.now());
    conn.eventFilter = parsed.events;
    this.connections.add(conn);
    this.stats.connectionsOpened += 1;
    if (parsed.streams.length > this.options.limits.maxStreamsPerConnection) {
      ws.close(1008, 'Invalid request');
      this.stats.closedForStreams += 1;
    }
    for (const name of parsed.streams) this.addName(conn, name);
    conn.startTimers(
      this.options.limits,
      () => this.silentMode,
      (reason) => {
        if (reason === 'lifetime') {
          this.stats.closedForLifetime += 1;
          ws.close(1000, 'Connection lifetime exceeded');
          // a peer that does not answer the close handshake is cut after 5 s
          setTimeout(() => ws.terminate(), 5_000).unref();
        } else {
          this.stats.closedForPong += 1;
          ws.terminate();
        }
      },
    );
    ws.on('message', (data, isBinary) => this.onMessage(conn, data, isBinary));
    ws.on('ping', (data) => {
      if (this.tooFast(conn)) return;
      if (!this.silentMode) ws.pong(data);
    });
    ws.on('pong', (data) => {
      if (this.tooFast(conn)) return;
      conn.onPong(data);
    });
    ws.on('close', () => this.drop(conn));
    ws.on('error', () => this.drop(conn));
  }

  private tooFast(conn: SimConnection): boolean {
    if (conn.closed) return true;
    if (conn.countMessage(this.options.clock.now(), this.options.limits.maxMessagesPerSecond)) {
      this.stats.closedForRate += 1;
      conn.ws.close(1008, 'Too many requests');
      conn.dispose();
      return true;
    }
    return false;
  }

  private onMessage(conn: SimConnection, data: RawData, isBinary: boolean): void {
    if (this.tooFast(conn)) return;
    const text = isBinary ? '' : rawToString(data);
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      this.send(conn, JSON.stringify({ error: { code: 3, msg: invalidJsonMessage(text) } }));
      conn.ws.close(1008, 'Invalid JSON');
      conn.dispose();
      return;
    }
    const reply = this.control(conn, msg);
    if (reply !== undefined) this.send(conn, reply);
  }

  /** Answers one control message with Binance's response or error shape. */
  private control(conn: SimConnection, msg: unknown): string | undefined {
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      return errorReply(2, 'Invalid request: expected an object', undefined);
    }
    const m = msg as Record<string, unknown>;
    const id = m.id;
    if (!('method' in m)) return errorReply(2, 'Invalid request: missing field `method`', idOf(id));
    if (!isRequestId(id)) {
      return errorReply(2, 'Invalid request: request ID must be an unsigned integer', null);
    }
    const method = m.method;
    if (typeof method !== 'string' || !CONTROL_METHODS.includes(method)) {
      return errorReply(
        2,
        `Invalid request: unknown variant \`${String(method)}\`, expected one of \`SUBSCRIBE\`, \`UNSUBSCRIBE\`, \`LIST_SUBSCRIPTIONS\`, \`SET_PROPERTY\`, \`GET_PROPERTY\``,
        id,
      );
    }
    const params = m.params;
    switch (method) {
      case 'SUBSCRIBE':
      case 'UNSUBSCRIBE': {
        if (!Array.isArray(params) || !params.every((p) => typeof p === 'string')) {
          return errorReply(2, 'Invalid request: params must be an array of strings', id);
        }
        if (method === 'UNSUBSCRIBE') {
          for (const name of params as string[]) this.removeName(conn, name);
          return JSON.stringify({ result: null, id });
        }
        const fresh = (params as string[]).filter((n) => !conn.names.has(n));
        if (conn.names.size + fresh.length > this.options.limits.maxStreamsPerConnection) {
          this.send(conn, errorReply(4, 'Too many subscriptions', id));
          this.stats.closedForStreams += 1;
          conn.ws.close(1008, 'Invalid request');
          conn.dispose();
          return undefined;
        }
        for (const name of fresh) this.addName(conn, name);
        return JSON.stringify({ result: null, id });
      }
      case 'LIST_SUBSCRIPTIONS':
        return JSON.stringify({ result: [...conn.names], id });
      case 'SET_PROPERTY': {
        if (!Array.isArray(params) || params[0] !== 'combined') {
          return errorReply(0, 'Unknown property', id);
        }
        if (typeof params[1] !== 'boolean') {
          return errorReply(1, 'Invalid value type: expected Boolean', id);
        }
        conn.combined = params[1];
        return JSON.stringify({ result: null, id });
      }
      default: {
        if (!Array.isArray(params) || params[0] !== 'combined') {
          return errorReply(0, 'Unknown property', id);
        }
        return JSON.stringify({ result: conn.combined, id });
      }
    }
  }

  /** Acknowledged names always count; only names valid on this path receive data. */
  private addName(conn: SimConnection, name: string): void {
    conn.names.add(name);
    if (!this.deliverable(conn.route, name)) return;
    let set = this.subscribers.get(name);
    if (!set) {
      set = new Set();
      this.subscribers.set(name, set);
    }
    set.add(conn);
    this.options.onSubscribe?.(name);
  }

  private removeName(conn: SimConnection, name: string): void {
    conn.names.delete(name);
    const set = this.subscribers.get(name);
    if (!set) return;
    set.delete(conn);
    if (set.size === 0) this.subscribers.delete(name);
  }

  private deliverable(route: Route, name: string): boolean {
    if (route === 'private') return /^[A-Za-z0-9]{16,128}$/.test(name);
    const parsed = parseStreamName(name);
    if (!parsed) return false;
    // Since 2026-04-23 an unrouted connection only receives /public data.
    const path = route === 'legacy' ? 'public' : route;
    if (parsed.path !== path) return false;
    if (parsed.symbol === undefined) return true;
    return (
      parsed.symbol === parsed.symbol.toLowerCase() &&
      this.options.isKnownSymbol(parsed.symbol.toUpperCase())
    );
  }

  private drop(conn: SimConnection): void {
    conn.dispose();
    if (!this.connections.delete(conn)) return;
    for (const name of conn.names) this.removeName(conn, name);
  }

  private send(conn: SimConnection, text: string): void {
    if (conn.closed || this.silentMode || conn.ws.readyState !== conn.ws.OPEN) return;
    conn.ws.send(text);
  }

  // ---- StreamSink -------------------------------------------------------------------------

  wants(stream: string): boolean {
    return this.subscribers.has(stream);
  }

  publish(stream: string, payload: string): void {
    const set = this.subscribers.get(stream);
    if (!set || this.silentMode) return;
    let combined: string | undefined;
    let eventType: string | undefined;
    for (const conn of set) {
      if (conn.eventFilter) {
        eventType ??= /"e":"([^"]+)"/.exec(payload)?.[1] ?? '';
        if (!conn.eventFilter.has(eventType)) continue;
      }
      if (conn.combined) {
        combined ??= `{"stream":${JSON.stringify(stream)},"data":${payload}}`;
        this.send(conn, combined);
      } else {
        this.send(conn, payload);
      }
    }
  }

  // ---- faults and introspection -----------------------------------------------------------

  /** Cuts every connection at once without a close frame, like a network drop (clients see 1006). */
  dropAll(): number {
    const n = this.connections.size;
    for (const conn of [...this.connections]) {
      conn.ws.terminate();
      this.drop(conn);
    }
    return n;
  }

  /** Silent mode: no frames, no pings, no pongs; sockets stay open. */
  setSilent(silent: boolean): void {
    this.silentMode = silent;
  }

  get silent(): boolean {
    return this.silentMode;
  }

  /** Sends one malformed (truncated JSON) text frame on every open connection. */
  sendMalformed(): number {
    for (const conn of this.connections)
      this.send(conn, '{"stream":"btcusdt@aggTrade","data":{"e":');
    return this.connections.size;
  }

  /** Open connections with their path and acknowledged stream names. */
  listConnections(): { route: Route; combined: boolean; streams: string[]; openedAt: number }[] {
    return [...this.connections].map((c) => ({
      route: c.route,
      combined: c.combined,
      streams: [...c.names],
      openedAt: c.openedAt,
    }));
  }

  /** How many connections currently receive data for this stream name. */
  subscriberCount(stream: string): number {
    return this.subscribers.get(stream)?.size ?? 0;
  }

  close(): void {
    for (const conn of [...this.connections]) {
      conn.ws.close(1001, 'Server shutting down');
      conn.ws.terminate();
      this.drop(conn);
    }
    this.wss.close();
  }
}

interface ParsedStreamUrl {
  route: Route;
  combined: boolean;
  streams: string[];
  events: Set<string> | undefined;
}

/**
 * `/public|/market|/private` + `/ws`, `/ws/<a>/<b>`, `/stream?streams=a/b`; on `/private` the
 * listenKey forms `/ws/<key>`, `/ws?listenKey=<key>&events=A/B`, `/stream?listenKey=<k1>&listenKey=<k2>`.
 * The unrouted legacy `/ws` and `/stream` still connect but only ever carry `/public` data.
 */
function parseStreamUrl(url: URL): ParsedStreamUrl | undefined {
  const m = /^(?:\/(public|market|private))?\/(ws|stream)(?:\/(.*))?$/.exec(url.pathname);
  if (!m) return undefined;
  const route: Route = (m[1] as StreamPath | undefined) ?? 'legacy';
  const combined = m[2] === 'stream';
  const rest = m[3] ?? '';
  let streams: string[] = [];
  if (combined) {
    if (rest !== '') return undefined;
    const q = url.searchParams.get('streams');
    if (q) streams = q.split('/').filter(Boolean);
  } else if (rest !== '') {
    streams = rest.split('/').filter(Boolean);
  }
  let events: Set<string> | undefined;
  if (route === 'private') {
    streams.push(...url.searchParams.getAll('listenKey'));
    const ev = url.searchParams.getAll('events');
    if (ev.length > 0) events = new Set(ev.flatMap((e) => e.split('/')).filter(Boolean));
  }
  return { route, combined, streams: streams.map(decodeURIComponent), events };
}

function rawToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

/**
 * A request id the stream servers accept: an unsigned integer, or an alphanumeric string of at
 * most 36 characters (Binance's own connectors subscribe with 32 hex characters on USDⓈ-M; only
 * the options stream server is known to insist on integers).
 */
function isRequestId(id: unknown): id is number | string {
  if (typeof id === 'string') return /^[A-Za-z0-9-]{1,36}$/.test(id);
  return typeof id === 'number' && Number.isInteger(id) && id >= 0;
}

function errorReply(code: number, msg: string, id: number | string | null | undefined): string {
  return JSON.stringify(id === undefined ? { error: { code, msg } } : { error: { code, msg }, id });
}

function idOf(id: unknown): number | string | null {
  return isRequestId(id) ? id : null;
}

/** Binance's parser message: `Invalid JSON: expected value at line 1 column 1`. */
function invalidJsonMessage(text: string): string {
  const lines = text.split('\n');
  return `Invalid JSON: expected value at line ${lines.length} column ${(lines.at(-1)?.length ?? 0) + 1}`;
}
