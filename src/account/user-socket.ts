import WebSocket, { type RawData } from 'ws';
import { parseJsonExact } from '../binance/json.js';
import type { Logger } from '../log.js';
import { readUserEvent, type UserEvent } from './events.js';

/**
 * One `/private` connection for one listenKey (reference §6.2). The lifecycle (which key, when
 * to reconnect, rotation) belongs to `UserStream`; this class only keeps one socket honest:
 * pings answered with their payload, a client ping when quiet, declared dead when silent for
 * `staleAfterMs` (pitfall 9), every frame parsed with the bigint-safe parser (pitfall 3).
 *
 * It is separate from the market `UpstreamConnection` because a user-data socket is addressed
 * by its listenKey in the URL and carries bare events, not combined-stream frames.
 */

/** What a socket reports to its owner; `onClose` is called exactly once. */
export interface UserSocketHandlers {
  onOpen(): void;
  onEvent(event: UserEvent): void;
  onClose(info: { code: number; reason: string }): void;
}

/** The narrow handle `UserStream` keeps (tests substitute a fake). */
export interface UserSocket {
  /** Ends the socket; `onClose` still follows once. */
  close(): void;
}

/** Opens a socket for a listenKey. Injected into `UserStream` so its tests need no network. */
export type UserSocketFactory = (listenKey: string, handlers: UserSocketHandlers) => UserSocket;

/** Where the production socket connects and how it judges liveness. */
export interface WsUserSocketOptions {
  /** Stream base URL without a path, e.g. `wss://fstream.binance.com`. */
  streamUrl: string;
  logger: Logger;
  /** A client ping after this much quiet; user data can be silent for hours. */
  clientPingIntervalMs?: number;
  /** No frame and no pong for this long: the socket is terminated as dead. */
  staleAfterMs?: number;
  /** Largest inbound frame. */
  maxPayloadBytes?: number;
}

/** Defaults, in one place. */
export const DEFAULT_USER_SOCKET_OPTIONS = {
  clientPingIntervalMs: 30_000,
  staleAfterMs: 75_000,
  maxPayloadBytes: 1024 * 1024,
} as const;

/** The production factory: `<streamUrl>/private/ws?listenKey=<key>` over `ws`. */
export function wsUserSocketFactory(options: WsUserSocketOptions): UserSocketFactory {
  return (listenKey, handlers) => new WsUserSocket(listenKey, handlers, options);
}

let nextSocketId = 1;

class WsUserSocket implements UserSocket {
  private readonly id = nextSocketId++;
  private readonly ws: WebSocket;
  private readonly pingIntervalMs: number;
  private readonly staleAfterMs: number;
  private lastActivityAt = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  private ended = false;
  private malformed = 0;

  constructor(
    private readonly listenKey: string,
    private readonly handlers: UserSocketHandlers,
    private readonly options: WsUserSocketOptions,
  ) {
    this.pingIntervalMs =
      options.clientPingIntervalMs ?? DEFAULT_USER_SOCKET_OPTIONS.clientPingIntervalMs;
    this.staleAfterMs = options.staleAfterMs ?? DEFAULT_USER_SOCKET_OPTIONS.staleAfterMs;
    const base = options.streamUrl.replace(/\/+$/, '');
    this.ws = new WebSocket(`${base}/private/ws?listenKey=${encodeURIComponent(listenKey)}`, {
      perMessageDeflate: false,
      maxPayload: options.maxPayloadBytes ?? DEFAULT_USER_SOCKET_OPTIONS.maxPayloadBytes,
      handshakeTimeout: this.staleAfterMs,
      // Binance wants each ping's payload echoed (reference §2.1); `ws` does that itself.
      autoPong: true,
    });
    this.ws.on('open', () => {
      this.touch();
      this.arm();
      this.handlers.onOpen();
    });
    this.ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    this.ws.on('ping', () => this.touch());
    this.ws.on('pong', () => this.touch());
    // the URL carries the listenKey: an error text is logged only with the key cut out
    this.ws.on('error', (err) =>
      options.logger.debug('user data socket error', {
        socket: this.id,
        error: err.message.split(this.listenKey).join('<listenKey>'),
      }),
    );
    this.ws.on('close', (code, reason) => this.onClose(code, reason.toString()));
  }

  close(): void {
    if (this.ended) return;
    if (this.ws.readyState === WebSocket.OPEN) {
      this.ws.close(1000, 'client closing');
      this.closeTimer = setTimeout(() => this.ws.terminate(), 2_000);
    } else {
      this.ws.terminate();
    }
  }

  private touch(): void {
    this.lastActivityAt = Date.now();
  }

  /** One timer: ping a quiet socket, terminate a silent one. */
  private arm(): void {
    clearTimeout(this.timer);
    if (this.ended) return;
    const quietMs = Date.now() - this.lastActivityAt;
    if (quietMs >= this.staleAfterMs) {
      this.options.logger.warn('user data socket silent: terminating', { socket: this.id });
      this.ws.terminate();
      return;
    }
    if (quietMs >= this.pingIntervalMs && this.ws.readyState === WebSocket.OPEN) this.ws.ping();
    const next = Math.min(this.pingIntervalMs, this.staleAfterMs - quietMs);
    this.timer = setTimeout(() => this.arm(), Math.max(50, next));
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    this.touch();
    let event: UserEvent | undefined;
    try {
      event = isBinary ? undefined : readUserEvent(parseJsonExact(rawToString(data)));
    } catch {
      event = undefined;
    }
    if (!event) {
      this.malformed += 1;
      this.options.logger.warn('user data frame skipped: not an event', {
        socket: this.id,
        malformedFrames: this.malformed,
      });
      return;
    }
    this.handlers.onEvent(event);
  }

  private onClose(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    clearTimeout(this.closeTimer);
    this.handlers.onClose({ code, reason });
  }
}

function rawToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}
