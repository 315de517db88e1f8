/**
 * Reference (golden) values: a known-good measurement stored per profile, and the comparison
 * of a later measurement against it that names every region that differs.
 *
 * @module
 */
import { VaspError } from "../engine/error.ts";
import type { DigestAlg, KernelMeasurement } from "./measurement.ts";
import { type MeasurementProfile, profileId } from "./profile.ts";
import type { Finding } from "./tables.ts";

/** The format tag of a stored reference set. */
export const REFERENCE_FORMAT = "vasp-kernel-reference/1";

/** One region's reference digest. */
export interface ReferenceRegion {
  /** Region name. */
  readonly name: string;
  /** Link-time virtual address, hex. */
  readonly linkedVa: string;
  /** Length in bytes. */
  readonly len: number;
  /** Lowercase hex digest. */
  readonly digest: string;
}

/** A stored reference set. */
export interface ReferenceSet {
  /** Always {@linkcode REFERENCE_FORMAT}. */
  readonly format: typeof REFERENCE_FORMAT;
  /** {@linkcode profileId} of `profile`. */
  readonly profileId: string;
  /** What the references are valid for. */
  readonly profile: MeasurementProfile;
  /** Hash algorithm of the digests. */
  readonly alg: DigestAlg;
  /** When it was learned (ISO 8601). */
  readonly learnedAt: string;
  /** The regions, in plan order. */
  readonly regions: readonly ReferenceRegion[];
}

/** One region that does not match its reference. */
export interface Difference {
  /** Region name. */
  readonly region: string;
  /** `changed` digest, `failed` to measure, `missing` from the measurement, `unexpected`. */
  readonly status: "changed" | "failed" | "missing" | "unexpected";
  /** Reference digest, if any. */
  readonly expected: string | null;
  /** Measured digest, if any. */
  readonly actual: string | null;
  /** What differs, naming the region. */
  readonly message: string;
}

/** The outcome of a comparison. */
export interface Comparison {
  /** True when every region matches and no check found a violation. */
  readonly matches: boolean;
  /** Regions that differ, in reference order. */
  readonly differences: readonly Difference[];
  /** Table-check violations of the measurement. */
  readonly violations: readonly Finding[];
}

/**
 * Turns a known-good measurement into a reference set.
 *
 * @param measurement the measurement
 * @param options the `profile` it was taken under and `learnedAt` (ISO time)
 * @returns the reference set
 * @throws {VaspError} `reference_refused` when a region failed, a check found a violation, or
 *   the text was not normalised (a KASLR boot measured without its vmlinuz)
 */
export function referenceFromMeasurement(
  measurement: KernelMeasurement,
  options: { profile: MeasurementProfile; learnedAt: string },
): ReferenceSet {
  const refuse = (why: string) =>
    new VaspError("reference_refused", `Cannot learn references: ${why}`, {
      details: { profileId: profileId(options.profile) },
    });
  const failed = measurement.regions.filter((r) => r.digest === null);
  if (failed.length > 0) {
    throw refuse(`region(s) ${failed.map((r) => `"${r.name}" (${r.error})`).join(", ")} failed`);
  }
  const violations = measurement.findings.filter((f) => f.violation);
  if (violations.length > 0) throw refuse(violations.map((f) => f.message).join("; "));
  if (!measurement.normalised) {
    throw refuse("the kernel runs with a KASLR slide and its relocations were not undone");
  }
  return {
    format: REFERENCE_FORMAT,
    profileId: profileId(options.profile),
    profile: options.profile,
    alg: measurement.alg,
    learnedAt: options.learnedAt,
    regions: measurement.regions.map((r) => ({
      name: r.name,
      linkedVa: `0x${r.linkedVa.toString(16)}`,
      len: r.len,
      digest: r.digest!,
    })),
  };
}

function invalid(source: string, what: string): VaspError {
  return new VaspError("reference_invalid", `Reference set "${source}" is invalid: ${what}`, {
    details: { source },
  });
}

/**
 * Parses and checks a stored reference set.
 *
 * @param json the parsed JSON value
 * @param source where it came from, for messages
 * @returns the reference set
 * @throws {VaspError} `reference_invalid` for a wrong format, a profile ID that does not
 *   match the profile, or a malformed region
 */
export function parseReferenceSet(json: unknown, source: string): ReferenceSet {
  const set = json as ReferenceSet;
  if (typeof set !== "object" || set === null || set.format !== REFERENCE_FORMAT) {
    throw invalid(source, `format is not "${REFERENCE_FORMAT}"`);
  }
  if (set.alg !== "sha256" && set.alg !== "sm3") throw invalid(source, `alg "${set.alg}"`);
  if (typeof set.profile !== "object" || set.profile === null) throw invalid(source, "no profile");
  if (profileId(set.profile) !== set.profileId) {
    throw invalid(source, `profile ID "${set.profileId}" does not match its profile`);
  }
  if (!Array.isArray(set.regions) || set.regions.length === 0) throw invalid(source, "no regions");
  for (const r of set.regions) {
    if (typeof r?.name !== "string" || !/^[0-9a-f]{64}$/.test(r.digest)) {
      throw invalid(source, `region ${JSON.stringify(r?.name)} has no 64-digit hex digest`);
    }
  }
  return set;
}

/**
 * Compares a measurement with a reference set, region by region (by name).
 *
 * @param reference the reference set
 * @param measurement a measurement with the same algorithm
 * @returns every differing region and every check violation
 * @throws {VaspError} `reference_mismatch` when the algorithms differ
 */
export function compareToReference(
  reference: ReferenceSet,
  measurement: KernelMeasurement,
): Comparison {
  if (reference.alg !== measurement.alg) {
    throw new VaspError(
      "reference_mismatch",
      `Reference set "${reference.profileId}" holds ${reference.alg} digests, ` +
        `the measurement is ${measurement.alg}`,
    );
  }
  const measured = new Map(measurement.regions.map((r) => [r.name, r]));
  const differences: Difference[] = [];
  for (const ref of reference.regions) {
    const got = measured.get(ref.name);
    measured.delete(ref.name);
    const base = { region: ref.name, expected: ref.digest };
    if (!got) {
      differences.push({
        ...base,
        status: "missing",
        actual: null,
        message: `Region "${ref.name}" was not measured`,
      });
    } else if (got.digest === null) {
      differences.push({
        ...base,
        status: "failed",
        actual: null,
        message: `Region "${ref.name}" could not be measured: ${got.error}`,
      });
    } else if (got.digest !== ref.digest) {
      differences.push({
        ...base,
        status: "changed",
        actual: got.digest,
        message: `Region "${ref.name}" differs from its reference: ${got.digest} ≠ ${ref.digest}`,
      });
    }
  }
  for (const extra of measured.values()) {
    differences.push({
      region: extra.name,
      status: "unexpected",
      expected: null,
      actual: extra.digest,
      message: `Region "${extra.name}" has no reference`,
    });
  }
  const violations = measurement.findings.filter((f) => f.violation);
  return { matches: differences.length === 0 && violations.length === 0, differences, violations };
}
