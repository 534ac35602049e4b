import type { CompiledPolicy } from './compiled.ts';

/**
 * May the peer with this SPIFFE ID connect to shard `shardId`? Zero trust: denied unless an
 * authorization rule lists both a matching identity pattern and the shard.
 *
 * @example
 * authorize(compiled, 'spiffe://mail.test/shard/osaka-1/node/a', 'tokyo-1') // true with the demo policy
 */
export function authorize(compiled: CompiledPolicy, peerSpiffeId: string, shardId: string): boolean {
  if (!compiled.shards.some((s) => s.id === shardId)) return false;
  for (const rule of compiled.authorization) {
    if (rule.shards !== null && !rule.shards.has(shardId)) continue;
    for (const re of rule.patterns) if (re.test(peerSpiffeId)) return true;
  }
  return false;
}
