import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SignJWT, jwtVerify, generateKeyPair, exportJWK, importJWK, calculateJwkThumbprint, errors as joseErrors, type JWK, type CryptoKey } from 'jose';
import { parseSpiffeId, nodeSpiffeId } from '../ca/spiffe.ts';
import type { Clock } from '../common/clock.ts';
import { systemClock } from '../common/clock.ts';
import { writeFileAtomic, PRIVATE_MODE } from '../common/files.ts';
import { ControlPlaneError } from './errors.ts';

/** File name of the token signing key inside the state directory (a private JWK, mode 0600). */
export const TOKEN_KEY_FILE = 'token-key.jwk';
const ALG = 'ES256';
/** Longest join token `mailmesh token create` makes: join tokens are meant to be used at once. */
export const MAX_TOKEN_TTL_MS = 24 * 3_600_000;

/** The control plane's join-token key pair. */
export interface TokenKey {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  /** RFC 7638 thumbprint, put in the JWT `kid` header. */
  kid: string;
}

/** What a verified join token grants. */
export interface JoinClaims {
  spiffeId: string;
  shard: string;
  node: string;
  jti: string;
  /** Expiry, ms since the epoch. */
  expiresAt: number;
}

/**
 * Load the token key from `stateDir/token-key.jwk`, creating it (0600, atomically) on first use.
 * The key never leaves the state directory: `mailmesh token create` reads it locally.
 */
export async function loadOrCreateTokenKey(stateDir: string): Promise<TokenKey> {
  const path = join(stateDir, TOKEN_KEY_FILE);
  let jwk: JWK;
  try {
    jwk = JSON.parse(await readFile(path, 'utf8')) as JWK;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ControlPlaneError('ERR_STATE', `cannot read token key ${path}: ${(err as Error).message}`, { cause: err });
    }
    const pair = await generateKeyPair(ALG, { extractable: true });
    jwk = await exportJWK(pair.privateKey);
    await writeFileAtomic(path, JSON.stringify(jwk) + '\n', PRIVATE_MODE);
  }
  const { d: _d, ...pub } = jwk;
  return {
    privateKey: (await importJWK(jwk, ALG)) as CryptoKey,
    publicKey: (await importJWK(pub, ALG)) as CryptoKey,
    kid: await calculateJwkThumbprint(pub),
  };
}

/**
 * Make a single-use join token for one node: `sub` is the node's SPIFFE ID, `aud` binds it to
 * this control plane, `jti` is recorded when used, `exp` is `ttlMs` away.
 *
 * @example const { token } = await createJoinToken({ key, audience, trustDomain: 'mail.example', shard: 'tokyo-1', node: 'a', ttlMs: 600_000 })
 */
export async function createJoinToken(opts: {
  key: TokenKey;
  audience: string;
  trustDomain: string;
  shard: string;
  node: string;
  ttlMs: number;
  clock?: Clock;
}): Promise<{ token: string; spiffeId: string; jti: string; expiresAt: number }> {
  const now = (opts.clock ?? systemClock).now();
  const spiffeId = nodeSpiffeId(opts.trustDomain, opts.shard, opts.node);
  const jti = randomUUID();
  const iat = Math.floor(now / 1000);
  const exp = iat + Math.max(1, Math.round(opts.ttlMs / 1000));
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: ALG, kid: opts.key.kid, typ: 'mailmesh-join+jwt' })
    .setSubject(spiffeId)
    .setAudience(opts.audience)
    .setJti(jti)
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(exp)
    .sign(opts.key.privateKey);
  return { token, spiffeId, jti, expiresAt: exp * 1000 };
}

// Expiry and not-before are checked against the injected clock with no tolerance beyond jose's
// own: tokens are short-lived and made by the same control plane that checks them.
const CLOCK_TOLERANCE_S = 5;

/**
 * Verify a join token's signature, audience and lifetime and return the identity it grants.
 * Single use is NOT checked here (that needs the store): see control-plane/sign.ts.
 * Throws `ERR_TOKEN_INVALID_SIGNATURE`, `ERR_TOKEN_EXPIRED`, `ERR_TOKEN_AUDIENCE` or `ERR_TOKEN_INVALID`.
 */
export async function verifyJoinToken(token: string, opts: { key: TokenKey; audience: string; trustDomain: string; clock?: Clock }): Promise<JoinClaims> {
  const now = (opts.clock ?? systemClock).now();
  let payload;
  try {
    ({ payload } = await jwtVerify(token, opts.key.publicKey, {
      algorithms: [ALG],
      audience: opts.audience,
      currentDate: new Date(now),
      clockTolerance: CLOCK_TOLERANCE_S,
      requiredClaims: ['sub', 'jti', 'exp', 'aud'],
    }));
  } catch (err) {
    throw tokenError(err);
  }
  const sub = String(payload.sub);
  let id;
  try {
    id = parseSpiffeId(sub);
  } catch {
    throw new ControlPlaneError('ERR_TOKEN_INVALID', 'join token subject is not a SPIFFE ID: create a new token with mailmesh token create');
  }
  const m = /^\/shard\/([^/]+)\/node\/([^/]+)$/.exec(id.path);
  if (id.trustDomain !== opts.trustDomain || !m) {
    throw new ControlPlaneError('ERR_TOKEN_INVALID', `join token subject ${sub} is not a node of trust domain ${opts.trustDomain}`);
  }
  return { spiffeId: sub, shard: m[1], node: m[2], jti: String(payload.jti), expiresAt: Number(payload.exp) * 1000 };
}

function tokenError(err: unknown): ControlPlaneError {
  if (err instanceof joseErrors.JWTExpired) {
    return new ControlPlaneError('ERR_TOKEN_EXPIRED', 'join token has expired: create a new one with mailmesh token create', { cause: err });
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new ControlPlaneError('ERR_TOKEN_INVALID_SIGNATURE', 'join token signature does not verify: it was not made by this control plane', { cause: err });
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === 'aud') {
    return new ControlPlaneError('ERR_TOKEN_AUDIENCE', 'join token is for another control plane (audience mismatch)', { cause: err });
  }
  return new ControlPlaneError('ERR_TOKEN_INVALID', `join token is not valid: ${(err as Error).message}`, { cause: err });
}
