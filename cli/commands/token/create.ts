import { Option, type Command } from 'commander';
import { loadCa } from '../../../ca/load.ts';
import { controlPlaneSpiffeId, nodeSpiffeId } from '../../../ca/spiffe.ts';
import { loadConfig } from '../../../control-plane/config.ts';
import { createJoinToken, loadOrCreateTokenKey, MAX_TOKEN_TTL_MS } from '../../../control-plane/token.ts';
import { loadPolicy } from '../../../policies/index.ts';
import { CliError, EXIT } from '../../main.ts';
import { durationArg, examples, jsonOption } from '../../flags.ts';

interface Flags {
  config: string;
  shard: string;
  node: string;
  ttl: number;
  json?: boolean;
}

/** `mailmesh token create --config FILE --shard S --node N [--ttl 10m] [--json]` */
export function register(parent: Command): void {
  parent
    .command('create')
    .description('make a single-use join token for a new node (needs local access to the control plane state dir)')
    .requiredOption('--config <file>', 'the control plane config (reads caDir, policyDir, stateDir)')
    .requiredOption('--shard <id>', 'shard the node belongs to (must exist in the policy)')
    .requiredOption('--node <id>', 'node name, unique within the shard')
    .addOption(new Option('--ttl <duration>', 'token lifetime (at most 24h)').argParser(durationArg).default(600_000, '10m'))
    .addOption(jsonOption())
    .addHelpText('after', `
Output: the token on stdout (one line), or with --json
  {"token":"…","spiffeId":"spiffe://TD/shard/S/node/N","jti":"…","expiresAt":"ISO-8601"}
${examples([
  'mailmesh token create --config cp.yaml --shard tokyo-1 --node tokyo-1a > join-token',
  'mailmesh token create --config cp.yaml --shard osaka-1 --node b --ttl 30m --json',
])}`)
    .action(async (o: Flags) => {
      if (o.ttl > MAX_TOKEN_TTL_MS) throw new CliError('ERR_USAGE', '--ttl is longer than 24h: join tokens are for immediate use', EXIT.usage);
      for (const [flag, v] of [['--shard', o.shard], ['--node', o.node]] as const) {
        if (!/^[A-Za-z0-9._-]+$/.test(v)) throw new CliError('ERR_USAGE', `${flag} "${v}" may only use letters, digits, '.', '-' and '_'`, EXIT.usage);
      }
      const config = await loadConfig(o.config);
      const ca = await loadCa(config.caDir);
      const policy = loadPolicy(config.policyDir);
      if (!policy.shards.some((s) => s.id === o.shard)) {
        throw new CliError('ERR_UNKNOWN_SHARD', `shard "${o.shard}" is not in the policy (${policy.shards.map((s) => s.id).join(', ')}): add it first`);
      }
      nodeSpiffeId(ca.trustDomain, o.shard, o.node);
      const key = await loadOrCreateTokenKey(config.stateDir);
      const t = await createJoinToken({ key, audience: config.audience ?? controlPlaneSpiffeId(ca.trustDomain), trustDomain: ca.trustDomain, shard: o.shard, node: o.node, ttlMs: o.ttl });
      if (o.json) process.stdout.write(JSON.stringify({ token: t.token, spiffeId: t.spiffeId, jti: t.jti, expiresAt: new Date(t.expiresAt).toISOString() }) + '\n');
      else process.stdout.write(t.token + '\n');
    });
}
