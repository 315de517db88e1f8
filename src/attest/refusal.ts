/**
 * Why a quote or chain is refused: stable reason codes, each with a message and details.
 *
 * @module
 */

/** Every reason a verification can refuse, stable across versions. */
export const REFUSAL_REASONS = [
  "quote_malformed",
  "certificate_malformed",
  "bad_signature",
  "wrong_nonce",
  "register_mismatch",
  "malformed_event_log",
  "chain_broken",
  "cert_expired",
  "cert_not_yet_valid",
  "foreign_root",
  "wrong_vm",
] as const;

/** A stable reason code for a refused verification. */
export type RefusalReason = typeof REFUSAL_REASONS[number];

/** The role a certificate plays in a chain, named in refusals. */
export type CertRole = "instance" | "transport" | "ak" | "ek" | "ca";

/**
 * Thrown inside the verifier and turned into a refused result at its edge; never escapes
 * {@link verifyQuote}.
 */
export class Refusal extends Error {
  /** The stable reason code. */
  readonly reason: RefusalReason;
  /** Structured facts: which certificate, which register, expected and actual values. */
  readonly details: Readonly<Record<string, unknown>>;

  /**
   * @param reason stable reason code
   * @param message what was refused and the offending value
   * @param details structured facts for a machine reader
   */
  constructor(reason: RefusalReason, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = "Refusal";
    this.reason = reason;
    this.details = details;
  }
}
