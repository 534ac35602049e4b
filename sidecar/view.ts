import type { X509Certificate } from 'node:crypto';
import { TrustBundle } from '../ca/bundle.ts';
import { parseCertificates } from '../ca/pem.ts';
import { authorize, deserializeCompiled, isKnownUser, route, type CompiledPolicy } from '../policies/index.ts';
import type { SnapshotPayload } from '../api/snapshot.ts';
import type { Placement } from './mail/deliver.ts';

/**
 * What the sidecar currently believes: the last verified snapshot (placement, trust bundle,
 * revocations). Listeners read it through functions on every connection, so a new snapshot
 * applies to the next handshake or lookup without restarting anything.
 */
export class MeshView {
  compiled: CompiledPolicy | undefined;
  bundle: TrustBundle;
  /** Issuing CAs the snapshot lists (peers' leaves may come from any: issuing-CA rotation). */
  issuers: readonly X509Certificate[] = [];
  revision = '';
  issuedAt = 0;
  serials = new Set<string>();
  ids = new Set<string>();
  readonly trustDomain: string;
  private readonly listeners = new Set<(previous: CompiledPolicy | undefined) => void>();

  constructor(trustDomain: string, bundle: TrustBundle) {
    this.trustDomain = trustDomain;
    this.bundle = bundle;
  }

  /** Take a verified snapshot. A snapshot of another trust domain is refused. */
  apply(snap: SnapshotPayload): void {
    if (snap.trustDomain !== this.trustDomain) throw new Error(`snapshot is for trust domain ${snap.trustDomain}, not ${this.trustDomain}`);
    // Never go back in time: a replayed or stale (validly signed) snapshot would bring revoked
    // peers back and undo policy changes.
    if (snap.issuedAt < this.issuedAt) throw new Error(`snapshot ${snap.revision} was issued before the one in use (${this.revision}): refused`);
    const previous = this.compiled;
    // Parse everything before changing anything: a snapshot is applied whole or not at all.
    const compiled = deserializeCompiled(snap.placement);
    // Same roots: keep the object (listeners compare by identity and rebuild TLS contexts on change).
    const bundle = snap.bundlePem !== this.bundle.toPem() ? TrustBundle.fromPem(snap.bundlePem) : this.bundle;
    const issuers = snap.issuersPem ? parseCertificates(snap.issuersPem, 'snapshot issuers') : [];
    this.compiled = compiled;
    this.bundle = bundle;
    this.issuers = issuers;
    this.serials = new Set(snap.revokedSerials.map((s) => s.toUpperCase()));
    this.ids = new Set(snap.revokedIds);
    this.revision = snap.revision;
    this.issuedAt = snap.issuedAt;
    for (const l of this.listeners) l(previous);
  }

  /** Called after each new snapshot with the previous placement (to close moved sessions). */
  onChange(listener: (previous: CompiledPolicy | undefined) => void): void {
    this.listeners.add(listener);
  }

  /** Placement as the mail path asks it. Before the first snapshot nothing is routable:
   * `unavailable`, which the mail path turns into 4xx (never a silent accept, never a 5xx). */
  readonly placement: Placement = (address) => {
    if (!this.compiled) return { kind: 'unavailable' };
    const r = route(this.compiled, address);
    return r.kind === 'shard' ? { kind: 'shard', shardId: r.shard } : r;
  };

  knownUser = (address: string): boolean | undefined => (this.compiled ? isKnownUser(this.compiled, address) : undefined);

  /** The mesh address of a shard's ingress. */
  meshAddress = (shardId: string): string => {
    const s = this.compiled?.shards.find((x) => x.id === shardId);
    if (!s) throw new Error(`unknown shard ${shardId}`);
    return s.mesh;
  };

  /** May `peer` connect to `shardId`? (policy authorization) */
  authorized = (peer: string, shardId: string): boolean => (this.compiled ? authorize(this.compiled, peer, shardId) : false);

  revocations = () => ({ serials: this.serials, ids: this.ids });
}
