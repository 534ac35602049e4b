/**
 * An SMTP/LMTP reply for one recipient: the basic code (RFC 5321 §4.2) and the enhanced status
 * code (RFC 3463). Temporary trouble is always 4xx so the sender's queue keeps the message.
 */
export interface Reply {
  code: number;
  enhanced: string;
  message: string;
}

/** `code enhanced message`, the wire form of a single-line reply. */
export function formatReply(r: Reply): string {
  return `${r.code} ${r.enhanced} ${r.message}`;
}

/** A temporary failure: the sender retries, nothing is lost. */
export function tempfail(message: string, enhanced = '4.4.1'): Reply {
  return { code: 451, enhanced, message };
}

/** True for 2xx. */
export const isOk = (r: Reply) => r.code >= 200 && r.code < 300;
/** True for 4xx. */
export const isTemp = (r: Reply) => r.code >= 400 && r.code < 500;

/**
 * Collapse per-recipient outcomes into the one reply SMTP gives at end of DATA (RFC 5321 §4.2.5:
 * a single reply covers every accepted recipient). `250` only when every recipient's owner stored
 * the message; any temporary failure makes the whole reply 4xx, so the sender retries — owners
 * that already accepted dedupe the retry (idempotent delivery), so nobody gets it twice. Only when
 * nothing is temporary and something failed for good is the reply 5xx.
 */
export function collapse(replies: Reply[]): Reply {
  if (replies.length > 0 && replies.every(isOk)) {
    return { code: 250, enhanced: '2.0.0', message: `OK: delivered to ${replies.length} recipient${replies.length === 1 ? '' : 's'}` };
  }
  const temp = replies.find(isTemp);
  if (temp) {
    return { code: 451, enhanced: temp.enhanced.startsWith('4.') ? temp.enhanced : '4.3.0', message: `not delivered to every recipient, try again later (${temp.message})` };
  }
  const perm = replies.find((r) => r.code >= 500);
  return perm ?? { code: 451, enhanced: '4.3.0', message: 'no recipient accepted, try again later' };
}
