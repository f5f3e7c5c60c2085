import type { IncomingMessage } from 'node:http';
import type { BinanceRest } from '../binance/rest.js';
import type { StreamManager } from '../binance/stream-manager.js';
import type { Hub } from '../hub/hub.js';
import type { MarketService } from '../market/market-service.js';
import type { GatewayStatusView, StatusApi, UserStreamStatusView } from '../schema/context.js';

export interface StatusSources {
  streams: StreamManager;
  market: MarketService;
  hub: Hub;
  rest: BinanceRest;
  /** per key-hash user streams (no credential in it) */
  userStreams: () => UserStreamStatusView[];
  /** extra counters for /metrics (messages delivered/dropped by the transport) */
  deliveryCounters?: () => Record<string, number>;
}

/**
 * Health as data: one function builds the status every surface reads — the `status` query
 * and subscription, `/readyz`, and `/metrics` — so they never disagree.
 */
export class StatusService implements StatusApi {
  private readonly startedAt = Date.now();

  constructor(private readonly sources: StatusSources) {}

  status(): GatewayStatusView {
    const { streams, market, hub, rest } = this.sources;
    const s = streams.status();
    const now = Date.now();
    const connections = s.connections.map((c) => ({
      id: c.id,
      path: c.path,
      state: c.state,
      streams: c.streams,
      lastFrameAgeMs: c.lastFrameAgeMs ?? null,
      reconnects: c.reconnects,
      ageMs: c.openedAt === undefined ? null : now - c.openedAt,
      malformedFrames: c.malformedFrames,
    }));
    const orderBooks = [...market.books.values()].map((b) => ({
      symbol: b.symbol,
      state: b.state,
      resyncCount: b.resyncCount,
      lastUpdateId: b.lastUpdateId,
    }));
    return {
      ready: this.ready(connections),
      uptimeMs: now - this.startedAt,
      upstreamConnections: connections,
      orderBooks,
      userStreams: this.sources.userStreams(),
      restWeightUsed: rest.weightUsed,
      subscribers: hub.stats().subscribers,
      upstreamReconnects: s.reconnects,
      upstreamRotations: s.rotations,
    };
  }

  /**
   * Ready when the upstream is usable: every connection that carries streams is open, and the
   * REST side answered its last call and is not under a ban.
   */
  private ready(connections: GatewayStatusView['upstreamConnections']): boolean {
    const down = connections.some((c) => c.streams > 0 && c.state !== 'open');
    const rest = this.sources.rest;
    return !down && !rest.blocked && rest.reachable;
  }

  subscribeStatus(intervalMs: number): AsyncIterableIterator<GatewayStatusView> {
    return new IntervalIterator(() => this.status(), intervalMs);
  }

  /** `/healthz`, `/readyz` and `/metrics`; undefined for every other path. */
  route(req: IncomingMessage): { status: number; type: string; body: string } | undefined {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET') return undefined;
    if (path === '/healthz')
      return { status: 200, type: 'application/json', body: '{"status":"ok"}' };
    if (path === '/readyz') {
      const s = this.status();
      return {
        status: s.ready ? 200 : 503,
        type: 'application/json',
        body: JSON.stringify({ ready: s.ready }),
      };
    }
    if (path === '/metrics') {
      return {
        status: 200,
        type: 'text/plain; version=0.0.4; charset=utf-8',
        body: this.metrics(),
      };
    }
    return undefined;
  }

  /** Prometheus text exposition format. */
  metrics(): string {
    const s = this.status();
    const hub = this.sources.hub;
    const hubStats = hub.stats();
    const rest = this.sources.rest;
    const out: string[] = [];
    const metric = (
      name: string,
      type: 'gauge' | 'counter',
      help: string,
      samples: [Record<string, string>, number][],
    ): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) {
        const l = Object.entries(labels)
          .map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`)
          .join(',');
        out.push(`${name}${l ? `{${l}}` : ''} ${value}`);
      }
    };
    const byPath = new Map<string, { conns: number; streams: number }>();
    for (const c of s.upstreamConnections) {
      const e = byPath.get(c.path) ?? { conns: 0, streams: 0 };
      e.conns += c.state === 'open' ? 1 : 0;
      e.streams += c.streams;
      byPath.set(c.path, e);
    }
    metric(
      'gateway_upstream_connections',
      'gauge',
      'Open upstream Binance connections by path.',
      [...byPath].map(([path, e]) => [{ path }, e.conns]),
    );
    metric(
      'gateway_upstream_streams',
      'gauge',
      'Binance streams held by path.',
      [...byPath].map(([path, e]) => [{ path }, e.streams]),
    );
    metric('gateway_upstream_reconnects_total', 'counter', 'Upstream reconnects.', [
      [{}, s.upstreamReconnects],
    ]);
    metric(
      'gateway_upstream_rotations_total',
      'counter',
      'Upstream rotations before the 24 h cut.',
      [[{}, s.upstreamRotations]],
    );
    metric(
      'gateway_upstream_malformed_frames_total',
      'counter',
      'Upstream frames that could not be parsed (skipped).',
      [[{}, s.upstreamConnections.reduce((n, c) => n + c.malformedFrames, 0)]],
    );
    metric(
      'gateway_order_book_resyncs_total',
      'counter',
      'Order book resyncs by symbol.',
      s.orderBooks.map((b) => [{ symbol: b.symbol }, b.resyncCount]),
    );
    metric(
      'gateway_order_book_live',
      'gauge',
      '1 when the symbol book is live, 0 while (re)syncing.',
      s.orderBooks.map((b) => [{ symbol: b.symbol }, b.state === 'live' ? 1 : 0]),
    );
    metric('gateway_rest_weight_used', 'gauge', 'Binance REQUEST_WEIGHT used this minute.', [
      [{}, s.restWeightUsed],
    ]);
    metric('gateway_rest_requests_total', 'counter', 'Binance REST requests sent.', [
      [{}, rest.stats.requests],
    ]);
    metric('gateway_rest_rate_limited_total', 'counter', 'Binance 429 answers.', [
      [{}, rest.stats.rateLimited],
    ]);
    metric('gateway_rest_banned_total', 'counter', 'Binance 418 answers.', [
      [{}, rest.stats.banned],
    ]);
    metric(
      'gateway_subscribers',
      'gauge',
      'Subscribers per topic kind (book, trades, ticker, account).',
      [...countByKind(hub.subscribersByTopic())].map(([kind, n]) => [{ topic: kind }, n]),
    );
    const shared = this.sources.deliveryCounters?.();
    metric('gateway_messages_delivered_total', 'counter', 'Values delivered to subscribers.', [
      [{}, hubStats.delivered + (shared?.delivered ?? 0)],
    ]);
    metric(
      'gateway_shared_executions_total',
      'counter',
      'GraphQL executions of shared WebSocket subscriptions (one per event per group).',
      [[{}, shared?.executions ?? 0]],
    );
    metric(
      'gateway_socket_writes_total',
      'counter',
      'Socket writes of the shared WebSocket path (one per socket per batch).',
      [[{}, shared?.socketWrites ?? 0]],
    );
    metric('gateway_messages_dropped_total', 'counter', 'Values dropped for slow subscribers.', [
      [{}, hubStats.dropped + (shared?.dropped ?? 0)],
    ]);
    metric(
      'gateway_slow_subscribers_disconnected_total',
      'counter',
      'Subscribers ended because they could not keep up with never-dropped data.',
      [[{}, hubStats.disconnectedSlow + (shared?.disconnected ?? 0)]],
    );
    metric('gateway_user_streams', 'gauge', 'Per-key user data streams.', [
      [{}, s.userStreams.length],
    ]);
    metric('gateway_ready', 'gauge', '1 when the upstream is usable.', [[{}, s.ready ? 1 : 0]]);
    return `${out.join('\n')}\n`;
  }
}

/** Topic keys are `<kind>:<id>`; metrics label by kind only (an account key hash is no label). */
function countByKind(byTopic: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, n] of byTopic) {
    const kind = key.split(':')[0] ?? key;
    out.set(kind, (out.get(kind) ?? 0) + n);
  }
  return out;
}

/** A status value at once, then one per interval, until `return()`. */
class IntervalIterator<T> implements AsyncIterableIterator<T> {
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private first = true;
  private done = false;

  constructor(
    private readonly read: () => T,
    private readonly intervalMs: number,
  ) {}

  async next(): Promise<IteratorResult<T>> {
    if (this.done) return { value: undefined, done: true };
    if (!this.first) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.timer = setTimeout(resolve, this.intervalMs);
      });
      if (this.done) return { value: undefined, done: true };
    }
    this.first = false;
    return { value: this.read(), done: false };
  }

  async return(): Promise<IteratorResult<T>> {
    this.done = true;
    clearTimeout(this.timer);
    this.wake?.();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
