import * as grpc from '@grpc/grpc-js';

type CertificateProvider = grpc.experimental.CertificateProvider;
type CaCertificateUpdateListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityCertificateUpdateListener = grpc.experimental.IdentityCertificateUpdateListener;

/**
 * Server TLS material that can be swapped while serving: grpc-js re-creates its secure context
 * when a provider reports new material, so renewing the control plane's certificate never
 * restarts the listener or drops a stream.
 */
export class LiveCertificates implements CertificateProvider {
  private ca: Buffer;
  private cert: Buffer;
  private key: Buffer;
  private readonly caListeners = new Set<CaCertificateUpdateListener>();
  private readonly idListeners = new Set<IdentityCertificateUpdateListener>();

  constructor(bundlePem: string, chainPem: string, keyPem: string) {
    this.ca = Buffer.from(bundlePem);
    this.cert = Buffer.from(chainPem);
    this.key = Buffer.from(keyPem);
  }

  /** Replace the served chain and key (and optionally the client-certificate roots). */
  update(chainPem: string, keyPem: string, bundlePem?: string): void {
    this.cert = Buffer.from(chainPem);
    this.key = Buffer.from(keyPem);
    if (bundlePem !== undefined) {
      this.ca = Buffer.from(bundlePem);
      for (const l of this.caListeners) l({ caCertificate: this.ca });
    }
    for (const l of this.idListeners) l({ certificate: this.cert, privateKey: this.key });
  }

  addCaCertificateListener(l: CaCertificateUpdateListener): void {
    this.caListeners.add(l);
    // Asynchronously: grpc-js registers its own watcher only after adding the listeners.
    process.nextTick(() => this.caListeners.has(l) && l({ caCertificate: this.ca }));
  }
  removeCaCertificateListener(l: CaCertificateUpdateListener): void {
    this.caListeners.delete(l);
  }
  addIdentityCertificateListener(l: IdentityCertificateUpdateListener): void {
    this.idListeners.add(l);
    process.nextTick(() => this.idListeners.has(l) && l({ certificate: this.cert, privateKey: this.key }));
  }
  removeIdentityCertificateListener(l: IdentityCertificateUpdateListener): void {
    this.idListeners.delete(l);
  }

  /** Server credentials that ask for a client certificate but do not require one: a new node
   * has none yet and may call Sign with a join token (control-plane/auth.ts decides per RPC). */
  credentials(): grpc.ServerCredentials {
    return grpc.experimental.createCertificateProviderServerCredentials(this, this, false);
  }
}
