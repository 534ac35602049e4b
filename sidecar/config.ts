import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { Ajv } from 'ajv';
import { MailmeshError } from '../common/errors.ts';

/** `host:port` on which a listener binds or a backend answers. */
export type Address = string;

/** The sidecar's configuration file (docs/internals.md). Paths are relative to the file. */
export interface SidecarConfig {
  shard: string;
  node: string;
  controlPlane: Address;
  /** The control plane's trust bundle for the very first connection (before we have one). */
  caBundle: string;
  joinTokenFile?: string;
  stateDir: string;
  tlsDir?: string;
  reloadCommand?: string;
  mode: 'postfix' | 'embedded';
  hostname: string;
  listen: {
    mesh: Address;
    smtp?: Address;
    imap?: Address;
    imaps?: Address;
    pop3?: Address;
    pop3s?: Address;
    socketmap?: Address;
    /** The LMTP listener Postfix delivers remote shards' mail to: `127.0.0.1:10030`, or
     * `unix:/path` (Postfix's LMTP client spends less CPU per delivery on a Unix socket). */
    egress?: string;
    filter?: Address;
    metrics?: Address;
  };
  backends: {
    /** Postfix's trusted re-injection smtpd: `127.0.0.1:10025`, or its Unix socket `unix:/path`. */
    postfix?: string;
    /** Dovecot LMTP: `host:port` or `unix:/path` (its default socket, e.g. `unix:/run/dovecot/lmtp`). */
    lmtp?: string;
    imap?: Address;
    pop3?: Address;
    maildir?: string;
  };
  publicTls?: { cert: string; key: string };
  dns?: { servers?: string[] };
  /** Authserv-id in Authentication-Results (RFC 8601 §2.5); default `hostname`. */
  authservId?: string;
  /** ARC sealers whose verdict we trust for forwarded mail (RFC 8617). */
  trustedArcSealers?: string[];
  /** DKIM keys for outbound signing: files, never in the policy repo. */
  dkimKeys?: { domain: string; selector: string; algorithm: 'rsa-sha256' | 'ed25519-sha256'; keyFile: string }[];
  limits: { maxMessageBytes: number; maxRecipients: number; maxClients: number };
  tlsGroups?: string;
  /** SPF/DKIM/DMARC/ARC checks at the front door (default true). */
  mailAuth?: boolean;
  /** IMAP LOGIN / POP3 USER+PASS before STARTTLS (default false: refused with PRIVACYREQUIRED). */
  allowPlaintextLogin?: boolean;
}

const address = { type: 'string', pattern: '^(\\[[0-9a-fA-F:.]+\\]|[^:\\s]+):\\d{1,5}$' };
/** A local backend or listener: `host:port`, or `unix:/absolute/path` (Dovecot's LMTP socket, the egress). */
const backendAddress = { type: 'string', pattern: '^((?!unix:)(\\[[0-9a-fA-F:.]+\\]|[^:\\s]+):\\d{1,5}|unix:/\\S+)$' };
const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['shard', 'node', 'controlPlane', 'caBundle', 'stateDir', 'listen'],
  properties: {
    shard: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$' },
    node: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$' },
    controlPlane: address,
    caBundle: { type: 'string' },
    joinTokenFile: { type: 'string' },
    stateDir: { type: 'string' },
    tlsDir: { type: 'string' },
    reloadCommand: { type: 'string' },
    mode: { enum: ['postfix', 'embedded'] },
    hostname: { type: 'string' },
    listen: {
      type: 'object', additionalProperties: false, required: ['mesh'],
      properties: { ...Object.fromEntries(['mesh', 'smtp', 'imap', 'imaps', 'pop3', 'pop3s', 'socketmap', 'filter', 'metrics'].map((k) => [k, address])), egress: backendAddress },
    },
    backends: {
      type: 'object', additionalProperties: false,
      properties: { postfix: backendAddress, lmtp: backendAddress, imap: address, pop3: address, maildir: { type: 'string' } },
    },
    publicTls: { type: 'object', additionalProperties: false, required: ['cert', 'key'], properties: { cert: { type: 'string' }, key: { type: 'string' } } },
    dns: { type: 'object', additionalProperties: false, properties: { servers: { type: 'array', items: { type: 'string' } } } },
    authservId: { type: 'string' },
    trustedArcSealers: { type: 'array', items: { type: 'string' } },
    dkimKeys: {
      type: 'array',
      items: {
        type: 'object', additionalProperties: false, required: ['domain', 'selector', 'algorithm', 'keyFile'],
        properties: { domain: { type: 'string' }, selector: { type: 'string' }, algorithm: { enum: ['rsa-sha256', 'ed25519-sha256'] }, keyFile: { type: 'string' } },
      },
    },
    limits: {
      type: 'object', additionalProperties: false,
      properties: { maxMessageBytes: { type: 'integer', minimum: 1024 }, maxRecipients: { type: 'integer', minimum: 1 }, maxClients: { type: 'integer', minimum: 1 } },
    },
    tlsGroups: { type: 'string' },
    mailAuth: { type: 'boolean' },
    allowPlaintextLogin: { type: 'boolean' },
  },
} as const;

const validate = new Ajv({ allErrors: true }).compile(schema);

/** Split `host:port` (IPv6 in brackets). */
export function splitAddress(addr: Address): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(addr.slice(i + 1)) };
}

/**
 * Read and check a sidecar config file; fills defaults and resolves paths against the file's
 * directory. Errors name the file and the offending key (`ERR_SIDECAR_CONFIG`).
 */
export function loadSidecarConfig(file: string): SidecarConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new MailmeshError('ERR_SIDECAR_CONFIG', `cannot read sidecar config ${file} (${code}): check the path and its permissions`);
  }
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    throw new MailmeshError('ERR_SIDECAR_CONFIG', `${file}: not valid YAML: ${(err as Error).message}`);
  }
  if (!validate(raw)) {
    const problems = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`);
    throw new MailmeshError('ERR_SIDECAR_CONFIG', `${file}: ${problems.join('; ')}`);
  }
  const c = raw as Partial<SidecarConfig> & Pick<SidecarConfig, 'shard' | 'node' | 'controlPlane' | 'caBundle' | 'stateDir' | 'listen'>;
  const base = dirname(resolve(file));
  const abs = (p: string | undefined) => (p === undefined ? undefined : resolve(base, p));
  const mode = c.mode ?? 'postfix';
  const cfg: SidecarConfig = {
    ...c,
    mode,
    hostname: c.hostname ?? `${c.node}.${c.shard}`,
    caBundle: abs(c.caBundle)!,
    joinTokenFile: abs(c.joinTokenFile),
    stateDir: abs(c.stateDir)!,
    tlsDir: abs(c.tlsDir),
    backends: { ...c.backends, maildir: abs(c.backends?.maildir) },
    publicTls: c.publicTls ? { cert: abs(c.publicTls.cert)!, key: abs(c.publicTls.key)! } : undefined,
    dkimKeys: c.dkimKeys?.map((k) => ({ ...k, keyFile: abs(k.keyFile)! })),
    limits: { maxMessageBytes: 25 * 1024 * 1024, maxRecipients: 100, maxClients: 200, ...c.limits },
  };
  if (mode === 'postfix' && (!cfg.backends.postfix || !cfg.backends.lmtp)) {
    throw new MailmeshError('ERR_SIDECAR_CONFIG', `${file}: mode postfix needs backends.postfix (re-injection smtpd) and backends.lmtp (Dovecot LMTP)`);
  }
  if (mode === 'embedded' && !cfg.backends.maildir) {
    throw new MailmeshError('ERR_SIDECAR_CONFIG', `${file}: mode embedded needs backends.maildir (a directory for the embedded Maildir store)`);
  }
  return cfg;
}
