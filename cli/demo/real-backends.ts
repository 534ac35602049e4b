import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { startDovecot, type DovecotInstance, type DovecotUser } from './backends/dovecot.ts';
import { startPostfix, type PostfixInstance } from './backends/postfix.ts';
import { realBackendsInstalled } from './backends/system.ts';
import { issueLeaf } from '../../ca/issue.ts';
import { generateKeyPair, privateKeyToPem } from '../../ca/keys.ts';
import { loadCa } from '../../ca/load.ts';
import { PRIVATE_MODE, PUBLIC_MODE, writeFilesAtomic } from '../../common/files.ts';

export { realBackendsInstalled };
export type { DovecotInstance, PostfixInstance };

/** The real mail servers of one shard: its Dovecot (mailboxes) and its Postfix (the queue). */
export interface ShardBackends {
  dovecot: DovecotInstance;
  postfix: PostfixInstance;
  /** Stop Postfix, then Dovecot (by PID). */
  stop(): Promise<void>;
}

/** Options of {@link startShardBackends}. */
export interface ShardBackendsOptions {
  /** The shard's directory: `dovecot/` and `postfix/` go below it. */
  dir: string;
  shardId: string;
  /** Every mailbox this Dovecot knows (the demo gives every shard every user). */
  users: DovecotUser[];
  /** Domains the shard's Postfix relays to the mesh. */
  domains: string[];
  /** Port of the Postfix smtpd the sidecar re-injects into (`backends.postfix`). */
  postfixPort: number;
  /** Port of the sidecar's socketmap (`listen.socketmap`): transport and recipient lookups. */
  socketmapPort: number;
  /** Retry deferred mail within seconds (demo and tests; production keeps Postfix's defaults). */
  fastRetry?: boolean;
}

/** The shard Postfix's smtpd is the sidecar's re-injection port, set up as deploy/postfix/master.cf
 * sets up its re-injection smtpd: the front door has already refused unknown users, so smtpd does
 * not ask the socketmap again (one round trip per message less while the sender waits). */
export const REINJECTION_SMTPD_OVERRIDES: Record<string, string> = { receive_override_options: 'no_unknown_recipient_checks' };

/**
 * Start one shard's private Dovecot and Postfix (REAL-SERVERS.md): Dovecot with LMTP/IMAP/POP3 on
 * loopback, trusting loopback proxies' client-address claims; Postfix whose smtpd is the
 * sidecar's trusted re-injection port and which asks the sidecar's socketmap where each recipient
 * lives (`transport`) and whether it exists (`recipients`). The sidecar need not run yet: Postfix
 * only asks when mail arrives.
 */
export async function startShardBackends(o: ShardBackendsOptions): Promise<ShardBackends> {
  const dovecot = await startDovecot({ dir: join(o.dir, 'dovecot'), users: o.users, loginTrustedNetworks: ['127.0.0.0/8'] });
  let postfix: PostfixInstance;
  try {
    const map = (name: string) => `socketmap:inet:127.0.0.1:${o.socketmapPort}:${name}`;
    postfix = await startPostfix({
      dir: join(o.dir, 'postfix'),
      smtpPort: o.postfixPort,
      hostname: `mx-${o.shardId}.${o.domains[0]}`,
      relayDomains: o.domains,
      transportMaps: map('transport'),
      relayRecipientMaps: map('recipients'),
      smtpdOverrides: REINJECTION_SMTPD_OVERRIDES,
      fastRetry: o.fastRetry,
    });
  } catch (err) {
    await dovecot.stop();
    throw err;
  }
  return {
    dovecot, postfix,
    async stop() {
      await postfix.stop();
      await dovecot.stop();
    },
  };
}

/** A random mailbox password (URL-safe base64: no ':' to break a passwd-file line). */
export function randomPassword(): string {
  return randomBytes(12).toString('base64url');
}

/**
 * Issue the public certificate a shard's front doors present (SMTP STARTTLS, IMAP STARTTLS, POP3
 * STLS) from the demo CA, at demo time (the same code path as `mailmesh ca issue`), never a
 * built-in one. Its identity is outside the node namespace (`spiffe://TD/public/SHARD`), so the key
 * that sits beside the public listeners is no mesh credential. Writes PREFIX.crt (leaf then issuer)
 * and PREFIX.key (0600) and returns their paths.
 */
export async function issuePublicCert(caDir: string, shardId: string, outPrefix: string, dnsNames: string[]): Promise<{ cert: string; key: string }> {
  const ca = await loadCa(caDir);
  const kp = generateKeyPair('P-256');
  const leaf = issueLeaf(ca.issuer, { publicKey: kp.publicKey, spiffeId: `spiffe://${ca.trustDomain}/public/${shardId}`, dnsNames, ttlMs: 24 * 3_600_000 });
  const files = { cert: `${outPrefix}.crt`, key: `${outPrefix}.key` };
  await mkdir(dirname(outPrefix), { recursive: true });
  await writeFilesAtomic([
    { path: files.key, data: privateKeyToPem(kp.privateKey), mode: PRIVATE_MODE },
    { path: files.cert, data: leaf.chainPem, mode: PUBLIC_MODE },
  ]);
  return files;
}
