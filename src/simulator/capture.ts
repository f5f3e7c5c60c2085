/**
 * Parser for cryptofeed's raw capture format (the `sample_data/` files copied into
 * test/fixtures/binance-real/cryptofeed, see the README there). Captures are real Binance
 * USDⓈ-M traffic: the simulator replays them and the tests check the book synchronizer against
 * them, so the exact frame text is kept alongside the parsed JSON.
 *
 * Line shapes (every file of a capture folder is read; each line is classified by its shape):
 * - `<url> -> <recv-epoch-s>: <body>`: an HTTP response (`/fapi/v1/exchangeInfo`,
 *   `/fapi/v1/depth?symbol=…&limit=1000`).
 * - `<ws-url> <-> <connect-epoch-s>`: the WebSocket connection (combined-stream URL).
 * - `<recv-epoch-s>: <frame>`: one WebSocket text frame, as received.
 * - `configuration: <json>`: cryptofeed's feed configuration.
 * - blank lines are ignored.
 *
 * Two layouts exist: "split" (e.g. `BINANCE_FUTURES.0` with exchangeInfo on line 1,
 * `BINANCE_FUTURES.http.N.0` with snapshots, `BINANCE_FUTURES.ws.N.0` with the connection and
 * frames) and "single" (one file mixing configuration, WS URL, snapshot responses and frames in
 * arrival order, as in capture 1312c062).
 *
 * JSON is parsed with `JSON.parse`: update ids in these captures (~6e11) are far below 2^53.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

/** One recorded HTTP response. */
export interface CaptureHttp {
  url: string;
  /** receive time, epoch seconds (fractional), as recorded */
  recvTime: number;
  /** the response body text, exactly as recorded */
  body: string;
}

/** A recorded `GET /fapi/v1/depth` snapshot. */
export interface CaptureSnapshot {
  symbol: string;
  lastUpdateId: number;
  /** message output time (ms); the receive time when the response had none */
  E: number;
  /** transaction time (ms); the receive time when the response had none */
  T: number;
  bids: [string, string][];
  asks: [string, string][];
  /** receive time, epoch seconds (fractional) */
  recvTime: number;
  /** the request URL (carries `limit`) */
  url: string;
}

/** One recorded WebSocket frame. */
export interface CaptureFrame {
  /** receive time, epoch seconds (fractional), as recorded */
  recvTime: number;
  /** the stream name from the combined-stream envelope (e.g. `btcusdt@depth@100ms`) */
  stream: string;
  /** the exact frame text as received (the `{"stream":…,"data":…}` envelope) */
  raw: string;
  /** the parsed `data` member (the whole frame when it has no envelope) */
  data: unknown;
}

/** A parsed capture folder. */
export interface Capture {
  /** folder name, e.g. `ce58c2a0` */
  name: string;
  layout: 'split' | 'single';
  /** parsed `/fapi/v1/exchangeInfo` response, when recorded */
  exchangeInfo?: unknown;
  /** parsed cryptofeed `configuration:` line, when recorded */
  configuration?: unknown;
  wsUrl: string;
  /** connect time, epoch seconds (fractional) */
  connectTime: number;
  /** stream names from the WS URL, in URL order */
  streams: string[];
  /** first recorded depth snapshot per upper-case symbol */
  snapshots: Map<string, CaptureSnapshot>;
  /** every recorded HTTP response, in file order */
  http: CaptureHttp[];
  /** WebSocket frames in arrival order */
  frames: CaptureFrame[];
}

const FRAME_LINE = /^(\d+(?:\.\d+)?): /;
const WS_LINE = /^(wss?:\/\/\S+) <-> (\d+(?:\.\d+)?)$/;
const HTTP_LINE = /^(https?:\/\/\S+) -> (\d+(?:\.\d+)?): /;
const CONFIG_PREFIX = 'configuration: ';

/**
 * Reads a capture folder synchronously (files are a few MB). Throws on a line it cannot
 * classify, on a missing or second WebSocket connection, and on malformed JSON, naming the
 * file and line.
 */
export function loadCapture(dir: string): Capture {
  const files = readdirSync(dir)
    .filter((f) => !/^(LICENSE|README)/i.test(f) && statSync(join(dir, f)).isFile())
    .sort();
  if (files.length === 0) throw new Error(`no capture files in ${dir}`);
  const layout = files.some((f) => /\.ws\.\d+/.test(f)) ? 'split' : 'single';

  let exchangeInfo: unknown;
  let configuration: unknown;
  let wsUrl: string | undefined;
  let connectTime = 0;
  const snapshots = new Map<string, CaptureSnapshot>();
  const http: CaptureHttp[] = [];
  const frames: CaptureFrame[] = [];
  let defaultStream = '';

  for (const file of files) {
    const lines = readFileSync(join(dir, file), 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.endsWith('\r') ? lines[i]!.slice(0, -1) : lines[i]!;
      if (line.trim() === '') continue;
      const where = `${file}:${i + 1}`;

      const frame = FRAME_LINE.exec(line);
      if (frame) {
        const raw = line.slice(frame[0].length);
        const parsed = parseJson(raw, where);
        const envelope = isEnvelope(parsed) ? parsed : undefined;
        frames.push({
          recvTime: Number(frame[1]),
          stream: envelope ? envelope.stream : defaultStream,
          raw,
          data: envelope ? envelope.data : parsed,
        });
        continue;
      }

      const res = HTTP_LINE.exec(line);
      if (res) {
        const url = res[1]!;
        const recvTime = Number(res[2]);
        const body = line.slice(res[0].length);
        http.push({ url, recvTime, body });
        const path = new URL(url).pathname;
        if (path.endsWith('/exchangeInfo')) {
          exchangeInfo ??= parseJson(body, where);
        } else if (path.endsWith('/depth')) {
          const snap = toSnapshot(url, recvTime, parseJson(body, where), where);
          if (!snapshots.has(snap.symbol)) snapshots.set(snap.symbol, snap);
        }
        continue;
      }

      const ws = WS_LINE.exec(line);
      if (ws) {
        if (wsUrl !== undefined) throw new Error(`${where}: second WebSocket connection`);
        wsUrl = ws[1]!;
        connectTime = Number(ws[2]);
        const u = new URL(wsUrl);
        // a raw-stream connection (`/ws/<stream>`) sends frames without an envelope
        const m = /\/ws\/([^/]+)$/.exec(u.pathname);
        defaultStream = m ? m[1]! : '';
        continue;
      }

      if (line.startsWith(CONFIG_PREFIX)) {
        configuration ??= parseJson(line.slice(CONFIG_PREFIX.length), where);
        continue;
      }

      throw new Error(`${where}: unrecognised capture line: ${line.slice(0, 80)}`);
    }
  }

  if (wsUrl === undefined) throw new Error(`${dir}: no WebSocket connection line`);
  return {
    name: basename(dir),
    layout,
    ...(exchangeInfo !== undefined ? { exchangeInfo } : {}),
    ...(configuration !== undefined ? { configuration } : {}),
    wsUrl,
    connectTime,
    streams: streamsOf(wsUrl),
    snapshots,
    http,
    frames,
  };
}

/** The `data` member of a combined-stream frame, as the exact recorded text. */
export function frameDataText(raw: string): string {
  const at = raw.indexOf('"data":');
  if (at < 0) return raw;
  return raw.slice(at + 7, raw.lastIndexOf('}'));
}

function streamsOf(wsUrl: string): string[] {
  const u = new URL(wsUrl);
  const combined = u.searchParams.get('streams');
  if (combined) return combined.split('/').filter((s) => s !== '');
  const m = /\/ws\/(.+)$/.exec(u.pathname);
  return m ? m[1]!.split('/').filter((s) => s !== '') : [];
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new Error(`${where}: bad JSON: ${String(error)}`);
  }
}

function isEnvelope(v: unknown): v is { stream: string; data: unknown } {
  return (
    typeof v === 'object' &&
    v !== null &&
    'stream' in v &&
    typeof v.stream === 'string' &&
    'data' in v
  );
}

function isLevels(v: unknown): v is [string, string][] {
  return (
    Array.isArray(v) &&
    v.every(
      (l) =>
        Array.isArray(l) && l.length === 2 && typeof l[0] === 'string' && typeof l[1] === 'string',
    )
  );
}

function toSnapshot(url: string, recvTime: number, body: unknown, where: string): CaptureSnapshot {
  const symbol = new URL(url).searchParams.get('symbol');
  if (!symbol) throw new Error(`${where}: depth URL without symbol`);
  if (typeof body !== 'object' || body === null) throw new Error(`${where}: depth body`);
  const b = body as Record<string, unknown>;
  const { lastUpdateId, E, T, bids, asks } = b;
  if (typeof lastUpdateId !== 'number' || !isLevels(bids) || !isLevels(asks)) {
    throw new Error(`${where}: not a depth snapshot`);
  }
  const recvMs = Math.round(recvTime * 1000);
  return {
    symbol: symbol.toUpperCase(),
    lastUpdateId,
    E: typeof E === 'number' ? E : recvMs,
    T: typeof T === 'number' ? T : recvMs,
    bids,
    asks,
    recvTime,
    url,
  };
}
