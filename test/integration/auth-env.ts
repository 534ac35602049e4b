// Shared steps of the mail-authentication integration suites (40-auth-inbound, 45-auth-outbound):
// the DNS zone a real knotd serves, a MeshView over a copy of the demo policy, SMTP sends from a
// chosen loopback source address, and a look at what a Maildir tree holds.
import net from 'node:net';
import { appendFile, cp, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TrustBundle } from '../../ca/bundle.ts';
import { createRootCa } from '../../ca/mint.ts';
import { compilePolicy, loadPolicy } from '../../policies/index.ts';
import { MeshView } from '../../sidecar/view.ts';
import { MailClient, type RecipientResult } from '../../sidecar/lmtp/client.ts';
import { txtRdata } from '../helpers/knot.ts';

/** The repository's demo policy (three shards, mail.test). */
export const DEMO_POLICY = new URL('../../policies/examples/demo/', import.meta.url).pathname;

/** The source address SPF authorizes for the sender domains below. */
export const GOOD_IP = '127.0.0.2';
/** A source address no SPF record lists: a spoofer. */
export const SPOOF_IP = '127.0.0.66';

/**
 * Zones for knotd. One zone, `example`, so every name the checks ask about (including the DMARC
 * tree walk's `_dmarc.example`) gets an authoritative answer; knot REFUSES names outside its
 * zones, which the resolver rightly reads as a temporary failure.
 */
export function senderZones(keys: { domain: string; selector: string; txt: string }[] = []): Record<string, string> {
  const spf = `"v=spf1 ip4:${GOOD_IP} -all"`;
  const rows = [
    // p=reject: spoofs refused; also the domain of the signed, passing messages.
    `sender TXT ${spf}`,
    '_dmarc.sender TXT "v=DMARC1; p=reject"',
    `quarantine TXT ${spf}`,
    '_dmarc.quarantine TXT "v=DMARC1; p=quarantine"',
    // Asked for the first time only while the DNS server is down (nothing of it is cached).
    `down TXT ${spf}`,
    '_dmarc.down TXT "v=DMARC1; p=reject"',
    // A domain without a signing key in the outbound suite.
    `nokey TXT ${spf}`,
    '_dmarc.nokey TXT "v=DMARC1; p=none"',
    ...keys.map((k) => `${k.selector}._domainkey.${k.domain.replace(/\.example$/, '')} TXT ${txtRdata(k.txt)}`),
  ];
  return { example: rows.join('\n') };
}

/**
 * A MeshView whose compiled policy is the demo policy, plus the domains in `extraDomainsYaml`
 * (appended to a copy of domains.yaml in `dir`), as a sidecar holds it after a snapshot.
 */
export async function demoView(dir: string, extraDomainsYaml = ''): Promise<MeshView> {
  await cp(DEMO_POLICY, dir, { recursive: true });
  if (extraDomainsYaml) await appendFile(join(dir, 'domains.yaml'), extraDomainsYaml);
  const root = createRootCa({ trustDomain: 'mail.test' });
  const view = new MeshView('mail.test', new TrustBundle([root.cert]));
  view.compiled = compilePolicy(loadPolicy(dir));
  return view;
}

/** One SMTP transaction to 127.0.0.1:`port` from the loopback address `localAddress`. */
export async function sendFrom(port: number, localAddress: string, tx: { from: string; recipients: string[]; body: Buffer; helo?: string }): Promise<RecipientResult[]> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const client = await MailClient.open(socket, { lmtp: false, heloName: tx.helo ?? 'mx.sender.example', timeoutMs: 30_000 });
  try {
    return (await client.send({ from: tx.from, recipients: tx.recipients, body: tx.body })).recipients;
  } finally {
    await client.quit().catch(() => {});
    socket.destroy();
  }
}

/** Every message file under a Maildir root (any domain, any mailbox, new/ cur/ tmp/). */
export async function storedFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (/\/Maildir\/(?:new|cur|tmp)\/[^/]+$/.test(p)) out.push(p);
    }
  };
  await walk(root);
  return out;
}

/** The stored messages under `root` whose Subject is `subject`. */
export async function storedWithSubject(root: string, subject: string): Promise<string[]> {
  const texts = await Promise.all((await storedFiles(root)).map((f) => readFile(f, 'latin1')));
  return texts.filter((t) => new RegExp(`^Subject: ${subject.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\r?$`, 'm').test(t));
}

/** The header block of a message (up to the first empty line). */
export function headerBlock(message: string): string {
  const end = message.indexOf('\r\n\r\n');
  return end < 0 ? message : message.slice(0, end + 2);
}
