import { ConfigError, envEnum, envInt, envUrl, type Env } from './env.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** The gateway's whole configuration, validated once at start-up (gateway-contract.md). */
export interface GatewayConfig {
  port: number;
  host: string;
  binanceEnv: 'mainnet' | 'testnet';
  /** REST base URL, no trailing slash */
  restUrl: string;
  /** stream base URL without a path; `/public`, `/market`, `/private` are appended per stream */
  streamUrl: string;
  logLevel: LogLevel;
}

const BINANCE_URLS = {
  mainnet: { rest: 'https://fapi.binance.com', stream: 'wss://fstream.binance.com' },
  testnet: { rest: 'https://demo-fapi.binance.com', stream: 'wss://fstream.binancefuture.com' },
} as const;

/** Reads the environment; throws a ConfigError naming the first bad variable. */
export function loadConfig(env: Env): GatewayConfig {
  const binanceEnv = envEnum(env, 'BINANCE_ENV', 'mainnet', ['mainnet', 'testnet'] as const);
  const host = env.HOST === undefined || env.HOST === '' ? '127.0.0.1' : env.HOST.trim();
  if (!/^[A-Za-z0-9.:\-[\]]+$/.test(host)) {
    throw new ConfigError('HOST', `not a host name or address: ${JSON.stringify(env.HOST)}`);
  }
  const streamUrl = envUrl(env, 'BINANCE_STREAM_URL', BINANCE_URLS[binanceEnv].stream, [
    'ws:',
    'wss:',
  ]);
  if (/\/(public|market|private|ws|stream)$/.test(new URL(streamUrl).pathname)) {
    throw new ConfigError(
      'BINANCE_STREAM_URL',
      'give the base URL without a path; the gateway appends /public, /market or /private itself',
    );
  }
  return {
    port: envInt(env, 'PORT', 4000, 0, 65_535),
    host,
    binanceEnv,
    restUrl: envUrl(env, 'BINANCE_REST_URL', BINANCE_URLS[binanceEnv].rest, ['http:', 'https:']),
    streamUrl,
    logLevel: envEnum(env, 'LOG_LEVEL', 'info', ['debug', 'info', 'warn', 'error'] as const),
  };
}
