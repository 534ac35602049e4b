import type { SidecarMetrics } from '../common/metrics.ts';
import { findDomain } from '../policies/index.ts';
import { addAuthResults, createResolver, createSigner, decide, loadSigningKeys, verifyMessage, type EnforcementMode, type LookupFn } from './auth/index.ts';
import type { SidecarConfig } from './config.ts';
import type { CheckInput, CheckOutcome } from './mail/frontdoor.ts';
import type { MeshView } from './view.ts';

/**
 * The front door's mail-authentication step: SPF, DKIM, ARC and DMARC with the operator's
 * resolver, then the recipients' domain mode from policy decides (RFC 7489 §6.6.2 and the
 * issue's table in sidecar/auth/decide.ts). Returns undefined when `mailAuth: false`.
 * `lookup` defaults to the caching resolver over `cfg.dns.servers`; a benchmark passes one
 * over an in-memory zone.
 */
export function mailAuthCheck(
  cfg: SidecarConfig, view: MeshView, metrics: SidecarMetrics, lookup?: LookupFn,
): ((input: CheckInput) => Promise<CheckOutcome>) | undefined {
  if (cfg.mailAuth === false) return undefined;
  const resolver = lookup ?? createResolver({ servers: cfg.dns?.servers });
  const authservId = cfg.authservId ?? cfg.hostname;
  return async (input) => {
    const verdict = await verifyMessage({ message: input.message, ip: input.ip, helo: input.helo, mailFrom: input.mailFrom, resolver, authservId, trustedArcSealers: cfg.trustedArcSealers });
    // One message, one decision: if any recipient's domain enforces, the message is enforced.
    const modes = new Set<EnforcementMode>(
      input.recipients.map((r) => (view.compiled ? findDomain(view.compiled, r.slice(r.lastIndexOf('@') + 1))?.auth?.mode : undefined) ?? 'enforce'),
    );
    const decision = decide(verdict, modes.has('enforce') ? 'enforce' : 'monitor');
    metrics.authResults.inc({ method: 'spf', result: verdict.spf.result });
    for (const d of verdict.dkim) metrics.authResults.inc({ method: 'dkim', result: d.result });
    metrics.authResults.inc({ method: 'dmarc', result: verdict.dmarc.result });
    metrics.authResults.inc({ method: 'arc', result: verdict.arc.result });
    // Logged by the front door in its one event per message.
    const auth = { action: decision.action, reason: decision.reason, spf: verdict.spf.result, dmarc: verdict.dmarc.result };
    if (decision.smtp && (decision.action === 'reject' || decision.action === 'tempfail')) return { refuse: decision.smtp, message: input.message, auth };
    return { message: addAuthResults(input.message, authservId, verdict.headerValue, decision.headers ?? []), auth };
  };
}

/** The outbound filter's signer: DKIM with the configured keys (files, never the policy repo);
 * mail from a domain without a key passes unsigned. */
export async function outboundSigner(cfg: SidecarConfig): Promise<(message: Buffer, fromDomain: string) => Promise<Buffer>> {
  const signer = createSigner({ keys: await loadSigningKeys(cfg.dkimKeys ?? []) });
  return async (message, fromDomain) => (fromDomain && signer.canSign(fromDomain) ? signer.sign(message, fromDomain) : message);
}
