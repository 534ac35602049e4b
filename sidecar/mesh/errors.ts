import { MailmeshError } from '../../common/errors.ts';

/** Every code a `sidecar/mesh/` operation can fail with (and every mesh-level refusal reason). */
export type MeshErrorCode =
  /** Our own certificate is past notAfter: fail closed (callers answer 4xx, the mail stays queued). */
  | 'ERR_MESH_IDENTITY_EXPIRED'
  /** We have no certificate yet (never joined). */
  | 'ERR_MESH_NO_IDENTITY'
  /** The other side is not who it must be (bad chain, wrong shard, revoked) or refused us. */
  | 'ERR_MESH_PEER_REFUSED'
  /** TCP or TLS could not be established (refused, timeout, handshake failure). */
  | 'ERR_MESH_UNREACHABLE'
  /** The peer is a valid mesh member but policy does not let it reach this shard. */
  | 'ERR_MESH_NOT_AUTHORIZED'
  /** No (or an unknown) ALPN protocol: we would not know which backend to splice to. */
  | 'ERR_MESH_UNKNOWN_ALPN'
  /** The TLS handshake failed before any certificate could be checked. */
  | 'ERR_MESH_HANDSHAKE'
  /** A `host:port` could not be parsed. */
  | 'ERR_MESH_BAD_ADDRESS'
  /** The dialer was closed. */
  | 'ERR_MESH_CLOSED';

/**
 * The error `sidecar/mesh/` throws; `reason` carries the underlying `ca/` code when a certificate
 * check failed (e.g. `ERR_CERT_EXPIRED`), so logs say why a peer was refused.
 *
 * @example if (isMeshError(err, 'ERR_MESH_IDENTITY_EXPIRED')) reply('451 4.7.0 mesh identity expired');
 */
export class MeshError extends MailmeshError<MeshErrorCode> {
  readonly reason?: string;
  constructor(code: MeshErrorCode, message: string, options?: ErrorOptions & { reason?: string }) {
    super(code, message, options);
    this.reason = options?.reason;
  }
}

/** True when `err` is a {@link MeshError}, optionally with the given code. */
export function isMeshError(err: unknown, code?: MeshErrorCode): err is MeshError {
  return err instanceof MeshError && (code === undefined || err.code === code);
}
