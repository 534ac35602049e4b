import { dkimSign } from 'mailauth';
import { systemClock, type Clock } from '../../common/clock.ts';
import { AuthError } from './errors.ts';
import { checkSigningKey, type SigningKey } from './keys.ts';

/** Options of {@link createSigner}. */
export interface SignerConfig {
  keys: SigningKey[];
  clock?: Clock;
  /** Signature lifetime (x=), none by default. */
  expiresInSec?: number;
}

/** Signs outbound mail with every key of the author's domain. */
export interface Signer {
  /**
   * Prepend one DKIM-Signature per key of `fromDomain` (or of its nearest parent with keys,
   * which still aligns under relaxed DMARC alignment, RFC 7489 §3.1.1). The message bytes are
   * not changed. Throws `ERR_AUTH_NO_KEY` when no key covers the domain.
   */
  sign(message: Buffer, fromDomain: string): Promise<Buffer>;
  /** True when `fromDomain` (or a parent) has a key. */
  canSign(fromDomain: string): boolean;
}

/**
 * Create a DKIM signer (RFC 6376) over mailauth `dkimSign`. Keys are checked up front: a
 * domain may have an RSA-2048 and an Ed25519 key (RFC 8463 §1 dual signing) under different
 * selectors. relaxed/relaxed canonicalization survives common header re-folding in transit.
 *
 * @example
 * const signer = createSigner({ keys: await loadSigningKeys(refs) });
 * const signed = await signer.sign(message, 'example.org');
 */
export function createSigner(cfg: SignerConfig): Signer {
  const clock = cfg.clock ?? systemClock;
  const byDomain = new Map<string, SigningKey[]>();
  for (const k of cfg.keys) {
    checkSigningKey(k);
    const d = k.domain.toLowerCase().replace(/\.$/, '');
    byDomain.set(d, [...(byDomain.get(d) ?? []), k]);
  }
  const keysFor = (fromDomain: string): SigningKey[] | undefined => {
    const labels = fromDomain.toLowerCase().replace(/\.$/, '').split('.');
    for (let i = 0; i < labels.length - 1; i++) {
      const keys = byDomain.get(labels.slice(i).join('.'));
      if (keys) return keys;
    }
    return undefined;
  };
  return {
    canSign: (fromDomain) => keysFor(fromDomain) !== undefined,
    async sign(message, fromDomain) {
      const keys = keysFor(fromDomain);
      if (!keys) throw new AuthError('ERR_AUTH_NO_KEY', `no DKIM signing key for ${fromDomain}: add one to the domain's auth.dkim keys`);
      const now = clock.now();
      const res = await dkimSign(message, {
        signingDomain: keys[0].domain,
        selector: keys[0].selector,
        privateKey: keys[0].privateKeyPem,
        canonicalization: 'relaxed/relaxed',
        signTime: new Date(now),
        expires: cfg.expiresInSec ? new Date(now + cfg.expiresInSec * 1000) : undefined,
        signatureData: keys.map((k) => ({ signingDomain: k.domain, selector: k.selector, privateKey: k.privateKeyPem, algorithm: k.algorithm })),
      });
      if (res.errors.length > 0 || !res.signatures) {
        const why = res.errors.map((e) => `${e.selector ?? '?'}: ${e.err.message}`).join('; ') || 'no signature produced';
        throw new AuthError('ERR_AUTH_SIGN', `DKIM signing for ${fromDomain} failed: ${why}`);
      }
      return Buffer.concat([Buffer.from(res.signatures, 'utf8'), message]);
    },
  };
}
