import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { createCsr } from '../../../ca/csr.ts';
import { issueLeaf } from '../../../ca/issue.ts';
import { generateKeyPair, KEY_ALGORITHMS, privateKeyToPem, type KeyAlgorithm } from '../../../ca/keys.ts';
import { loadCa } from '../../../ca/load.ts';
import { parseCertificates } from '../../../ca/pem.ts';
import { toPkcs12 } from '../../../ca/pkcs12.ts';
import { parseSpiffeId } from '../../../ca/spiffe.ts';
import { PRIVATE_MODE, PUBLIC_MODE, writeFilesAtomic } from '../../../common/files.ts';
import { CliError, EXIT } from '../../main.ts';
import { durationArg, examples } from '../../flags.ts';

interface IssueFlags {
  dir: string;
  spiffeId: string;
  dns: string[];
  ttl: number;
  out: string;
  p12?: string;
  keyAlgorithm: KeyAlgorithm;
}

const collect = (v: string, acc: string[]) => [...acc, v];

async function readPassword(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError('ERR_P12_PASSWORD', `cannot read the PKCS#12 password file ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'}): pass a readable file holding the password`, EXIT.usage);
  }
  // One trailing newline is how editors and `echo` end a one-line file; it is not part of the password.
  const password = text.replace(/\r?\n$/, '');
  if (password.length === 0) throw new CliError('ERR_P12_PASSWORD', `the PKCS#12 password file ${file} is empty: put a password in it`, EXIT.usage);
  return password;
}

/** `mailmesh ca issue --dir DIR --spiffe-id ID [--dns NAME]... [--ttl 1h] --out PREFIX [--p12 PASSWORD-FILE]` */
export function register(parent: Command): void {
  parent
    .command('issue')
    .description('issue a leaf certificate: PREFIX.crt (leaf then issuing CA) and PREFIX.key (0600)')
    .requiredOption('--dir <dir>', 'CA directory made by mailmesh ca init (root.key is not needed)')
    .requiredOption('--spiffe-id <id>', 'identity, e.g. spiffe://mail.example/shard/tokyo-1/node/a')
    .option('--dns <name>', 'DNS name to add as a SAN (repeatable)', collect, [])
    .addOption(new Option('--ttl <duration>', 'lifetime, capped by the issuing CA (e.g. 90m, 1h, 7d)').argParser(durationArg).default(3_600_000, '1h'))
    .requiredOption('--out <prefix>', 'write PREFIX.crt and PREFIX.key')
    .option('--p12 <password-file>', 'also write PREFIX.p12 protected by the password in this file')
    .addOption(new Option('--key-algorithm <alg>', 'algorithm of the new leaf key').choices(KEY_ALGORITHMS).default('P-256'))
    .addHelpText('after', examples([
      'mailmesh ca issue --dir ./ca --spiffe-id spiffe://mail.example/shard/tokyo-1/node/a --out ./tls/node',
      'mailmesh ca issue --dir ./ca --spiffe-id spiffe://mail.example/shard/tokyo-1/node/a --dns mx1.mail.example --ttl 24h --out ./tls/mx1',
      'mailmesh ca issue --dir ./ca --spiffe-id spiffe://mail.example/client/alice --out alice --p12 ./p12-password.txt',
    ]))
    .action(async (o: IssueFlags) => {
      // Check what can be checked before touching the CA or writing anything.
      try {
        parseSpiffeId(o.spiffeId);
      } catch (err) {
        throw new CliError('ERR_NOT_SPIFFE', `--spiffe-id: ${(err as Error).message}`, EXIT.usage);
      }
      const password = o.p12 === undefined ? undefined : await readPassword(o.p12);
      const ca = await loadCa(o.dir);
      if (parseSpiffeId(o.spiffeId).trustDomain !== ca.trustDomain) {
        throw new CliError('ERR_WRONG_TRUST_DOMAIN', `--spiffe-id ${o.spiffeId} is outside the CA's trust domain ${ca.trustDomain}: use spiffe://${ca.trustDomain}/…`, EXIT.usage);
      }
      // The CLI goes through the same CSR path as a remote node would.
      const kp = generateKeyPair(o.keyAlgorithm);
      const leaf = issueLeaf(ca.issuer, { csr: createCsr(kp), spiffeId: o.spiffeId, dnsNames: o.dns, ttlMs: o.ttl });
      const files: { path: string; data: string | Buffer; mode: number }[] = [
        { path: `${o.out}.key`, data: privateKeyToPem(kp.privateKey), mode: PRIVATE_MODE },
        { path: `${o.out}.crt`, data: leaf.chainPem, mode: PUBLIC_MODE },
      ];
      if (password !== undefined) {
        files.push({ path: `${o.out}.p12`, data: toPkcs12(kp.privateKey, parseCertificates(leaf.chainPem), password, { friendlyName: leaf.spiffeId }), mode: PRIVATE_MODE });
      }
      await writeFilesAtomic(files);
      process.stdout.write(`issued ${leaf.spiffeId} serial ${leaf.serial} valid ${leaf.notBefore.toISOString()} → ${leaf.notAfter.toISOString()}: ${files.map((f) => f.path).join(' ')}\n`);
    });
}
