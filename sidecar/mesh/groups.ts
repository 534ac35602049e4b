// TLS 1.3 key-exchange groups: what we offer and how to read what was negotiated.

/**
 * The groups the mesh offers, best first: the hybrid post-quantum X25519MLKEM768
 * (draft-ietf-tls-ecdhe-mlkem, OpenSSL 3.5's default), then classical X25519 and P-256 for peers
 * built on an older OpenSSL. Passed to node as `ecdhCurve`.
 */
export const DEFAULT_GROUPS = 'X25519MLKEM768:X25519:prime256v1';

// IANA "TLS Supported Groups" registry code points → the names OpenSSL uses.
const GROUP_NAMES: Record<number, string> = {
  0x0017: 'prime256v1',
  0x0018: 'secp384r1',
  0x0019: 'secp521r1',
  0x001d: 'X25519',
  0x001e: 'X448',
  0x0100: 'ffdhe2048',
  0x0101: 'ffdhe3072',
  0x0200: 'MLKEM512',
  0x0201: 'MLKEM768',
  0x0202: 'MLKEM1024',
  0x11eb: 'SecP256r1MLKEM768',
  0x11ec: 'X25519MLKEM768',
  0x11ed: 'SecP384r1MLKEM1024',
};

/** The OpenSSL name of a TLS group code point, or `group-0xNNNN` for one we do not know. */
export function groupName(codePoint: number): string {
  return GROUP_NAMES[codePoint] ?? `group-0x${codePoint.toString(16).padStart(4, '0')}`;
}

/**
 * The negotiated key-exchange group as the SERVER sees it. Node exposes
 * `getEphemeralKeyInfo()` on client sockets only (it returns null on a server socket), but
 * OpenSSL ≥ 3.2 serialises the session's `kex_group` as field `[19] IMPLICIT UINT32` of the
 * SSL_SESSION ASN.1 structure (ssl/ssl_asn1.c), and `socket.getSession()` returns that DER on
 * the server side too. We scan the top-level SEQUENCE for that one field; anything unexpected
 * yields undefined rather than a guess.
 */
export function groupFromSessionDer(der: Buffer | undefined): string | undefined {
  if (!der || der.length < 2 || der[0] !== 0x30) return undefined;
  let p = 1;
  const readLen = (): number | undefined => {
    if (p >= der.length) return undefined;
    let len = der[p++];
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4 || p + n > der.length) return undefined;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + der[p++];
    }
    return len;
  };
  const total = readLen();
  if (total === undefined) return undefined;
  const end = Math.min(der.length, p + total);
  while (p < end) {
    const tag = der[p++];
    const len = readLen();
    if (len === undefined || p + len > end) return undefined;
    // [19] EXPLICIT wrapper (0xb3) around an INTEGER, as OpenSSL's ASN1_EXP_OPT encodes it.
    if (tag === 0xb3) {
      const inner = der.subarray(p, p + len);
      if (inner[0] !== 0x02 || inner[1] > 4 || inner.length < 2 + inner[1]) return undefined;
      let v = 0;
      for (let i = 0; i < inner[1]; i++) v = v * 256 + inner[2 + i];
      return v === 0 ? undefined : groupName(v);
    }
    p += len;
  }
  return undefined;
}

/** The negotiated group as the CLIENT sees it (`getEphemeralKeyInfo().name`), or undefined. */
export function groupFromClientSocket(socket: { getEphemeralKeyInfo(): object | null }): string | undefined {
  const info = socket.getEphemeralKeyInfo() as { name?: string } | null;
  return info && typeof info.name === 'string' ? info.name : undefined;
}
