/**
 * Attestation: verifying quotes and their certificate chains offline, with Web Crypto and an
 * X.509 parser (no native library), and describing certificates. The live vASP instances of
 * a server (`instances.ts`, which holds native handles) are imported from their file by the
 * composition root, so that importing this module never reaches the native bindings.
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
// Hex lives in src/codec; re-exported because quotes and nonces are read and written as hex.
export { fromHex, sameBytes, toHex } from "../codec/mod.ts";
export { configDigestHex } from "./config_digest.ts";
export { replayEventLog } from "./replay.ts";
export {
  type ExpectedVm,
  type Refused,
  type Verified,
  type VerifyOptions,
  verifyQuote,
  type VerifyResult,
} from "./verify.ts";
export {
  type AnnotatedEvidence,
  CLAIM,
  EAR_PROFILE,
  EAR_SUBMOD,
  type EarCheck,
  type EarClaims,
  earClaims,
  type EarStatus,
  type EarSubmod,
  statusOf,
  type TrustVector,
  worstStatus,
} from "./ear.ts";
export {
  checkComponents,
  type Component,
  COMPONENT_REGISTERS,
  type Expectations,
  parseExpectations,
} from "./expect.ts";
export { type Appraisal, type AppraiseOptions, appraiseQuote, type Evidence } from "./appraise.ts";
export {
  EAR_KEY_ENDORSEMENT,
  EarIssuer,
  type EarIssuerOptions,
  type EarKey,
  type EarPublicJwk,
  type EarVerification,
  type IssuedEar,
  SERVER_POLICY_ID,
  verifyEar,
} from "./ear_jwt.ts";
