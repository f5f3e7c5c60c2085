import { GatewayError } from '../errors.js';

/**
 * How account failures reach a caller. Every message is a fixed text written here: nothing
 * from a request (key, secret, signature, listenKey) can travel into an error a client sees.
 */

/**
 * A coded error made by `toClientError`: its text is ours, so it passes through unchanged when
 * it travels on (from a stream to the states and topics built on it).
 */
export class AccountDataError extends GatewayError {
  constructor(code: GatewayError['code'], message: string, extra: Record<string, unknown> = {}) {
    super(code, message, extra);
    this.name = 'AccountDataError';
  }
}

/** Binance's numeric code: on a `BinanceRestError`, or in the extensions of one of ours. */
function binanceCodeOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const direct = (err as { binanceCode?: unknown }).binanceCode;
  if (typeof direct === 'number') return direct;
  const ext = err instanceof GatewayError ? err.extensions.binanceCode : undefined;
  return typeof ext === 'number' ? ext : undefined;
}

/** Binance refused the key or the signature (-2014, -2015, -1022, …): retrying cannot help. */
export function isKeyRejected(err: unknown): boolean {
  return err instanceof GatewayError && err.code === 'INVALID_API_KEY';
}

/** `-1125` "This listenKey does not exist": the cure is one new key (reference §6.1). */
export function isListenKeyMissing(err: unknown): boolean {
  return binanceCodeOf(err) === -1125;
}

/** True when Binance rejected the signature only (`-1022`): the key itself may be fine. */
export function isSignatureRejected(err: unknown): boolean {
  return isKeyRejected(err) && binanceCodeOf(err) === -1022;
}

/** The client-safe, coded error for any failure behind an account subscription. */
export function toClientError(err: unknown): AccountDataError {
  if (err instanceof AccountDataError) return err;
  const binanceCode = binanceCodeOf(err);
  if (err instanceof GatewayError) {
    switch (err.code) {
      case 'INVALID_API_KEY':
        return new AccountDataError(
          'INVALID_API_KEY',
          binanceCode === -1022
            ? 'Binance rejected the request signature: check your API secret.'
            : 'Binance rejected your API key (invalid, revoked, or missing permissions or IP whitelist).',
          binanceCode === undefined ? {} : { binanceCode },
        );
      case 'UNAUTHENTICATED':
        return new AccountDataError(
          'UNAUTHENTICATED',
          'This field needs your Binance API key and secret.',
        );
      case 'RATE_LIMITED': {
        const retryAt = (err as { retryAt?: unknown }).retryAt;
        return new AccountDataError(
          'RATE_LIMITED',
          'Binance request limits reached; try again later.',
          typeof retryAt === 'number' ? { retryAfterMs: Math.max(0, retryAt - Date.now()) } : {},
        );
      }
      default:
        break;
    }
  }
  return new AccountDataError(
    'UPSTREAM_UNAVAILABLE',
    'Binance account data cannot be reached right now; try again later.',
  );
}
