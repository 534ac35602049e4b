// Shared test material: keys, DKIM key records, messages.
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import type { SigningKey } from '../../sidecar/auth/keys.ts';

/** A fresh signing key and its DKIM key record (RFC 6376 §3.6.1, RFC 8463 §4.2 for Ed25519). */
export function makeKey(domain: string, selector: string, algorithm: 'rsa-sha256' | 'ed25519-sha256', bits = 2048): { key: SigningKey; txt: string } {
  const { privateKey } =
    algorithm === 'rsa-sha256' ? generateKeyPairSync('rsa', { modulusLength: bits }) : generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  // Ed25519 records carry the raw 32-byte key, RSA records the SubjectPublicKeyInfo.
  const p = algorithm === 'rsa-sha256' ? spki.toString('base64') : spki.subarray(spki.length - 32).toString('base64');
  return { key: { domain, selector, algorithm, privateKeyPem: pem }, txt: `v=DKIM1; k=${algorithm === 'rsa-sha256' ? 'rsa' : 'ed25519'}; p=${p}` };
}

/** Split a long TXT value into ≤255-byte character-strings (RFC 1035 §3.3.14). */
export function txtChunks(value: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < value.length; i += 255) out.push(value.slice(i, i + 255));
  return out;
}

/** A plain RFC 5322 message with CRLF line ends; `bodyBytes` pads the body. */
export function makeMessage(opts: { from: string; to?: string; subject?: string; bodyBytes?: number; extraHeaders?: string[] }): Buffer {
  const lines = [
    ...(opts.extraHeaders ?? []),
    `From: ${opts.from}`,
    `To: ${opts.to ?? 'bob@mail.test'}`,
    `Subject: ${opts.subject ?? 'hello'}`,
    'Date: Thu, 01 Jan 2026 00:00:00 +0000',
    `Message-ID: <${Math.random().toString(36).slice(2)}@test>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
  ];
  let body = 'Hello Bob,\r\nthis is a test.\r\n';
  const target = opts.bodyBytes ?? 0;
  const line = 'The quick brown fox jumps over the lazy dog 0123456789 abcdefghij.\r\n';
  while (body.length < target) body += line;
  return Buffer.from(lines.join('\r\n') + '\r\n' + body, 'utf8');
}

/**
 * Zone entries for a sender domain: SPF, DMARC and DKIM key records, plus NXDOMAIN for the
 * names the DMARC tree walk (RFC 9989 §4.10) asks about above it, so a zone-map resolver in
 * 'fail' mode sees only expected questions.
 */
export function senderZone(domain: string, opts: { spf?: string; dmarc?: string; keys?: { selector: string; txt: string }[] }): Record<string, (string | Record<string, unknown>)[]> {
  const zone: Record<string, (string | Record<string, unknown>)[]> = {};
  zone[domain] = opts.spf ? [{ TXT: opts.spf }] : [{ TXT: 'NONE' }];
  zone[`_dmarc.${domain}`] = opts.dmarc ? [{ TXT: opts.dmarc }] : ['NXDOMAIN'];
  for (const k of opts.keys ?? []) zone[`${k.selector}._domainkey.${domain}`] = [{ TXT: txtChunks(k.txt) }];
  const labels = domain.split('.');
  for (let i = 1; i < labels.length; i++) zone[`_dmarc.${labels.slice(i).join('.')}`] ??= ['NXDOMAIN'];
  return zone;
}
