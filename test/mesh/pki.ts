// Test PKI: a root + issuing CA built with ca/ primitives, node identities issued with
// ca/issue.ts, and deliberately broken leaves for the ingress refusal tests.
import { X509Certificate, type KeyObject } from 'node:crypto';
import { OID } from '../../ca/algorithms.ts';
import { TrustBundle } from '../../ca/bundle.ts';
import {
  KU,
  authorityKeyIdentifier,
  basicConstraints,
  buildCertificate,
  encodeName,
  extension,
  extKeyUsageBoth,
  keyIdentifier,
  keyUsage,
  randomSerial,
  subjectAltName,
  subjectKeyIdentifier,
} from '../../ca/certificate.ts';
import { createCsr } from '../../ca/csr.ts';
import { oid, seq, toPem } from '../../ca/der.ts';
import { issueLeaf } from '../../ca/issue.ts';
import { Issuer } from '../../ca/issuer.ts';
import { generateKeyPair, privateKeyToPem } from '../../ca/keys.ts';
import type { IdentitySource, SignRequest, SignResponse } from '../../sidecar/identity/source.ts';
import { buildIdentity, type Identity } from '../../sidecar/identity/identity.ts';

const DAY = 86_400_000;

/** A two-level test CA. */
export interface TestCa {
  trustDomain: string;
  issuer: Issuer;
  bundle: TrustBundle;
  bundlePem: string;
  rootKey: KeyObject;
  rootCert: X509Certificate;
}

function spkiOf(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

/** Root (self-signed) and issuing CA, valid from 30 days before `now` for ten years. */
export function makeCa(trustDomain = 'mail.test', now = Date.now()): TestCa {
  const root = generateKeyPair('P-256');
  const rootSpki = spkiOf(root.publicKey);
  const rootName = encodeName([{ oid: OID.commonName, value: `${trustDomain} test root` }]);
  const notBefore = new Date(Math.floor((now - 30 * DAY) / 1000) * 1000);
  const notAfter = new Date(Math.floor((now + 3650 * DAY) / 1000) * 1000);
  const rootDer = buildCertificate({
    serial: randomSerial(),
    issuerName: rootName,
    subjectName: rootName,
    notBefore,
    notAfter,
    spki: rootSpki,
    extensions: [basicConstraints(true, 1), keyUsage(KU.keyCertSign | KU.cRLSign), subjectKeyIdentifier(keyIdentifier(rootSpki))],
    signingKey: root.privateKey,
  });
  const iss = generateKeyPair('P-256');
  const issSpki = spkiOf(iss.publicKey);
  const issDer = buildCertificate({
    serial: randomSerial(),
    issuerName: rootName,
    subjectName: encodeName([{ oid: OID.commonName, value: `${trustDomain} test issuer` }]),
    notBefore,
    notAfter,
    spki: issSpki,
    extensions: [basicConstraints(true, 0), keyUsage(KU.keyCertSign | KU.cRLSign), subjectKeyIdentifier(keyIdentifier(issSpki)), authorityKeyIdentifier(keyIdentifier(rootSpki))],
    signingKey: root.privateKey,
  });
  const rootCert = new X509Certificate(rootDer);
  const issuer = new Issuer(new X509Certificate(issDer), iss.privateKey, trustDomain);
  const bundle = new TrustBundle([rootCert]);
  return { trustDomain, issuer, bundle, bundlePem: toPem('CERTIFICATE', rootDer), rootKey: root.privateKey, rootCert };
}

/** Issue a node identity (`spiffe://TD/shard/S/node/N`) with a fresh key. */
export function issueIdentity(ca: TestCa, shard: string, node: string, opts: { ttlMs?: number; now?: number; spiffeId?: string } = {}): Identity {
  const kp = generateKeyPair('P-256');
  const leaf = issueLeaf(ca.issuer, {
    publicKey: kp.publicKey,
    spiffeId: opts.spiffeId ?? `spiffe://${ca.trustDomain}/shard/${shard}/node/${node}`,
    ttlMs: opts.ttlMs ?? 3_600_000,
    now: opts.now,
  });
  return buildIdentity({ keyPem: privateKeyToPem(kp.privateKey), chainPem: leaf.chainPem, bundlePem: ca.bundlePem });
}

/** Kinds of broken client certificates. */
export type BadLeafKind = 'self-signed' | 'leaf-ca' | 'server-eku-only';

/** A deliberately broken leaf (key + chain PEM) signed by the test issuer (or itself). */
export function badLeaf(ca: TestCa, kind: BadLeafKind, spiffeId = `spiffe://${ca.trustDomain}/shard/s1/node/bad`): { keyPem: string; chainPem: string } {
  const kp = generateKeyPair('P-256');
  const spki = spkiOf(kp.publicKey);
  const now = Date.now();
  const validity = { notBefore: new Date(Math.floor((now - DAY) / 1000) * 1000), notAfter: new Date(Math.floor((now + DAY) / 1000) * 1000) };
  const san = subjectAltName([spiffeId], [], true);
  const ski = subjectKeyIdentifier(keyIdentifier(spki));
  if (kind === 'self-signed') {
    const name = encodeName([{ oid: OID.commonName, value: 'self' }]);
    const der = buildCertificate({ serial: randomSerial(), issuerName: name, subjectName: name, ...validity, spki, extensions: [basicConstraints(false), keyUsage(KU.digitalSignature), extKeyUsageBoth(), san, ski], signingKey: kp.privateKey });
    return { keyPem: privateKeyToPem(kp.privateKey), chainPem: toPem('CERTIFICATE', der) };
  }
  const exts =
    kind === 'leaf-ca'
      ? [basicConstraints(true), keyUsage(KU.digitalSignature | KU.keyCertSign), extKeyUsageBoth(), san, ski]
      : [basicConstraints(false), keyUsage(KU.digitalSignature), extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))), san, ski];
  const der = buildCertificate({ serial: randomSerial(), issuerName: ca.issuer.issuerName, subjectName: seq(), ...validity, spki, extensions: exts, signingKey: ca.issuer.key });
  return { keyPem: privateKeyToPem(kp.privateKey), chainPem: toPem('CERTIFICATE', der) + ca.issuer.certPem };
}

/** A CSR for tests that need one. */
export function csrFor(key: { publicKey: KeyObject; privateKey: KeyObject }): Buffer {
  return createCsr(key);
}

/**
 * An in-process control plane: issues from the test CA with `ca/issue.ts`, using the fake's
 * clock for `now`. `down = true` makes every call fail (control plane unreachable). Records
 * what each request proved itself with.
 */
export class FakeSource implements IdentitySource {
  down = false;
  calls: { joinToken?: string; currentSerial?: string; expiredSerial?: string }[] = [];
  private readonly ca: TestCa;
  private readonly spiffeId: string;
  private readonly now: () => number;
  private readonly ttlMs: number;

  constructor(ca: TestCa, spiffeId: string, now: () => number, ttlMs = 3_600_000) {
    this.ca = ca;
    this.spiffeId = spiffeId;
    this.now = now;
    this.ttlMs = ttlMs;
  }

  async sign(req: SignRequest): Promise<SignResponse> {
    const currentSerial = req.current ? new X509Certificate(req.current.certPem).serialNumber : undefined;
    const expiredSerial = req.expired ? new X509Certificate(req.expired.certPem).serialNumber : undefined;
    this.calls.push({ joinToken: req.joinToken, currentSerial, ...(expiredSerial ? { expiredSerial } : {}) });
    if (this.down) throw Object.assign(new Error('control plane unreachable'), { code: 'UNAVAILABLE' });
    if (!req.joinToken && !req.current && !req.expired) throw Object.assign(new Error('no credential'), { code: 'UNAUTHENTICATED' });
    const leaf = issueLeaf(this.ca.issuer, { csr: req.csrDer, spiffeId: this.spiffeId, ttlMs: this.ttlMs, now: this.now() });
    return { chainPem: leaf.chainPem, bundlePem: this.ca.bundlePem };
  }
}
