import { GatewayError, rateLimited, upstreamUnavailable } from '../errors.js';

/**
 * How account failures reach a caller. Every message is a fixed text written here: nothing
 * from a request (key, secret, signature, listenKey) can travel into an error a client sees.
 */

function binanceCodeOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { binanceCode?: unknown }).binanceCode;
  return typeof code === 'number' ? code : undefined;
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
export function toClientError(err: unknown): GatewayError {
  const binanceCode = binanceCodeOf(err);
  if (err instanceof GatewayError) {
    switch (err.code) {
      case 'INVALID_API_KEY':
        return new GatewayError(
          'INVALID_API_KEY',
          binanceCode === -1022
            ? 'Binance rejected the request signature: check your API secret.'
            : 'Binance rejected your API key (invalid, revoked, or missing permissions or IP whitelist).',
          binanceCode === undefined ? {} : { binanceCode },
        );
      case 'UNAUTHENTICATED':
        return new GatewayError('UNAUTHENTICATED', err.message);
      case 'RATE_LIMITED': {
        const retryAt = (err as { retryAt?: unknown }).retryAt;
        return rateLimited(
          'Binance request limits reached; try again later.',
          typeof retryAt === 'number' ? Math.max(0, retryAt - Date.now()) : undefined,
        );
      }
      default:
        break;
    }
  }
  return upstreamUnavailable('Binance account data cannot be reached right now; try again later.');
}
