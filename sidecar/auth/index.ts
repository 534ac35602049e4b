// The mail-authentication library's public surface, for the SMTP front door and the outbound
// filter. Each operation lives in its own file; this only re-exports them.
export { createResolver, nodeDnsUpstream } from './resolver.ts';
export type { MailResolver, LookupFn, ResolverConfig, DnsUpstream, DnsAnswer, DnsRecords, MxRecord } from './resolver.ts';
export { verifyMessage } from './verify.ts';
export type { VerifyInput } from './verify.ts';
export { checkSpf, SPF_LIMITS } from './spf.ts';
export { decide, QUARANTINE_HEADER, ENHANCED } from './decide.ts';
export type { Decision, AuthAction, EnforcementMode, SmtpReply } from './decide.ts';
export { addAuthResults, stripAuthResults, prependHeaders, authservIdOf, OWN_HEADERS } from './headers.ts';
export { createSigner } from './sign.ts';
export type { Signer, SignerConfig } from './sign.ts';
export { createSealer } from './seal.ts';
export type { Sealer } from './seal.ts';
export { loadSigningKeys, checkSigningKey } from './keys.ts';
export type { SigningKey, SigningKeyRef, DkimAlgorithm } from './keys.ts';
export { AuthError, DnsError, isTemporaryDnsError } from './errors.ts';
export type { AuthErrorCode, DnsErrorCode } from './errors.ts';
export type { Verdict, SpfVerdict, DkimVerdict, DmarcVerdict, ArcVerdict, DmarcPolicy, AuthResultWord } from './types.ts';
