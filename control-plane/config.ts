import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { ControlPlaneError } from './errors.ts';
import { parseDuration } from '../common/duration.ts';

/** Control plane configuration (`mailmesh control-plane --config FILE`, YAML). */
export interface ControlPlaneConfig {
  /** `host:port` to serve gRPC on; port 0 picks a free one. */
  listen: string;
  /** CA directory made by `mailmesh ca init` (issuer.pem, issuer.key, bundle.pem, ca.json). */
  caDir: string;
  /** Policy directory (a git working tree). */
  policyDir: string;
  /** State directory: state.db (SQLite) and token-key.jwk, both 0600. */
  stateDir: string;
  /** Join-token audience; default the control plane's SPIFFE ID `spiffe://TD/control-plane`. */
  audience?: string;
  /** Sign requests per peer (identity, else address): default 600/min with a burst of 100. */
  signRateLimit?: { perMinute: number; burst: number };
  /** `host:port` for /metrics, /healthz and /readyz (Prometheus, kubelet probes); off when absent. */
  metrics?: string;
  /** How long after expiry a node may rejoin with its last certificate instead of a new token
   * (ms; config takes a duration such as `7d`; default 7 days). */
  expiredRenewalGraceMs?: number;
}

/** The default Sign rate limit per peer. */
export const DEFAULT_SIGN_RATE_LIMIT = { perMinute: 600, burst: 100 } as const;

const KEYS = new Set(['listen', 'caDir', 'policyDir', 'stateDir', 'audience', 'signRateLimit', 'metrics', 'expiredRenewalGrace']);

/**
 * Check a config object and resolve relative paths against `baseDir`. Throws `ERR_CONFIG` naming
 * the bad key.
 */
export function parseConfig(raw: unknown, baseDir: string, source = 'config'): ControlPlaneConfig {
  const bad = (msg: string) => new ControlPlaneError('ERR_CONFIG', `${source}: ${msg}`);
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad('expected a mapping with listen, caDir, policyDir, stateDir');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.has(k)) throw bad(`unknown key "${k}" (allowed: ${[...KEYS].join(', ')})`);
  const str = (k: string, required: boolean): string | undefined => {
    const v = o[k];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || v.length === 0) throw bad(`"${k}" must be a non-empty string`);
    return v;
  };
  const listen = str('listen', true) as string;
  if (!/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(listen)) throw bad(`"listen" must be host:port (e.g. 127.0.0.1:7443), got "${listen}"`);
  const cfg: ControlPlaneConfig = {
    listen,
    caDir: resolve(baseDir, str('caDir', true) as string),
    policyDir: resolve(baseDir, str('policyDir', true) as string),
    stateDir: resolve(baseDir, str('stateDir', true) as string),
  };
  const metrics = str('metrics', false);
  if (metrics !== undefined) {
    if (!/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(metrics)) throw bad(`"metrics" must be host:port (e.g. 0.0.0.0:9464), got "${metrics}"`);
    cfg.metrics = metrics;
  }
  const grace = str('expiredRenewalGrace', false);
  if (grace !== undefined) {
    try {
      cfg.expiredRenewalGraceMs = parseDuration(grace);
    } catch (err) {
      throw bad(`"expiredRenewalGrace": ${(err as Error).message}`);
    }
  }
  const audience = str('audience', false);
  if (audience !== undefined) cfg.audience = audience;
  if (o.signRateLimit !== undefined) {
    const rl = o.signRateLimit as Record<string, unknown>;
    if (!rl || typeof rl !== 'object' || !(Number(rl.perMinute) > 0) || !(Number(rl.burst) >= 1)) {
      throw bad('"signRateLimit" must be { perMinute: >0, burst: >=1 }');
    }
    cfg.signRateLimit = { perMinute: Number(rl.perMinute), burst: Number(rl.burst) };
  }
  return cfg;
}

/** Read a control plane config file (YAML); relative paths are resolved against its directory. */
export async function loadConfig(file: string): Promise<ControlPlaneConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ControlPlaneError('ERR_CONFIG', `cannot read config ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    throw new ControlPlaneError('ERR_CONFIG', `${file} is not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  return parseConfig(raw, dirname(resolve(file)), file);
}
