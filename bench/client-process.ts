/**
 * Benchmark child: many WebSocket subscribers in one process. Speaks WebSocket (RFC 6455) and
 * graphql-transport-ws by hand (connection_init, subscribe), as any client does on the wire, or
 * connects to the raw reference server. Per message it does the least it can: split the frame,
 * classify it by a byte or two, count it, and, while latency is recorded, read the aggregate
 * trade id and stamp its receipt (the TCP read it arrived in) on the machine-wide monotonic
 * clock. The clients share a CPU with the simulator, so the less they spend per message, the
 * less of their own backlog shows up as the server's latency.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { Socket } from 'node:net';
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

/**
 * One WebSocket, spoken at the frame level (RFC 6455) over its TCP socket: the client does what
 * any client must (unmasked server frames in, masked frames out, pongs for pings) and nothing a
 * general-purpose library adds per message (event emitters, UTF-8 validation, buffer lists).
 * Every message of one TCP read is stamped with the time of that read: its receipt.
 */
interface Conn {
  socket: Socket;
  acked: boolean;
  got: boolean;
  /** bytes of an incomplete frame carried over to the next read */
  rest: Buffer | undefined;
}

const conns: Conn[] = [];
let messages = 0;
let bytes = 0;
let errors = 0;
let closed = 0;
/**
 * Recording runs from the first `open` on (the window's `mark` only resets it), so the sampling
 * path is warm and optimized before the window opens instead of deoptimizing inside it.
 */
let recording = false;
let sampleCount = 0;
let sampleIds = new Float64Array(0);
let sampleTimes = new Float64Array(0);
let cpuMark = process.cpuUsage();
let markAt = monoMs();
/** burst mode: subscription id → send time; first next → latency */
const burst = { sent: new Map<string, number>(), latencies: [] as number[] };
let nextSubId = 1;

/** A client frame: FIN, `opcode`, masked with the all-zero key (so the payload is unchanged). */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65_536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + 4 + len);
  out[0] = 0x80 | opcode;
  if (len < 126) {
    out[1] = 0x80 | len;
  } else if (len < 65_536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(0, 2);
    out.writeUInt32BE(len, 6);
  }
  out.writeUInt32BE(0, head);
  payload.copy(out, head + 4);
  return out;
}

function sendText(conn: Conn, text: string): void {
  if (!conn.socket.destroyed) conn.socket.write(clientFrame(0x1, Buffer.from(text)));
}

/** Splits one TCP read into frames; an incomplete tail waits for the next read. */
function onData(conn: Conn, chunk: Buffer): void {
  const at = monoMs();
  const data = conn.rest ? Buffer.concat([conn.rest, chunk]) : chunk;
  conn.rest = undefined;
  let off = 0;
  while (data.length - off >= 2) {
    const b0 = data[off]!;
    const b1 = data[off + 1]!;
    let len = b1 & 0x7f;
    let head = 2;
    if (len === 126) {
      if (data.length - off < 4) break;
      len = data.readUInt16BE(off + 2);
      head = 4;
    } else if (len === 127) {
      if (data.length - off < 10) break;
      len = data.readUInt32BE(off + 2) * 2 ** 32 + data.readUInt32BE(off + 6);
      head = 10;
    }
    if (b1 & 0x80) head += 4; // a server must not mask; tolerated, payload read as is
    if (data.length - off < head + len) break;
    const payload = data.subarray(off + head, off + head + len);
    off += head + len;
    const opcode = b0 & 0x0f;
    if (opcode === 0x1 || opcode === 0x2) onMessage(conn, payload, at);
    else if (opcode === 0x9) conn.socket.write(clientFrame(0xa, payload));
    else if (opcode === 0x8) conn.socket.end();
  }
  if (off < data.length) conn.rest = Buffer.from(data.subarray(off));
}

function onMessage(conn: Conn, data: Buffer, at: number): void {
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
        sampleTimes[sampleCount] = at;
        sampleCount += 1;
      }
    }
    if (burst.sent.size > 0 && data.indexOf(ID) === 0) {
      const end = data.indexOf(0x22, ID.length);
      const id = data.toString('latin1', ID.length, end);
      const sentAt = burst.sent.get(id);
      if (sentAt !== undefined) {
        burst.sent.delete(id);
        burst.latencies.push(at - sentAt);
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
  sendText(conn, JSON.stringify({ id, type: 'subscribe', payload: { query, variables } }));
  return id;
}

/** The opening handshake (HTTP Upgrade); resolves with the TCP socket and any early bytes. */
function handshake(url: string, protocols: string[]): Promise<{ socket: Socket; head: Buffer }> {
  const u = new URL(url.replace(/^ws/, 'http'));
  const req = request({
    host: u.hostname,
    port: u.port,
    path: `${u.pathname}${u.search}`,
    headers: {
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      ...(protocols.length > 0 && { 'Sec-WebSocket-Protocol': protocols.join(', ') }),
    },
  });
  return new Promise((resolve, reject) => {
    req.on('upgrade', (_res, socket: Socket, head: Buffer) => resolve({ socket, head }));
    req.on('response', (res) => reject(new Error(`no upgrade: HTTP ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
}

/** Connects (and, for graphql-ws, waits for `connection_ack`); subscribes later. */
async function openOne(plan: OpenPlan, symbols: string[]): Promise<Conn> {
  const url =
    plan.protocol === 'raw'
      ? `${plan.url}/?${symbols.map((s) => `symbol=${s}`).join('&')}`
      : plan.url;
  const { socket, head } = await handshake(
    url,
    plan.protocol === 'raw' ? [] : ['graphql-transport-ws'],
  );
  socket.setNoDelay(true);
  const conn: Conn = { socket, acked: plan.protocol === 'raw', got: false, rest: undefined };
  conns.push(conn);
  socket.on('data', (chunk: Buffer) => onData(conn, chunk));
  socket.on('close', () => {
    closed += 1;
  });
  socket.on('error', () => undefined);
  if (head.length > 0) onData(conn, head);
  if (plan.protocol === 'raw') return conn;
  sendText(conn, JSON.stringify({ type: 'connection_init', payload: plan.connectionParams ?? {} }));
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
    // the sample buffers (48 MB) are made here, not when recording starts: zero-filling them
    // there stalled this client for a few ms inside the measured window
    if (sampleIds.length === 0) {
      sampleIds = new Float64Array(MAX_SAMPLES);
      sampleTimes = new Float64Array(MAX_SAMPLES);
    }
    recording = true;
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
    for (const c of conns) c.socket.destroy();
    setImmediate(() => process.exit(0));
  },
});
