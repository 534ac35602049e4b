import type { Command } from 'commander';
import { loadConfig } from '../../control-plane/config.ts';
import { startControlPlane } from '../../control-plane/start.ts';
import { examples } from '../flags.ts';

/** `mailmesh control-plane --config FILE`: serve until SIGTERM/SIGINT; SIGHUP reloads the policy. */
export function register(parent: Command): void {
  parent
    .command('control-plane')
    .description('run the control plane: issues certificates, streams signed snapshots (gRPC over mTLS)')
    .requiredOption('--config <file>', 'control plane config (YAML): listen, caDir, policyDir, stateDir, audience?, signRateLimit?, metrics?, expiredRenewalGrace?')
    .addHelpText('after', `
Config (relative paths are resolved against the config file's directory):
  listen: 127.0.0.1:7443          # host:port; port 0 picks a free port
  caDir: ./ca                     # made by mailmesh ca init
  policyDir: ./policy             # a git working tree; reloaded on change and on SIGHUP
                                  # (SIGHUP also reloads caDir after mailmesh ca rotate / retire-root)
  stateDir: ./state               # state.db (SQLite) and token-key.jwk, 0600
  audience: spiffe://TD/control-plane   # optional: join-token audience
  signRateLimit: { perMinute: 600, burst: 100 }   # optional: per peer identity/address
  metrics: 0.0.0.0:9464           # optional: /metrics, /healthz, /readyz
  expiredRenewalGrace: 7d         # optional: how long after expiry a node may rejoin with its last certificate

When ready it prints one JSON line on stdout: {"event":"listening","address":"127.0.0.1:PORT",...}.
Logs are JSON on stderr. SIGTERM/SIGINT stop it cleanly (exit 0).
${examples(['mailmesh control-plane --config /etc/mailmesh/control-plane.yaml', 'kill -HUP $(pidof mailmesh)   # reload the CA directory and the policy now'])}`)
    .action(async (o: { config: string }) => {
      const config = await loadConfig(o.config);
      const cp = await startControlPlane(config);
      process.stdout.write(JSON.stringify({ event: 'listening', address: cp.address, metrics: cp.metricsAddress, trustDomain: cp.trustDomain, spiffeId: cp.spiffeId, revision: cp.revision() }) + '\n');
      // SIGHUP: the CA directory first (a rotation), then the policy.
      const onHup = () => void cp.reloadCa().then(() => cp.reloadPolicy());
      process.on('SIGHUP', onHup);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      process.off('SIGHUP', onHup);
      await cp.close();
    });
}
