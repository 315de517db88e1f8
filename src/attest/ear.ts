/**
 * EAT Attestation Results (EAR, draft-ietf-rats-ear): the claims set a verifier issues after
 * appraising a quote — an overall status, an AR4SI trustworthiness vector, the appraisal
 * policy, the nonce, and vASP's own list of the checks behind them. Pure: no clock, no key.
 *
 * @module
 */

/** The EAR profile (`eat_profile`), as draft-ietf-rats-ear names it. */
export const EAR_PROFILE = "tag:github.com,2023:veraison/ear";

/** The one submodule a vASP EAR appraises: the VM's vASP instance. */
export const EAR_SUBMOD = "vasp-instance";

/** The trust tiers of an EAR, best to worst but `none`. */
export type EarStatus = "none" | "affirming" | "warning" | "contraindicated";

/** The AR4SI trustworthiness claims vASP makes (claims it cannot judge are left out). */
export interface TrustVector {
  "instance-identity"?: number;
  configuration?: number;
  executables?: number;
  hardware?: number;
}

/**
 * The AR4SI claim values vASP uses (draft-ietf-rats-ar4si, as veraison/ear numbers them).
 * 0–1 are no claim, 2–31 affirming, 32–95 warning, 96–127 and negative ones contraindicated.
 */
export const CLAIM = {
  none: 0,
  /** instance-identity: a vASP instance bound to the expected VM signed the quote. */
  trustworthyInstance: 2,
  /** instance-identity: the binding names another VM or instance. */
  unrecognizedInstance: 97,
  /** any: a signature, the structure or the nonce did not verify. */
  cryptoValidationFailed: 99,
  /** configuration: the binding's configuration digest is the expected one. */
  approvedConfig: 2,
  /** configuration: it is not. */
  unsupportableConfig: 96,
  /** executables: what booted matches every expected reference. */
  approvedBoot: 3,
  /** executables: something was not measured, or was measured without a reference. */
  unrecognizedRuntime: 33,
  /** executables: a measured component differs from its reference. */
  contraindicatedRuntime: 96,
  /** hardware: the chain leads to the trusted manufacturer CA. */
  genuineHardware: 2,
  /** hardware: it does not. */
  unrecognizedHardware: 97,
} as const;

/**
 * The tier of one claim value.
 *
 * @param value an AR4SI claim value, -128..127
 * @returns its tier
 */
export function tierOf(value: number): EarStatus {
  if (value < 0 || value >= 96) return "contraindicated";
  if (value >= 32) return "warning";
  if (value >= 2) return "affirming";
  return "none";
}

const RANK: Readonly<Record<EarStatus, number>> = {
  none: 0,
  affirming: 1,
  warning: 2,
  contraindicated: 3,
};

/**
 * The status of a trustworthiness vector: the worst tier among its claims (AR4SI), `none`
 * when it claims nothing.
 *
 * @param vector the claims
 * @returns the status
 * @example
 * ```ts
 * import { statusOf } from "./ear.ts";
 * if (statusOf({ hardware: 2, executables: 96 }) !== "contraindicated") throw new Error();
 * if (statusOf({ hardware: 2, executables: 33 }) !== "warning") throw new Error();
 * if (statusOf({}) !== "none") throw new Error();
 * ```
 */
export function statusOf(vector: TrustVector): EarStatus {
  return worstStatus((Object.values(vector) as number[]).map(tierOf));
}

/**
 * The worst of some statuses (`none` ranks below `affirming`).
 *
 * @param statuses the statuses
 * @returns the worst, `none` for none
 */
export function worstStatus(statuses: readonly EarStatus[]): EarStatus {
  let worst: EarStatus = "none";
  for (const status of statuses) if (RANK[status] > RANK[worst]) worst = status;
  return worst;
}

/** How one check of an appraisal ended. */
export type CheckOutcome = "pass" | "fail" | "skipped" | "not_run";

/** One check of an appraisal, as the EAR reports it under `ear.vasp.checks`. */
export interface EarCheck {
  /** The check: `structure`, `chain`, `signature`, `binding`, `nonce`, `registers`, `event_log`, `references`. */
  readonly check: string;
  /** `pass`; `fail`; `skipped` (nothing was asked); `not_run` (an earlier check failed). */
  readonly outcome: CheckOutcome;
  /** The refusal's stable reason, for a failed check. */
  readonly reason?: string;
  /** What was found, for a failure or a warning. */
  readonly message?: string;
}

/** What was attested, as the EAR annotates it (`ear.vasp.annotated-evidence`). */
export interface AnnotatedEvidence {
  readonly vm_uuid?: string;
  readonly instance_id?: string;
  readonly config_digest?: string;
  readonly alg?: "sha256" | "sm3";
  /** Quoted registers, hex. */
  readonly registers?: Readonly<Record<string, string>>;
}

/** The appraisal of one submodule. */
export interface EarSubmod {
  readonly "ear.status": EarStatus;
  readonly "ear.trustworthiness-vector": TrustVector;
  readonly "ear.appraisal-policy-id": string;
  readonly "ear.vasp.checks": readonly EarCheck[];
  readonly "ear.vasp.annotated-evidence": AnnotatedEvidence;
}

/** An EAR claims set (the JWT payload). */
export interface EarClaims {
  readonly eat_profile: typeof EAR_PROFILE;
  /** Issued at, seconds since the epoch. */
  readonly iat: number;
  readonly "ear.verifier-id": { readonly developer: string; readonly build: string };
  /** The verifier's nonce, lowercase hex (as vASP writes nonces everywhere). */
  readonly eat_nonce: string;
  readonly submods: Readonly<Record<string, EarSubmod>>;
}

/** Who issues an EAR (`ear.verifier-id.developer`). */
export const EAR_DEVELOPER = "urn:vasp";

/**
 * Builds an EAR claims set.
 *
 * @param submod the instance's appraisal
 * @param options `now`: issue time; `nonce`: hex; `build`: the verifier's build
 * @returns the claims set, `submods` holding {@link EAR_SUBMOD}
 */
export function earClaims(
  submod: EarSubmod,
  options: { now: Date; nonce: string; build: string },
): EarClaims {
  return {
    eat_profile: EAR_PROFILE,
    iat: Math.floor(options.now.getTime() / 1000),
    "ear.verifier-id": { developer: EAR_DEVELOPER, build: options.build },
    eat_nonce: options.nonce,
    submods: { [EAR_SUBMOD]: submod },
  };
}
