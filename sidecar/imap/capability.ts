/** What decides the pre-login capability list. */
export interface CapabilityState {
  /** The connection is under TLS (implicit or after STARTTLS). */
  secure: boolean;
  /** STARTTLS is configured. */
  tlsAvailable: boolean;
  allowPlaintextLogin: boolean;
}

/** True when a login may be attempted on this connection. */
export function loginAllowed(s: CapabilityState): boolean {
  return s.secure || s.allowPlaintextLogin;
}

/**
 * The pre-login capability list (RFC 9051 §7.2.2, RFC 3501 §6.1.1). STARTTLS only when TLS is
 * configured and not yet active; LOGINDISABLED and no AUTH= mechanisms when a login would be
 * refused (RFC 9051 §6.2.3: the client must not send LOGIN); SASL-IR (RFC 4959) and LITERAL+
 * (RFC 7888) because the parser takes both. The backend's post-login capabilities reach the
 * client in its tagged OK.
 */
export function imapCapabilities(s: CapabilityState): string {
  const caps = ['IMAP4rev1', 'SASL-IR', 'ID', 'LITERAL+'];
  if (s.tlsAvailable && !s.secure) caps.push('STARTTLS');
  if (loginAllowed(s)) caps.push('AUTH=PLAIN');
  else caps.push('LOGINDISABLED');
  return caps.join(' ');
}
