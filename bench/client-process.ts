/**
 * Benchmark child: many WebSocket subscribers in one process. Speaks graphql-transport-ws by
 * hand (connection_init, subscribe), as any client does on the wire, or connects to the raw
 * reference server. Per message it does the least it can: classify the frame by a byte or two,
 * count it, and, while latency is recorded, read the aggregate trade id and stamp the receipt
 * on the machine-wide monotonic clock.
 */
import WebSocket from 'ws';
import { serve } from './ipc.js';
import { monoMs } from './clock.js';

export interface OpenPlan {
  url: string;
  protocol: 'graphql-ws' | 'raw';
  query: string;
  /** per socket: the symbols it subscribes to, one subscription each (raw: in the URL) */
  sockets: { symbols: string[] }[];
  connectionParams?: Record<string, unknown>;
}

export interface ClientReport {
  messages: number;
  bytes: number;
  errors: number;
  closed: number;
  cpuUs: number;
  /** this client's own window (its IPC may lag while it is busy) */
  elapsedMs: number;
  ids: Float64Array;
  times: Float64Array;
}

const TYPE = Buffer.from('"type":"');
const AGG = Buffer.from('"aggregateTradeId":');
const ID = Buffer.from('{"id":"');
const MAX_SAMPLES = 3_000_000;

interface Conn {
  ws: WebSocket;
  acked: boolean;
  got: boolean;
}

const conns: Conn[] = [];
let messages = 0;
let bytes = 0;
let errors = 0;
let closed = 0;
let recording = false;
let sampleCount = 0;
let sampleIds = new Float64Array(0);
let sampleTimes = new Float64Array(0);
let cpuMark = process.cpuUsage();
let markAt = monoMs();
/** burst mode: subscription id → send time; first next → latency */
const burst = { sent: new Map<string, number>(), latencies: [] as number[] };
let nextSubId = 1;

function onMessage(conn: Conn, data: Buffer): void {
  const t = data.indexOf(TYPE);
  const kind = t >= 0 ? data[t + 8] : 0x6e; // raw frames: all `next`
  if (kind === 0x6e /* n */) {
    conn.got = true;
    messages += 1;
    bytes += data.length;
    if (recording && sampleCount < MAX_SAMPLES) {
      const k = data.indexOf(AGG);
      if (k >= 0) {
        let id = 0;
        for (let i = k + AGG.length; i < data.length; i++) {
          const c = data[i]!;
          if (c < 0x30 || c > 0x39) break;
          id = id * 10 + (c - 0x30);
        }
        sampleIds[sampleCount] = id;
        sampleTimes[sampleCount] = monoMs();
        sampleCount += 1;
      }
    }
    if (burst.sent.size > 0 && data.indexOf(ID) === 0) {
      const end = data.indexOf(0x22, ID.length);
      const id = data.toString('latin1', ID.length, end);
      const sentAt = burst.sent.get(id);
      if (sentAt !== undefined) {
        burst.sent.delete(id);
        burst.latencies.push(monoMs() - sentAt);
      }
    }
  } else if (kind === 0x65 /* e */) {
    errors += 1;
  } else if (kind === 0x63 /* c: connection_ack or complete */ && !conn.acked) {
    conn.acked = true;
  }
}

function subscribe(conn: Conn, query: string, variables: Record<string, unknown>): string {
  const id = `s${nextSubId++}`;
  conn.ws.send(JSON.stringify({ id, type: 'subscribe', payload: { query, variables } }));
  return id;
}

/** Connects (and, for graphql-ws, waits for `connection_ack`); subscribes later. */
async function openOne(plan: OpenPlan, symbols: string[]): Promise<Conn> {
  const url =
    plan.protocol === 'raw'
      ? `${plan.url}/?${symbols.map((s) => `symbol=${s}`).join('&')}`
      : plan.url;
  const ws = new WebSocket(url, plan.protocol === 'raw' ? [] : ['graphql-transport-ws'], {
    skipUTF8Validation: true,
    perMessageDeflate: false,
  });
  const conn: Conn = { ws, acked: plan.protocol === 'raw', got: false };
  conns.push(conn);
  ws.on('message', (data: Buffer) => onMessage(conn, data));
  ws.on('close', () => {
    closed += 1;
  });
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  if (plan.protocol === 'raw') return conn;
  ws.send(JSON.stringify({ type: 'connection_init', payload: plan.connectionParams ?? {} }));
  const deadline = Date.now() + 20_000;
  while (!conn.acked) {
    if (Date.now() > deadline) throw new Error('no connection_ack');
    await new Promise((r) => setTimeout(r, 5));
  }
  return conn;
}

serve({
  async open(arg) {
    const plan = arg as OpenPlan;
    // all sockets first, then all subscribes: a server saturated by the first subscriptions must
    // not starve the handshakes of the later ones
    const batch = 100;
    const opened: { conn: Conn; symbols: string[] }[] = [];
    for (let i = 0; i < plan.sockets.length; i += batch) {
      const part = plan.sockets.slice(i, i + batch);
      const conns = await Promise.all(part.map((s) => openOne(plan, s.symbols)));
      conns.forEach((conn, j) => opened.push({ conn, symbols: part[j]!.symbols }));
    }
    if (plan.protocol === 'graphql-ws') {
      for (const { conn, symbols } of opened) {
        for (const symbol of symbols) subscribe(conn, plan.query, { symbol });
      }
    }
    return conns.length;
  },
  /** Adds subscriptions on the open sockets, round robin. */
  more(arg) {
    const { query, symbols } = arg as { query: string; symbols: string[] };
    symbols.forEach((symbol, i) => subscribe(conns[i % conns.length]!, query, { symbol }));
    return symbols.length;
  },
  status() {
    return {
      sockets: conns.length,
      receiving: conns.filter((c) => c.got).length,
      messages,
      errors,
      closed,
    };
  },
  mark(arg) {
    const { latency } = arg as { latency: boolean };
    messages = 0;
    bytes = 0;
    errors = 0;
    cpuMark = process.cpuUsage();
    markAt = monoMs();
    recording = latency;
    sampleCount = 0;
    if (latency && sampleIds.length === 0) {
      sampleIds = new Float64Array(MAX_SAMPLES);
      sampleTimes = new Float64Array(MAX_SAMPLES);
    }
  },
  report(): ClientReport {
    recording = false;
    const cpu = process.cpuUsage(cpuMark);
    return {
      messages,
      bytes,
      errors,
      closed,
      cpuUs: cpu.user + cpu.system,
      elapsedMs: monoMs() - markAt,
      ids: sampleIds.slice(0, sampleCount),
      times: sampleTimes.slice(0, sampleCount),
    };
  },
  /**
   * Sends `count` subscribes over the open sockets and resolves with each one's time to its
   * first `next` (ms), for operations that answer at once (an order book's current view).
   */
  async burst(arg) {
    const { query, variables, count, timeoutMs } = arg as {
      query: string;
      variables: Record<string, unknown>;
      count: number;
      timeoutMs: number;
    };
    burst.latencies = [];
    for (let i = 0; i < count; i++) {
      const conn = conns[i % conns.length]!;
      const id = `s${nextSubId}`;
      burst.sent.set(id, monoMs());
      subscribe(conn, query, variables);
    }
    const deadline = Date.now() + timeoutMs;
    while (burst.sent.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    const missing = burst.sent.size;
    burst.sent.clear();
    return { latencies: Float64Array.from(burst.latencies), missing };
  },
  close() {
    for (const c of conns) c.ws.terminate();
    setImmediate(() => process.exit(0));
  },
});
