import { GraphQLError } from 'graphql';

/** Every error a client can cause carries one of these in `extensions.code` (gateway-contract.md). */
export type ErrorCode =
  | 'BAD_USER_INPUT'
  | 'UNAUTHENTICATED'
  | 'INVALID_API_KEY'
  | 'RATE_LIMITED'
  | 'UPSTREAM_UNAVAILABLE';

/** A coded, client-safe error: its message is written for the caller and never masked. */
export class GatewayError extends GraphQLError {
  constructor(
    readonly code: ErrorCode,
    message: string,
    extra: Record<string, unknown> = {},
  ) {
    super(message, { extensions: { code, ...extra } });
    this.name = 'GatewayError';
  }
}

export const badInput = (message: string): GatewayError =>
  new GatewayError('BAD_USER_INPUT', message);
export const unauthenticated = (message: string): GatewayError =>
  new GatewayError('UNAUTHENTICATED', message);
export const upstreamUnavailable = (message: string): GatewayError =>
  new GatewayError('UPSTREAM_UNAVAILABLE', message);
export const rateLimited = (message: string, retryAfterMs?: number): GatewayError =>
  new GatewayError('RATE_LIMITED', message, retryAfterMs === undefined ? {} : { retryAfterMs });
