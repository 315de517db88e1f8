/**
 * Attestation: verifying quotes and their certificate chains offline, with Web Crypto and an
 * X.509 parser (no native library), and describing certificates.
 *
 * @module
 */
export { checkAkChain, type TrustedAk } from "./ak_chain.ts";
export { type Binding, BINDING_OID, encodeBinding, parseBinding } from "./binding.ts";
export {
  type CertificateInfo,
  describeCertificate,
  readCertificates,
  toPem,
} from "./certificate.ts";
export { type CertRole, REFUSAL_REASONS, type RefusalReason } from "./refusal.ts";
export { fromHex, sameBytes, toHex } from "./hex.ts";
export { replayEventLog } from "./replay.ts";
export {
  type ExpectedVm,
  type Refused,
  type Verified,
  type VerifyOptions,
  verifyQuote,
  type VerifyResult,
} from "./verify.ts";
