import WebSocket from 'ws';
import { waitFor } from './wait.js';

/** A raw WebSocket client that records every frame, for talking to the simulator like Binance. */
export class RecordingSocket {
  readonly frames: string[] = [];
  closeCode: number | undefined;
  closeReason = '';
  pings = 0;
  readonly ws: WebSocket;

  private constructor(url: string, options: WebSocket.ClientOptions) {
    this.ws = new WebSocket(url, options);
    this.ws.on('message', (data) => this.frames.push(data.toString()));
    this.ws.on('ping', () => (this.pings += 1));
    this.ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
    });
    this.ws.on('error', () => undefined);
  }

  static async open(url: string, options: WebSocket.ClientOptions = {}): Promise<RecordingSocket> {
    const s = new RecordingSocket(url, options);
    await new Promise<void>((resolve, reject) => {
      s.ws.once('open', () => resolve());
      s.ws.once('error', reject);
      s.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    return s;
  }

  send(value: unknown): void {
    this.ws.send(typeof value === 'string' ? value : JSON.stringify(value));
  }

  /** Parsed frames (JSON.parse), skipping any that are not JSON. */
  json(): unknown[] {
    return this.frames.flatMap((f) => {
      try {
        return [JSON.parse(f) as unknown];
      } catch {
        return [];
      }
    });
  }

  /** Waits for the reply to a control message with this id. */
  async reply(id: number, timeoutMs = 3_000): Promise<Record<string, unknown>> {
    return waitFor(
      () =>
        this.json().find(
          (m): m is Record<string, unknown> =>
            typeof m === 'object' && m !== null && (m as { id?: unknown }).id === id,
        ),
      timeoutMs,
      `reply ${id}`,
    );
  }

  async closed(timeoutMs = 5_000): Promise<number> {
    return waitFor(() => this.closeCode, timeoutMs, 'close');
  }

  close(): void {
    this.ws.terminate();
  }
}
