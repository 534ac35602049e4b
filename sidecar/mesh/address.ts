import { MeshError } from './errors.ts';

/**
 * Split `host:port` (IPv6 as `[::1]:25`) into its parts.
 *
 * @throws MeshError `ERR_MESH_BAD_ADDRESS`
 * @example parseHostPort('[::1]:8443') // { host: '::1', port: 8443 }
 */
export function parseHostPort(address: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:]+):(\d+)$/.exec(address);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new MeshError('ERR_MESH_BAD_ADDRESS', `invalid address "${address}": use host:port, e.g. 127.0.0.1:8443 or [::1]:8443`);
  }
  return { host: m[1], port };
}

/** Where a local backend listens: TCP `host:port`, or a Unix-domain socket `unix:/path`. */
export type Endpoint = { host: string; port: number } | { path: string };

/**
 * Parse a backend address: `host:port` as {@link parseHostPort}, or `unix:/absolute/path` for a
 * Unix-domain socket (how Dovecot's LMTP listens by default; cheaper than loopback TCP).
 *
 * @throws MeshError `ERR_MESH_BAD_ADDRESS`
 * @example parseEndpoint('unix:/run/dovecot/lmtp') // { path: '/run/dovecot/lmtp' }
 */
export function parseEndpoint(address: string): Endpoint {
  if (!address.startsWith('unix:')) return parseHostPort(address);
  const path = address.slice('unix:'.length);
  if (!path.startsWith('/')) {
    throw new MeshError('ERR_MESH_BAD_ADDRESS', `invalid address "${address}": a Unix socket needs an absolute path, e.g. unix:/run/dovecot/lmtp`);
  }
  return { path };
}
