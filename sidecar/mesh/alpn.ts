/** ALPN protocol names of the mesh (RFC 7301); each selects one local backend at the ingress. */
export const MESH_ALPN = ['mailmesh-lmtp', 'mailmesh-imap', 'mailmesh-pop3'] as const;

/** One of {@link MESH_ALPN}. */
export type MeshAlpn = (typeof MESH_ALPN)[number];

/** True when `p` is a mesh ALPN protocol name. */
export function isMeshAlpn(p: unknown): p is MeshAlpn {
  return typeof p === 'string' && (MESH_ALPN as readonly string[]).includes(p);
}
