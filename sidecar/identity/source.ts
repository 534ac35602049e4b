/** A signing request from the rotator: a fresh CSR, and how it proves who it is. */
export interface SignRequest {
  /** PKCS#10 DER; the key never leaves the node. */
  csrDer: Buffer;
  /** The one-time join token, on the first start only. */
  joinToken?: string;
  /** The current certificate and key, for renewal over mTLS. */
  current?: { certPem: string; keyPem: string };
  /** The last certificate (chain) and key after it expired: a rejoin with proof of possession
   * (the control plane accepts it for the newest certificate of the node, within a grace period). */
  expired?: { certPem: string; keyPem: string };
}

/** What the control plane answers. */
export interface SignResponse {
  /** Leaf then issuer. */
  chainPem: string;
  /** The trust bundle (roots). */
  bundlePem: string;
}

/**
 * Where certificates come from. The sidecar implements it over the control-plane gRPC client
 * (`api/client.ts`); tests pass an in-process fake that issues with `ca/issue.ts`.
 */
export interface IdentitySource {
  sign(req: SignRequest): Promise<SignResponse>;
}
