import { createSeal } from 'mailauth';
import { systemClock, type Clock } from '../../common/clock.ts';
import { AuthError } from './errors.ts';
import { checkSigningKey, type SigningKey } from './keys.ts';
import type { Verdict } from './types.ts';

/** Adds an ARC set to messages this node forwards. */
export interface Sealer {
  /**
   * Prepend ARC-Seal, ARC-Message-Signature and ARC-Authentication-Results (RFC 8617 §4.1)
   * recording `verdict` (our Authentication-Results and the chain status cv=). Throws
   * `ERR_AUTH_SEAL` when mailauth cannot seal (e.g. the chain already has 50 sets).
   */
  seal(message: Buffer, verdict: Verdict): Promise<Buffer>;
}

/**
 * Create an ARC sealer (optional: for nodes that forward mail onward, so the next hop can
 * trust our authentication results, RFC 8617 §5.1) over mailauth `createSeal`.
 *
 * @example
 * const sealer = createSealer({ key: { domain: 'mail.example', selector: 'arc1', algorithm: 'rsa-sha256', privateKeyPem } });
 * const sealed = await sealer.seal(message, verdict);
 */
export function createSealer(cfg: { key: SigningKey; clock?: Clock }): Sealer {
  checkSigningKey(cfg.key);
  const clock = cfg.clock ?? systemClock;
  return {
    async seal(message, verdict) {
      // RFC 8617 §4.1.3 / §5.1.1: cv=none for the first set, else the result of validating the chain.
      const cv = verdict.arc.instance === 0 ? 'none' : verdict.arc.result;
      const res = await createSeal(message, {
        seal: {
          signingDomain: cfg.key.domain,
          selector: cfg.key.selector,
          privateKey: cfg.key.privateKeyPem,
          algorithm: cfg.key.algorithm,
          cv,
          authResults: verdict.headerValue,
          signTime: new Date(clock.now()),
        },
      });
      if (res.errors.length > 0 || res.headers.length === 0) {
        throw new AuthError('ERR_AUTH_SEAL', `ARC sealing failed: ${res.errors.map((e) => e.err.message).join('; ') || 'no ARC set produced'}`);
      }
      return Buffer.concat([Buffer.from(res.headers.join('\r\n') + '\r\n', 'utf8'), message]);
    },
  };
}
