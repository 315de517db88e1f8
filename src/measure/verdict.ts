/**
 * A measurement judged against its reference set, region by region, in the engine's words
 * (`ok`, `differs`, `missing`, `error`): what the monitor records and the policies read. And
 * the measurement's digest, which the monitor extends into the VM's vASP instance.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { MeasurementStatus } from "../engine/mod.ts";
import type { KernelMeasurement } from "./measurement.ts";
import type { ReferenceSet } from "./reference.ts";

/** One region's verdict. */
export interface RegionVerdict {
  /** Region name. */
  readonly region: string;
  /** Measured digest, hex; `""` when it could not be measured. */
  readonly digest: string;
  /** Reference digest, hex; `null` when there is none. */
  readonly reference: string | null;
  /** The verdict. */
  readonly status: MeasurementStatus;
  /** Why it is not `ok`; `""` when it is. */
  readonly detail: string;
}

/**
 * Judges every region of a measurement. A region differs when its digest is not its
 * reference's, or when a table check found a violation in it (a forged IDTR leaves the table
 * intact); it is an `error` when it could not be measured, or when its text was measured with
 * a KASLR slide not undone (its digest would differ from any reference for no fault of the
 * guest); `missing` when there is no reference for it, or it was not measured. Without a
 * reference set, a region's reference is what the kernel image gives (`expected`: text with
 * its patch sites masked, read-only data, syscall tables); the IDT, built at boot, then has
 * none.
 *
 * @param reference the profile's reference set, `undefined` when none was learned
 * @param measurement the measurement
 * @param options `profileId`, for the detail of a missing reference set
 * @returns one verdict per measured or referenced region, by region name
 * @example
 * ```ts ignore
 * // Needs a guest kernel's measurement and its learned reference set (verdict_test.ts).
 * const verdicts = judge(await loadReferenceSet(dir, id), measurement, { profileId: id });
 * ```
 */
export function judge(
  reference: ReferenceSet | undefined,
  measurement: KernelMeasurement,
  options: { profileId: string },
): RegionVerdict[] {
  const refs = new Map(
    reference?.alg === measurement.alg ? reference.regions.map((r) => [r.name, r.digest]) : [],
  );
  const noSet = reference === undefined
    ? `no reference set for profile ${options.profileId} (learn one with "vasp refs learn")`
    : reference.alg !== measurement.alg
    ? `the reference set holds ${reference.alg} digests, the measurement is ${measurement.alg}`
    : undefined;
  const verdicts = new Map<string, RegionVerdict>();
  for (const r of measurement.regions) {
    // Without a learned reference, the kernel image's digest is the reference.
    const ref = refs.get(r.name) ?? (reference === undefined ? r.expected : undefined) ?? null;
    refs.delete(r.name);
    const violations = measurement.findings
      .filter((f) => f.violation && f.region === r.name).map((f) => f.message);
    const raw = !measurement.normalised && (r.kind === "text" || r.kind === "rodata");
    const [status, detail]: [MeasurementStatus, string] = r.digest === null
      ? ["error", r.error ?? "not measured"]
      : raw
      ? ["error", "measured with the KASLR slide not undone: give the kernel's vmlinuz"]
      : violations.length > 0
      ? ["differs", violations.join("; ")]
      : ref === null
      ? ["missing", noSet ?? "no reference for this region"]
      : r.digest !== ref
      ? ["differs", `differs from its reference ${ref}`]
      : ["ok", ""];
    verdicts.set(r.name, {
      region: r.name,
      digest: r.digest ?? "",
      reference: ref,
      status,
      detail,
    });
  }
  for (const [region, digest] of refs) {
    verdicts.set(region, {
      region,
      digest: "",
      reference: digest,
      status: "missing",
      detail: "in the reference set but not measured",
    });
  }
  return [...verdicts.values()].sort((a, b) => a.region < b.region ? -1 : 1);
}

/**
 * Every region an error, for a measurement that could not be taken at all.
 *
 * @param regions the regions to report (those measured before, or planned)
 * @param error what failed
 * @returns one `error` verdict per region
 */
export function failedVerdicts(regions: readonly string[], error: string): RegionVerdict[] {
  return [...new Set(regions)].sort().map((region) => ({
    region,
    digest: "",
    reference: null,
    status: "error",
    detail: error,
  }));
}

/**
 * The canonical text of a set of verdicts (`region status digest` lines, sorted) and its
 * SHA-256: the value the monitor extends into the vASP instance when it changes.
 *
 * @param verdicts the verdicts
 * @returns the text and its digest, hex
 */
export function verdictDigest(
  verdicts: readonly RegionVerdict[],
): { text: string; digest: string } {
  const text = verdicts.map((v) => `${v.region} ${v.status} ${v.digest || "-"}\n`).sort().join("");
  return { text, digest: createHash("sha256").update(text).digest("hex") };
}
