/**
 * vASP: full VM life-cycle protection on a software Active Security Processor.
 *
 * @module
 */
export * from "./ffi/mod.ts";
export {
  type Binding,
  BINDING_OID,
  type CertificateInfo,
  describeCertificate,
  type ExpectedVm,
  readCertificates,
  REFUSAL_REASONS,
  type RefusalReason,
  type Refused,
  replayEventLog,
  toPem,
  type Verified,
  type VerifyOptions,
  verifyQuote,
  type VerifyResult,
} from "./src/attest/mod.ts";
