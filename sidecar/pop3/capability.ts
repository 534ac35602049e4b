/** What decides the POP3 capability list. */
export interface Pop3CapabilityState {
  secure: boolean;
  tlsAvailable: boolean;
  allowPlaintextLogin: boolean;
}

/** True when USER/PASS or AUTH may be attempted on this connection. */
export function pop3LoginAllowed(s: Pop3CapabilityState): boolean {
  return s.secure || s.allowPlaintextLogin;
}

/**
 * The CAPA response lines (RFC 2449 §5), without the terminating ".". USER and SASL PLAIN
 * only when a login would be accepted; STLS (RFC 2595 §4) only when TLS is configured and not
 * yet active. TOP/UIDL/PIPELINING/RESP-CODES describe the backend (Dovecot) after login.
 */
export function pop3Capabilities(s: Pop3CapabilityState): string[] {
  const caps = ['CAPA', 'TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE'];
  if (pop3LoginAllowed(s)) caps.push('USER', 'SASL PLAIN');
  if (s.tlsAvailable && !s.secure) caps.push('STLS');
  caps.push('IMPLEMENTATION mailmesh');
  return caps;
}
