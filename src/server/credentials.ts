import type { Credentials } from '../binance/rest.js';

/**
 * Where a caller's own Binance key travels (gateway-contract.md, "Credentials"):
 * WebSocket `connection_init` payload `{apiKey, apiSecret}`; HTTP/SSE headers `X-MBX-APIKEY`
 * and `X-MBX-APISECRET`; GraphiQL in WebSocket mode sends its header tab as
 * `extensions.headers` in each `subscribe` message. Credentials live in memory only.
 */
const MAX_LEN = 512;

function clean(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  return s === '' || s.length > MAX_LEN ? undefined : s;
}

function make(apiKey: unknown, apiSecret: unknown): Credentials | undefined {
  const key = clean(apiKey);
  if (!key) return undefined;
  const secret = clean(apiSecret);
  return secret ? { apiKey: key, apiSecret: secret } : { apiKey: key };
}

export function credentialsFromHeaders(headers: Headers): Credentials | undefined {
  return make(headers.get('x-mbx-apikey'), headers.get('x-mbx-apisecret'));
}

export function credentialsFromInit(
  params: Readonly<Record<string, unknown>> | undefined,
): Credentials | undefined {
  if (!params) return undefined;
  return make(
    params.apiKey ?? params['X-MBX-APIKEY'],
    params.apiSecret ?? params['X-MBX-APISECRET'],
  );
}

export function credentialsFromExtensions(extensions: unknown): Credentials | undefined {
  if (typeof extensions !== 'object' || extensions === null) return undefined;
  const headers = (extensions as { headers?: unknown }).headers;
  if (typeof headers !== 'object' || headers === null) return undefined;
  const lower: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = v;
  return make(lower['x-mbx-apikey'], lower['x-mbx-apisecret']);
}
