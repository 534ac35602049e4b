import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { examples, jsonOption } from '../flags.ts';
import { startLocalMesh, type MeshInfo } from '../demo/local-mesh.ts';
import { realBackendsInstalled } from '../demo/real-backends.ts';
import { awaitMailboxes, mailboxes, sendSamples } from '../demo/sample-mail.ts';
import { CliError, EXIT } from '../main.ts';

/** Commands to poke the running mesh with (the public certificate names `localhost`, not 127.0.0.1). */
function tryIt(info: MeshInfo): string {
  const [a, b] = info.shards;
  const user = info.users.find((u) => u.shard === a.id) ?? info.users[0];
  const port = (hostPort: string) => hostPort.split(':').pop();
  const lines = ['\ntry it (another terminal):', `  swaks --server ${b.smtp} --from you@example.org --to ${user.address}    # enters at ${b.id}, lands on ${user.shard}`];
  if (a.imap) {
    const cafile = join(info.ca, 'bundle.pem');
    lines.push(`  curl --ssl-reqd --cacert ${cafile} -u '${user.address}:${user.password}' imap://localhost:${port(b.imap!)}/INBOX -X 'EXAMINE INBOX'`);
    lines.push(`  openssl s_client -starttls imap -CAfile ${cafile} -connect localhost:${port(b.imap!)}`);
  } else {
    lines.push(`  ls ${a.maildir}/${user.address.split('@')[1]}/${user.address.split('@')[0]}/Maildir/new   # embedded backends: no IMAP/POP3 (use --backends real)`);
  }
  return lines.join('\n');
}

/** `mailmesh demo`: a local mesh on loopback, sample mail, and where it landed. */
export function register(program: Command): void {
  program
    .command('demo')
    .description('start a local mesh on loopback (control plane + three shards in two regions), send sample mail, show where it landed')
    .option('--keep-running', 'leave the mesh up (Ctrl-C stops it) and write DIR/mesh.json')
    .option('--dir <dir>', 'where the CA, policy, certificates and mailboxes go (default: a new temp dir)')
    .addOption(new Option('--backends <kind>', 'real: a private Postfix and Dovecot per shard; embedded: the sidecars\' own Maildir stores (default: real when postfix and dovecot are installed)').choices(['embedded', 'real']))
    .addOption(jsonOption())
    .addHelpText('after', examples(['mailmesh demo', 'mailmesh demo --keep-running --dir ./demo-out', 'mailmesh demo --backends embedded', 'mailmesh demo --json | jq .mailboxes']))
    .action(async (opts: { keepRunning?: boolean; dir?: string; json?: boolean; backends?: 'embedded' | 'real' }) => {
      const backends = opts.backends ?? (realBackendsInstalled() && process.getuid?.() === 0 ? 'real' : 'embedded');
      if (backends === 'real' && !realBackendsInstalled()) {
        throw new CliError('ERR_DEMO_BACKENDS', '--backends real needs postfix and dovecot: apt-get install -y postfix dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd, or use --backends embedded', EXIT.usage);
      }
      if (backends === 'real' && process.getuid?.() !== 0) {
        throw new CliError('ERR_DEMO_BACKENDS', '--backends real starts private Postfix and Dovecot instances, which needs root: run as root or use --backends embedded', EXIT.usage);
      }
      if (opts.dir !== undefined && existsSync(opts.dir) && !statSync(opts.dir).isDirectory()) {
        throw new CliError('ERR_DEMO_DIR', `--dir ${opts.dir} is a file: pass a new or existing directory`);
      }
      const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'mailmesh-demo-')));
      const say = (line: string) => {
        if (!opts.json) process.stdout.write(`• ${line}\n`);
      };
      const mesh = await startLocalMesh({ dir, backends, onProgress: say });
      try {
        say(`mesh up (${backends} backends): control plane ${mesh.info.controlPlane}, shards ${mesh.info.shards.map((s) => `${s.id} (${s.region}) smtp ${s.smtp}${s.imap ? ` imap ${s.imap} pop3 ${s.pop3}` : ''}`).join(', ')}`);
        const samples = await sendSamples(mesh.info, 1024 * 1024);
        // Real mode: 250 means Postfix queued it; wait (bounded) for the deliveries to land.
        const expected = new Map(samples[0].replies.filter((r) => r.reply.startsWith('250')).map((r) => [r.address, 1] as const));
        const boxes = backends === 'real' ? await awaitMailboxes(mesh.info, expected, 30_000) : await mailboxes(mesh.info);
        const certs = await Promise.all(
          mesh.info.shards.map(async (s) => {
            const pem = await readFile(join(s.tlsDir, 'node.crt'), 'utf8');
            const c = new X509Certificate(pem);
            return { shard: s.id, spiffeId: c.subjectAltName?.replace(/^URI:/, '') ?? '', serial: c.serialNumber, notAfter: c.validToDate.toISOString(), issuer: c.issuer.replace(/\n/g, ', ') };
          }),
        );
        if (opts.json) {
          process.stdout.write(JSON.stringify({ dir, mesh: mesh.info, samples, mailboxes: boxes, certificates: certs }, null, 2) + '\n');
        } else {
          for (const s of samples) {
            console.log(`\n${s.name} (sent to ${s.via}):`);
            for (const r of s.replies) console.log(`  ${r.address.padEnd(28)} ${r.reply}`);
          }
          console.log('\nwhere the mail landed:');
          for (const b of boxes) console.log(`  ${b.shard.padEnd(12)} ${b.mailbox.padEnd(28)} ${b.messages} message${b.messages === 1 ? '' : 's'}`);
          console.log('\ncertificates in use:');
          for (const c of certs) console.log(`  ${c.shard.padEnd(12)} ${c.spiffeId}  serial ${c.serial.slice(0, 16)}…  until ${c.notAfter}`);
          for (const s of mesh.info.shards) if (s.publicCert) console.log(`  ${s.id.padEnd(12)} public (SMTP/IMAP/POP3 STARTTLS) ${s.publicCert}, CA ${join(mesh.info.ca, 'bundle.pem')}`);
          if (opts.keepRunning) {
            console.log(`\nmesh description (addresses, users${backends === 'real' ? ', passwords' : ''}): ${join(dir, 'mesh.json')}`);
            console.log(tryIt(mesh.info));
          } else {
            console.log(`\nfiles (CA, policy, configs, mailboxes) kept in ${dir}; the mesh is stopped now.`);
            console.log('To poke a running mesh: mailmesh demo --keep-running --dir ./demo-out');
          }
        }
        if (opts.keepRunning) {
          say('running; Ctrl-C stops the mesh');
          await new Promise<void>((resolve) => {
            process.once('SIGINT', resolve);
            process.once('SIGTERM', resolve);
          });
        }
      } finally {
        // A second Ctrl-C while stopping would kill only this process and orphan the servers.
        const patience = () => process.stderr.write('mailmesh demo: still stopping the mesh, please wait\n');
        process.on('SIGINT', patience);
        process.on('SIGTERM', patience);
        say(backends === 'real' ? 'stopping the mesh (sidecars, Postfix, Dovecot, control plane: a few seconds)' : 'stopping the mesh');
        try {
          await mesh.stop();
        } finally {
          process.off('SIGINT', patience);
          process.off('SIGTERM', patience);
        }
        if (opts.keepRunning) say(`stopped; files kept in ${dir}`);
      }
    });
}
