/** The identities in a SASL PLAIN message (RFC 4616). */
export interface PlainCredentials {
  authzid: string;
  authcid: string;
  password: string;
  /** The login the mailbox is looked up by: the authorization identity if given, else the authentication one. */
  login: string;
}

/**
 * Decode a base64 SASL PLAIN response `[authzid] NUL authcid NUL passwd` (RFC 4616 §2).
 * Returns undefined when it is not valid base64 or not three fields.
 */
export function decodeSaslPlain(b64: string): PlainCredentials | undefined {
  // RFC 4648 alphabet only: Buffer.from would silently skip garbage.
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) return undefined;
  const parts = Buffer.from(b64, 'base64').toString('utf8').split('\0');
  if (parts.length !== 3 || parts[1].length === 0) return undefined;
  const [authzid, authcid, password] = parts;
  return { authzid, authcid, password, login: authzid || authcid };
}

/** Encode a SASL PLAIN response (RFC 4616 §2) as base64. */
export function encodeSaslPlain(c: { authzid?: string; authcid: string; password: string }): string {
  return Buffer.from(`${c.authzid ?? ''}\0${c.authcid}\0${c.password}`, 'utf8').toString('base64');
}
