import { mkdir, readFile, writeFile, copyFile, chmod } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freePorts } from './ports.ts';
import { runMailmesh, spawnMailmesh, type EventProcess } from './spawn.ts';
import { assertTraversable } from './backends/system.ts';
import { issuePublicCert, randomPassword, startShardBackends, type ShardBackends } from './real-backends.ts';

/** The demo policy: three shards in two regions (policies/examples/demo). */
export const DEMO_POLICY = fileURLToPath(new URL('../../policies/examples/demo/', import.meta.url));
export const DEMO_SHARDS = [
  { id: 'tokyo-1', region: 'jp' },
  { id: 'osaka-1', region: 'jp' },
  { id: 'frankfurt-1', region: 'eu' },
] as const;

/** One shard of the running mesh, as written to `mesh.json`. */
export interface ShardInfo {
  id: string;
  region: string;
  node: string;
  smtp: string;
  mesh: string;
  imap?: string;
  pop3?: string;
  metrics: string;
  /** Mail root of the shard: `<maildir>/<domain>/<local>/Maildir` (Dovecot's in real mode). */
  maildir: string;
  /** Real mode: the shard's Postfix smtpd (re-injection) and Dovecot LMTP/IMAP/POP3. */
  postfix?: string;
  dovecot?: { lmtp: string; imap: string; pop3: string; log: string };
  /** Real mode: the public certificate of the front doors (issued by the demo CA). */
  publicCert?: string;
  tlsDir: string;
  configFile: string;
}

/** `DIR/mesh.json` (DESIGN.md "Command line"). */
export interface MeshInfo {
  /** `embedded` (sidecar Maildir stores) or `real` (a Postfix and a Dovecot per shard). */
  backends: 'embedded' | 'real';
  trustDomain: string;
  domain: string;
  ca: string;
  controlPlane: string;
  shards: ShardInfo[];
  users: { address: string; shard: string; password: string }[];
}

/** A running local mesh. */
export interface LocalMesh {
  info: MeshInfo;
  dir: string;
  controlPlane: EventProcess;
  sidecars: Map<string, EventProcess>;
  /** Real mode: each shard's Postfix and Dovecot (stop/start them to show retries). */
  real: Map<string, ShardBackends>;
  /** Start a stopped shard's sidecar again (same config, same ports). */
  restartSidecar(shardId: string): Promise<void>;
  stop(): Promise<void>;
}

const addr = (port: number) => `127.0.0.1:${port}`;

/** Options of {@link startLocalMesh}. */
export interface LocalMeshOptions {
  dir: string;
  /** `embedded` (default): sidecars with their own Maildir stores. `real`: per shard a private
   * Dovecot and Postfix (REAL-SERVERS.md) with the sidecar in `mode: postfix`. */
  backends?: 'embedded' | 'real';
  onProgress?: (line: string) => void;
}

/**
 * Start the local demo mesh on loopback: a CA, the control plane (as a process), and one sidecar
 * process per shard, each joining with its own token; in real mode also one private Dovecot and
 * Postfix per shard. Everything lives under `dir`; every process is stopped by `stop()`.
 */
export async function startLocalMesh(opts: LocalMeshOptions): Promise<LocalMesh> {
  const dir = resolve(opts.dir);
  const say = opts.onProgress ?? (() => {});
  const real = opts.backends === 'real';
  await mkdir(dir, { recursive: true });
  if (real) {
    // Postfix and Dovecot drop to their own users, which must reach their files below `dir`.
    await chmod(dir, 0o755);
    assertTraversable(dir);
  }
  const caDir = join(dir, 'ca');
  say(`creating the CA in ${caDir}`);
  await runMailmesh(['ca', 'init', '--dir', caDir, '--trust-domain', 'mail.test', '--force']);

  // Ports: the mesh addresses go into the policy, so they are fixed before anything starts.
  const ports = await freePorts(1 + DEMO_SHARDS.length * 8);
  const cpPort = ports.shift()!;
  const shardPorts = DEMO_SHARDS.map(() => ({
    mesh: ports.shift()!, smtp: ports.shift()!, egress: ports.shift()!, socketmap: ports.shift()!, metrics: ports.shift()!,
    imap: ports.shift()!, pop3: ports.shift()!, postfix: ports.shift()!,
  }));

  const policyDir = join(dir, 'policy');
  await mkdir(policyDir, { recursive: true });
  for (const f of ['domains.yaml', 'users.csv']) await copyFile(join(DEMO_POLICY, f), join(policyDir, f));
  const mesh = (await readFile(join(DEMO_POLICY, 'mesh.yaml'), 'utf8'));
  let i = 0;
  await writeFile(join(policyDir, 'mesh.yaml'), mesh.replace(/mesh: 127\.0\.0\.1:0/g, () => `mesh: ${addr(shardPorts[i++].mesh)}`));

  const cpConfig = join(dir, 'control-plane.yaml');
  await writeFile(cpConfig, stringify({ listen: addr(cpPort), caDir, policyDir, stateDir: join(dir, 'control-plane') }));
  say(`starting the control plane on ${addr(cpPort)}`);
  const controlPlane = spawnMailmesh(['control-plane', '--config', cpConfig]);
  const sidecars = new Map<string, EventProcess>();
  const backends = new Map<string, ShardBackends>();
  const stop = async () => {
    await Promise.all([...sidecars.values()].map((p) => p.stop()));
    await Promise.all([...backends.values()].map((b) => b.stop()));
    await controlPlane.stop();
  };
  try {
    await controlPlane.waitFor((e) => e.event === 'listening');
    const addresses = (await readFile(join(policyDir, 'users.csv'), 'utf8')).split('\n').slice(1).filter(Boolean).map((l) => l.split(',')[0]);
    const routed = JSON.parse(await runMailmesh(['policy', 'route', policyDir, ...addresses, '--json'])) as { address: string; shard: string }[];
    const users = routed.map((r) => ({ address: r.address, shard: r.shard, password: real ? randomPassword() : '' }));
    if (real) {
      say('starting a private Dovecot and Postfix per shard');
      // allSettled: every shard's servers are registered (and so stopped) before a failure is thrown.
      const started = await Promise.allSettled(DEMO_SHARDS.map(async (s, k) => {
        const b = await startShardBackends({
          dir: join(dir, 'shards', s.id), shardId: s.id, users, domains: ['mail.test'],
          postfixPort: shardPorts[k].postfix, socketmapPort: shardPorts[k].socketmap, fastRetry: true,
        });
        backends.set(s.id, b);
      }));
      const failed = started.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    }
    const shards: ShardInfo[] = [];
    for (const [k, s] of DEMO_SHARDS.entries()) {
      const p = shardPorts[k];
      const node = `${s.id}-a`;
      const shardDir = join(dir, 'shards', s.id);
      await mkdir(shardDir, { recursive: true });
      const token = (await runMailmesh(['token', 'create', '--config', cpConfig, '--shard', s.id, '--node', node])).trim();
      const tokenFile = join(shardDir, 'join-token');
      await writeFile(tokenFile, token + '\n', { mode: 0o600 });
      await chmod(tokenFile, 0o600);
      const info: ShardInfo = {
        id: s.id, region: s.region, node,
        smtp: addr(p.smtp), mesh: addr(p.mesh), metrics: addr(p.metrics),
        maildir: join(shardDir, 'maildir'), tlsDir: join(shardDir, 'tls'), configFile: join(shardDir, 'sidecar.yaml'),
      };
      const listen: Record<string, string> = { mesh: info.mesh, smtp: info.smtp, egress: addr(p.egress), socketmap: addr(p.socketmap), metrics: info.metrics };
      let mode: Record<string, unknown> = { mode: 'embedded', backends: { maildir: info.maildir } };
      const b = backends.get(s.id);
      if (b) {
        const dc = b.dovecot;
        info.imap = listen.imap = addr(p.imap);
        info.pop3 = listen.pop3 = addr(p.pop3);
        info.maildir = dc.mailRoot;
        info.postfix = addr(p.postfix);
        // Postfix reaches the egress on a Unix socket (its LMTP client spends less CPU per delivery
        // than over loopback TCP). This path and Postfix's re-injection socket (below) are shorter
        // than sockets Dovecot has already bound under shardDir (run/token-login/imap-urlauth),
        // so they fit a sun_path (108 bytes) whenever Dovecot started.
        listen.egress = `unix:${join(shardDir, 'egress.sock')}`;
        info.dovecot = { lmtp: addr(dc.lmtpPort), imap: addr(dc.imapPort), pop3: addr(dc.pop3Port), log: dc.logPath };
        // Public listeners need a certificate: plaintext logins are refused before STARTTLS.
        const pub = await issuePublicCert(caDir, s.id, join(shardDir, 'public', 'tls'), ['localhost', `${node}.mail.test`]);
        info.publicCert = pub.cert;
        mode = {
          mode: 'postfix', publicTls: pub,
          // Dovecot's LMTP socket, as Debian's Dovecot offers it: Postfix's local deliveries and
          // the mesh ingress both use it. The front door and the outbound filter re-inject into
          // Postfix's smtpd on its Unix socket (the same smtpd settings as on the TCP port, which
          // tests and mesh.json name).
          backends: { postfix: `unix:${b.postfix.reinjectSocket}`, lmtp: `unix:${dc.lmtpSocket}`, imap: info.dovecot.imap, pop3: info.dovecot.pop3 },
        };
      }
      await writeFile(info.configFile, stringify({
        shard: s.id, node, controlPlane: addr(cpPort), caBundle: join(caDir, 'bundle.pem'), joinTokenFile: tokenFile,
        stateDir: join(shardDir, 'state'), tlsDir: info.tlsDir, hostname: `${node}.mail.test`,
        listen, ...mode,
        limits: { maxMessageBytes: 1024 * 1024, maxRecipients: 50, maxClients: 100 },
        // No DNS on a demo machine: mail authentication is shown by the tests with a real DNS server.
        mailAuth: false,
      }));
      shards.push(info);
    }
    say('starting one sidecar per shard');
    for (const s of shards) sidecars.set(s.id, spawnMailmesh(['sidecar', '--config', s.configFile]));
    await Promise.all(shards.map((s) => sidecars.get(s.id)!.waitFor((e) => e.event === 'ready', 60_000)));
    const info: MeshInfo = { backends: real ? 'real' : 'embedded', trustDomain: 'mail.test', domain: 'mail.test', ca: caDir, controlPlane: addr(cpPort), shards, users };
    // Passwords are in it (real mode): readable by the owner only.
    await writeFile(join(dir, 'mesh.json'), JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });
    return {
      info, dir, controlPlane, sidecars, real: backends, stop,
      async restartSidecar(shardId) {
        const s = shards.find((x) => x.id === shardId)!;
        await sidecars.get(shardId)?.stop();
        const p = spawnMailmesh(['sidecar', '--config', s.configFile]);
        sidecars.set(shardId, p);
        await p.waitFor((e) => e.event === 'ready', 60_000);
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
