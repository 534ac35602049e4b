// An independent DKIM verifier for cross-checks: OpenDKIM's opendkim-testmsg (Debian package
// opendkim-tools) against keys published in a real knotd.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeKnotFiles } from './knot.ts';

/** A verifier bound to one set of zones; `close()` removes its temp dir. */
export interface OpendkimVerifier {
  /** Run opendkim-testmsg on `message`; status 0 = every signature it checked verified. */
  check(name: string, message: Buffer): Promise<SpawnSyncReturns<string>>;
  close(): Promise<void>;
}

/**
 * opendkim-testmsg has no DNS server option: libopendkim asks the servers in /etc/resolv.conf on
 * port 53. So each check runs in private network + mount namespaces (root only), where a knotd
 * serving `zones` listens on 127.0.0.1:53 and a bind-mounted resolv.conf points there. Nothing
 * leaves the namespace; both processes end with it. `probe` is a name knotd must answer (SOA)
 * before the check starts. Callers check for root, knotd, kdig, unshare and opendkim-testmsg.
 *
 * @example
 * const odk = await opendkimVerifier(knotd, ZONES, 'sender.example');
 * assert.equal((await odk.check('ok', signed)).status, 0);
 */
export async function opendkimVerifier(knotd: string, zones: Record<string, string>, probe: string): Promise<OpendkimVerifier> {
  const dir = await mkdtemp(join(tmpdir(), 'mailmesh-odk-'));
  await writeKnotFiles(dir, '127.0.0.1@53', zones);
  await writeFile(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
  return {
    async check(name, message) {
      await writeFile(join(dir, `${name}.eml`), message);
      const script = [
        'ip link set lo up',
        `mount --bind ${dir}/resolv.conf /etc/resolv.conf`,
        `${knotd} -c ${dir}/knot.conf 2>${dir}/knot.err & K=$!`,
        // wait for knotd to answer (process start-up, not time-based logic)
        `i=0; until kdig @127.0.0.1 +short +timeout=1 SOA ${probe} >/dev/null 2>&1 || [ $i -ge 100 ]; do i=$((i+1)); sleep 0.05; done`,
        `opendkim-testmsg < ${dir}/${name}.eml; RC=$?`,
        'kill $K; wait $K 2>/dev/null; exit $RC',
      ].join('\n');
      return spawnSync('unshare', ['--net', '--mount', 'sh', '-c', script], { encoding: 'utf8', timeout: 30_000 });
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
}
