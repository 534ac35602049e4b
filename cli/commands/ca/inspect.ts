import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { describeCertificate, type CertificateInfo } from '../../../ca/describe.ts';
import { parseCertificates } from '../../../ca/pem.ts';
import { CliError } from '../../main.ts';
import { examples, jsonOption } from '../../flags.ts';

function text(i: CertificateInfo): string {
  return [
    `identity:    ${i.spiffeId ?? '(none)'}`,
    ...(i.dnsNames.length ? [`dns names:   ${i.dnsNames.join(', ')}`] : []),
    `serial:      ${i.serial}`,
    `valid:       ${i.notBefore} → ${i.notAfter}`,
    `subject:     ${i.subject || '(empty)'}`,
    `issuer:      ${i.issuer}`,
    `ca:          ${i.isCa ? 'yes' : 'no'}`,
    `key:         ${i.keyAlgorithm}`,
    `sha256:      ${i.fingerprint256}`,
  ].join('\n');
}

/** `mailmesh ca inspect FILE [--json]` */
export function register(parent: Command): void {
  parent
    .command('inspect')
    .description('show the identity, serial, validity and issuer of the first certificate in a PEM file')
    .argument('<file>', 'PEM certificate or chain (PREFIX.crt, issuer.pem, bundle.pem)')
    .addOption(jsonOption())
    .addHelpText('after', `${examples(['mailmesh ca inspect ./tls/node.crt', 'mailmesh ca inspect ./tls/node.crt --json | jq -r .spiffeId'])}
JSON keys (stable): spiffeId (string|null), dnsNames, serial (uppercase hex), notBefore, notAfter (ISO 8601),
issuer, subject, isCa, keyAlgorithm (P-256|P-384|Ed25519|…), fingerprint256.
`)
    .action(async (file: string, o: { json?: boolean }) => {
      let pem: string;
      try {
        pem = await readFile(file, 'utf8');
      } catch (err) {
        throw new CliError('ERR_READ', `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'}): pass a PEM certificate file`);
      }
      const info = describeCertificate(parseCertificates(pem, file)[0]);
      process.stdout.write(o.json ? JSON.stringify(info, null, 2) + '\n' : text(info) + '\n');
    });
}
