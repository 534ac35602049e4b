import type { Command } from 'commander';
import { examples } from '../flags.ts';
import { loadSidecarConfig } from '../../sidecar/config.ts';
import { startSidecar } from '../../sidecar/run.ts';

/** `mailmesh sidecar --config FILE`: run the sidecar beside a Postfix/Dovecot node. */
export function register(program: Command): void {
  program
    .command('sidecar')
    .description('run the sidecar: identity rotation, mesh mTLS, SMTP/IMAP/POP3 front doors, routing, mail authentication')
    .requiredOption('--config <file>', 'sidecar configuration (YAML; see docs/internals.md)')
    .addHelpText('after', examples(['mailmesh sidecar --config /etc/mailmesh/sidecar.yaml']) +
      '\nLifecycle events are printed on stdout as JSON lines ({"event":"listening",…}, {"event":"ready",…});\nlogs go to stderr. SIGTERM or SIGINT stops it cleanly.\n')
    .action(async (opts: { config: string }) => {
      const cfg = loadSidecarConfig(opts.config);
      const sidecar = await startSidecar(cfg, { emit: (e) => process.stdout.write(JSON.stringify(e) + '\n') });
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      await sidecar.close();
    });
}
