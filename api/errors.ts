import { MailmeshError } from '../common/errors.ts';

/**
 * Codes a client of the control plane sees. Refusals by the control plane carry the server's
 * domain code (`ERR_TOKEN_REPLAYED`, `ERR_TOKEN_EXPIRED`, `ERR_TOKEN_INVALID_SIGNATURE`,
 * `ERR_TOKEN_AUDIENCE`, `ERR_IDENTITY_CHANGE`, `ERR_UNKNOWN_SHARD`, `ERR_CSR_INVALID`,
 * `ERR_RATE_LIMITED`, `ERR_UNAUTHENTICATED`, `ERR_PERMISSION_DENIED`, …) from the trailing
 * metadata `mailmesh-code`; the codes below are the client's own.
 */
export type ApiErrorCode =
  | 'ERR_UNAVAILABLE'
  | 'ERR_DEADLINE'
  | 'ERR_GRPC'
  | 'ERR_SNAPSHOT_INVALID'
  | 'ERR_SNAPSHOT_SIGNER'
  | 'ERR_CLIENT_CONFIG'
  | (string & {});

/**
 * An error from {@link ../api/client.ts ControlPlaneClient}. `code` is the control plane's domain
 * code when it sent one, else one of the client's codes; `grpcCode` is the gRPC status;
 * `temporary` says whether retrying later may help (unreachable, rate limited, overloaded).
 */
export class ApiError extends MailmeshError<ApiErrorCode> {
  readonly grpcCode: number | undefined;
  readonly retryAfterMs: number | undefined;
  readonly temporary: boolean;
  constructor(code: ApiErrorCode, message: string, opts: { grpcCode?: number; retryAfterMs?: number; temporary?: boolean; cause?: unknown } = {}) {
    super(code, message, { cause: opts.cause });
    this.grpcCode = opts.grpcCode;
    this.retryAfterMs = opts.retryAfterMs;
    this.temporary = opts.temporary ?? false;
  }
}

/** True when `err` is an {@link ApiError}, optionally with the given code. */
export function isApiError(err: unknown, code?: string): err is ApiError {
  return err instanceof ApiError && (code === undefined || err.code === code);
}
