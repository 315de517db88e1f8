/**
 * Appraising a quote as an EAR: {@link verifyQuote} over the evidence, then the event log
 * against expected references, turned into an AR4SI trustworthiness vector, a status and the
 * list of checks behind them. Used alike by the server (on its own evidence) and by
 * `vasp attest verify` (offline).
 *
 * @module
 */
import type { EventLogEntry } from "../../ffi/event_log.ts";
import { toHex } from "../codec/mod.ts";
import {
  CLAIM,
  type EarCheck,
  type EarStatus,
  type EarSubmod,
  statusOf,
  type TrustVector,
} from "./ear.ts";
import {
  checkComponents,
  type Component,
  COMPONENT_REGISTERS,
  type Expectations,
} from "./expect.ts";
import type { RefusalReason } from "./refusal.ts";
import { type ExpectedVm, type Refused, verifyQuote, type VerifyResult } from "./verify.ts";

/** The evidence of one quote: what the quote API answers, decoded. */
export interface Evidence {
  /** The quote bytes. */
  readonly quote: Uint8Array;
  /** DER certificates, the signer first: `[instance, AK, EK]` or `[AK, EK]`. */
  readonly chain: readonly Uint8Array[];
  /** The instance's event log, when there is one to replay. */
  readonly eventLog?: readonly EventLogEntry[];
}

/** Options of {@link appraiseQuote}. */
export interface AppraiseOptions {
  /** The trusted manufacturer CA, DER. */
  readonly root: Uint8Array;
  /** The verifier's nonce. */
  readonly nonce: Uint8Array;
  /** The time certificates are judged at. */
  readonly now: Date;
  /** The VM the quote must come from. */
  readonly vm?: ExpectedVm;
  /** Expected references: register values and component digests. */
  readonly expect?: Expectations;
  /** `ear.appraisal-policy-id`. */
  readonly policyId: string;
}

/** An appraisal: the EAR submodule, with the verification result it came from. */
export interface Appraisal {
  /** The overall status. */
  readonly status: EarStatus;
  /** The submodule as the EAR carries it. */
  readonly submod: EarSubmod;
  /** The quote's verification. */
  readonly verified: VerifyResult;
}

/** The checks in the order {@link verifyQuote} makes them, then the references. */
const CHECKS = [
  "structure",
  "chain",
  "signature",
  "binding",
  "nonce",
  "registers",
  "event_log",
  "references",
] as const;
type Check = typeof CHECKS[number];

/** Which check a refusal belongs to, and the claim it costs. */
function failedCheck(refused: Refused): { check: Check; claim: TrustVector } {
  const reason: RefusalReason = refused.reason;
  switch (reason) {
    case "quote_malformed":
      return { check: "structure", claim: { "instance-identity": CLAIM.cryptoValidationFailed } };
    case "certificate_malformed":
    case "chain_broken":
    case "foreign_root":
    case "cert_expired":
    case "cert_not_yet_valid":
      return { check: "chain", claim: { hardware: CLAIM.unrecognizedHardware } };
    case "bad_signature":
      return { check: "signature", claim: { "instance-identity": CLAIM.cryptoValidationFailed } };
    case "wrong_vm":
      return refused.details.check === "config_digest"
        ? { check: "binding", claim: { configuration: CLAIM.unsupportableConfig } }
        : { check: "binding", claim: { "instance-identity": CLAIM.unrecognizedInstance } };
    case "wrong_nonce":
      return { check: "nonce", claim: { "instance-identity": CLAIM.cryptoValidationFailed } };
    case "register_mismatch":
      return refused.details.source === "expected"
        ? { check: "registers", claim: { executables: CLAIM.contraindicatedRuntime } }
        : { check: "event_log", claim: { executables: CLAIM.cryptoValidationFailed } };
    case "malformed_event_log":
      return { check: "event_log", claim: { executables: CLAIM.cryptoValidationFailed } };
  }
}

/**
 * Appraises a quote: verifies it (structure, chain to `root`, signature, binding, nonce,
 * expected registers, event-log replay), then compares the event log with the expected
 * components. Never throws for bad evidence: a failure is a contraindicated status with the
 * failed check's reason.
 *
 * @param evidence the quote, its chain and event log
 * @param options the trusted CA, the nonce, the time, the expected VM and references, the
 *   policy ID to report
 * @returns the status, the EAR submodule and the verification result
 * @throws {TypeError} for a programming error in the options (see {@link verifyQuote})
 * @example
 * ```ts ignore
 * // Needs a real quote and chain (tests/attest_ear_test.ts appraises the server's).
 * const { status, submod } = await appraiseQuote(evidence, { root, nonce, now, policyId });
 * ```
 */
export async function appraiseQuote(
  evidence: Evidence,
  options: AppraiseOptions,
): Promise<Appraisal> {
  const registers = options.expect?.registers ?? {};
  const verified = await verifyQuote(evidence.quote, {
    chain: evidence.chain,
    root: options.root,
    nonce: options.nonce,
    now: options.now,
    ...(options.vm ? { vm: options.vm } : {}),
    registers,
    ...(evidence.eventLog ? { eventLog: evidence.eventLog } : {}),
  });
  const asked: Record<Check, boolean> = {
    structure: true,
    chain: true,
    signature: true,
    binding: options.vm !== undefined,
    nonce: true,
    registers: Object.keys(registers).length > 0,
    event_log: evidence.eventLog !== undefined,
    references: Object.keys(options.expect?.components ?? {}).length > 0,
  };
  const checks: EarCheck[] = [];
  let vector: TrustVector;
  if (!verified.ok) {
    const failed = failedCheck(verified);
    const at = CHECKS.indexOf(failed.check);
    CHECKS.forEach((check, i) => {
      if (i < at) checks.push({ check, outcome: asked[check] ? "pass" : "skipped" });
      else if (i === at) {
        checks.push({ check, outcome: "fail", reason: verified.reason, message: verified.message });
      } else checks.push({ check, outcome: "not_run" });
    });
    vector = failed.claim;
  } else {
    vector = {
      "instance-identity": CLAIM.trustworthyInstance,
      hardware: CLAIM.genuineHardware,
      ...(options.vm?.configDigest ? { configuration: CLAIM.approvedConfig } : {}),
    };
    for (const check of CHECKS.slice(0, -1)) {
      checks.push({ check, outcome: asked[check] ? "pass" : "skipped" });
    }
    const boot = references(evidence.eventLog, options.expect, verified.registers);
    checks.push(boot.check);
    if (boot.executables !== undefined) vector.executables = boot.executables;
    if (asked.registers && boot.executables === undefined) {
      vector.executables = CLAIM.approvedBoot;
    }
  }
  return {
    status: statusOf(vector),
    verified,
    submod: {
      "ear.status": statusOf(vector),
      "ear.trustworthiness-vector": vector,
      "ear.appraisal-policy-id": options.policyId,
      "ear.vasp.checks": checks,
      "ear.vasp.annotated-evidence": verified.ok
        ? {
          ...(verified.binding
            ? {
              vm_uuid: verified.binding.vmUuid,
              instance_id: verified.binding.instanceId,
              config_digest: `sha256:${toHex(verified.binding.configDigest)}`,
            }
            : {}),
          alg: verified.alg,
          registers: verified.registers,
        }
        : {},
    },
  };
}

/** The references check and the executables claim it makes (none when nothing is judged). */
function references(
  log: readonly EventLogEntry[] | undefined,
  expect: Expectations | undefined,
  quoted: Readonly<Record<number, string>>,
): { check: EarCheck; executables?: number } {
  const wanted = Object.keys(expect?.components ?? {}).length > 0;
  if (!log) {
    return wanted
      ? {
        check: {
          check: "references",
          outcome: "fail",
          reason: "event_log_missing",
          message: "Component references were given but the evidence has no event log",
        },
        executables: CLAIM.contraindicatedRuntime,
      }
      : { check: { check: "references", outcome: "skipped" } };
  }
  const report = checkComponents(log, expect ?? { registers: {}, components: {} });
  // Only entries of quoted registers are attested: the replay compared just those.
  const unquoted = (Object.keys(expect?.components ?? {}) as Component[]).filter((name) =>
    !(String(COMPONENT_REGISTERS[name]) in quoted)
  );
  const failures = [
    ...report.mismatches.map((m) => m.message),
    ...unquoted.map((name) => `${name}: register ${COMPONENT_REGISTERS[name]} is not in the quote`),
  ];
  if (failures.length > 0) {
    return {
      check: {
        check: "references",
        outcome: "fail",
        reason: "reference_mismatch",
        message: failures.join("; "),
      },
      executables: CLAIM.contraindicatedRuntime,
    };
  }
  if (report.unmeasured.length > 0) {
    return {
      check: {
        check: "references",
        outcome: wanted ? "pass" : "skipped",
        message: `not measured: ${report.unmeasured.join("; ")}`,
      },
      executables: CLAIM.unrecognizedRuntime,
    };
  }
  return wanted
    ? {
      check: {
        check: "references",
        outcome: "pass",
        message: `matched: ${report.matched.join(", ")}`,
      },
      executables: CLAIM.approvedBoot,
    }
    : { check: { check: "references", outcome: "skipped" } };
}
