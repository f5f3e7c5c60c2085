import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { createLogger } from '../../src/log.js';
import { startGateway, type GatewayHandle, type GatewayTuning } from '../../src/gateway.js';
import {
  startSimulator,
  type SimulatorHandle,
  type SimulatorOptions,
} from '../../src/simulator/index.js';
import { waitFor } from './wait.js';

export interface Stack {
  sim: SimulatorHandle;
  gw: GatewayHandle;
  /** every JSON log line the gateway wrote, at debug level */
  logs: string[];
  wsUrl: string;
  close(): Promise<void>;
}

/** The simulator and the gateway on port 0 over loopback, gateway logging into `logs`. */
export async function startStack(
  simOptions: SimulatorOptions = {},
  tuning: GatewayTuning = {},
): Promise<Stack> {
  const sim = await startSimulator({ port: 0, seed: 11, tickMs: 20, ...simOptions });
  const logs: string[] = [];
  const logger = createLogger({ level: 'debug', write: (line) => logs.push(line) });
  const gw = await startGateway(
    {
      port: 0,
      host: '127.0.0.1',
      binanceEnv: 'mainnet',
      restUrl: sim.restUrl,
      streamUrl: sim.streamUrl,
      logLevel: 'debug',
    },
    { logger, tuning: { lingerMs: 200, ...tuning } },
  );
  // the gateway loads exchangeInfo at start; let that call land before a test arms REST faults
  await waitFor(
    () => sim.rest.log.some((l) => l.path === '/fapi/v1/exchangeInfo'),
    5_000,
    'exchangeInfo loaded at start',
  );
  return {
    sim,
    gw,
    logs,
    wsUrl: gw.url.replace(/^http/, 'ws'),
    async close() {
      await gw.close();
      await sim.close();
    },
  };
}

export function wsClient(url: string, connectionParams?: Record<string, unknown>): Client {
  return createClient({
    url,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
    ...(connectionParams && { connectionParams }),
  });
}

export interface Collected<T> {
  values: T[];
  errors: unknown[];
  completed: boolean;
  dispose(): void;
  /** waits for at least n values */
  next(n?: number, timeoutMs?: number): Promise<T>;
}

/** Subscribes and records every value and error. */
export function collect<T = Record<string, unknown>>(
  client: Client,
  query: string,
  variables?: Record<string, unknown>,
  extensions?: Record<string, unknown>,
): Collected<T> {
  const out: Collected<T> = {
    values: [],
    errors: [],
    completed: false,
    dispose: () => undefined,
    async next(n = 1, timeoutMs = 10_000) {
      await waitFor(
        () => out.values.length >= n || out.errors.length > 0,
        timeoutMs,
        `${n} values of ${query.slice(0, 60)}`,
      );
      if (out.errors.length > 0 && out.values.length < n) {
        throw new Error(`subscription failed: ${JSON.stringify(out.errors)}`);
      }
      return out.values[n - 1]!;
    },
  };
  out.dispose = client.subscribe<T>(
    { query, ...(variables && { variables }), ...(extensions && { extensions }) },
    {
      next: (v) => {
        if (v.errors) out.errors.push(...v.errors);
        if (v.data) out.values.push(v.data as T);
      },
      error: (e) => out.errors.push(e),
      complete: () => {
        out.completed = true;
      },
    },
  );
  return out;
}

/** `extensions.code` of a collected error, whether graphql-ws gave it alone or in an array. */
export function errorCode(error: unknown): unknown {
  const first: unknown = Array.isArray(error) ? error[0] : error;
  return (first as { extensions?: { code?: unknown } } | undefined)?.extensions?.code;
}

/** A `startStack` whose stacks `defer` closes after each test. */
export function stacksClosedBy(
  defer: (fn: () => unknown) => void,
): (...args: Parameters<typeof startStack>) => Promise<Stack> {
  return async (...args) => {
    const s = await startStack(...args);
    defer(() => s.close());
    return s;
  };
}
