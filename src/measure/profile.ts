/**
 * The measurement profile: everything that changes a kernel's runtime text reproducibly (the
 * kernel build, the QEMU version, the CPU model, the vCPU count, the mitigation-related
 * command line). One reference set per profile serves every boot of it.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** What a reference set is keyed by. */
export interface MeasurementProfile {
  /** The kernel's `linux_banner` (release, compiler, build number, date). */
  readonly kernel: string;
  /** The GNU build ID of vmlinux, when known. */
  readonly buildId: string | null;
  /** QEMU version, e.g. `7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)`. */
  readonly qemu: string;
  /** CPU model, e.g. `qemu64`, `max`. */
  readonly cpu: string;
  /** vCPU count. */
  readonly smp: number;
  /** Command-line words that change the text, sorted. */
  readonly cmdline: readonly string[];
}

/**
 * Parameters whose value changes what the kernel patches into its text: CPU-bug mitigations,
 * and features that steer alternatives. `nokaslr`/`kaslr` is not among them: normalisation
 * undoes the slide.
 */
export const TEXT_PARAMETERS: readonly string[] = [
  "clearcpuid",
  "gather_data_sampling",
  "ibt",
  "indirect_target_selection",
  "kpti",
  "l1d_flush",
  "l1tf",
  "mds",
  "mitigations",
  "mmio_stale_data",
  "noibpb",
  "noibrs",
  "noinvpcid",
  "nopcid",
  "nopti",
  "nosmt",
  "nospec_store_bypass_disable",
  "nospectre_bhb",
  "nospectre_v1",
  "nospectre_v2",
  "pti",
  "reg_file_data_sampling",
  "retbleed",
  "spec_rstack_overflow",
  "spec_store_bypass_disable",
  "spectre_bhi",
  "spectre_v2",
  "spectre_v2_user",
  "srbds",
  "tsa",
  "tsx",
  "tsx_async_abort",
  "vmscape",
];

/**
 * The words of a kernel command line that belong in the profile.
 *
 * @param cmdline the whole command line
 * @returns the words whose parameter is in {@linkcode TEXT_PARAMETERS}, sorted, deduplicated
 * @example
 * ```ts
 * textParameters("console=ttyS0 mitigations=off nokaslr quiet"); // ["mitigations=off"]
 * ```
 */
export function textParameters(cmdline: string): string[] {
  const words = cmdline.split(/\s+/).filter((w) => {
    const name = w.split("=", 1)[0]!.replaceAll("-", "_");
    return TEXT_PARAMETERS.includes(name);
  });
  return [...new Set(words)].sort();
}

/**
 * Builds a profile, checking each field.
 *
 * @param input the facts; `cmdline` is the whole command line
 * @returns the profile with the command line reduced to its text parameters
 * @throws {TypeError} for an empty kernel, QEMU version or CPU model
 * @throws {RangeError} for a vCPU count that is not a positive integer
 */
export function makeProfile(input: {
  kernel: string;
  buildId?: string | null;
  qemu: string;
  cpu: string;
  smp: number;
  cmdline: string;
}): MeasurementProfile {
  for (const key of ["kernel", "qemu", "cpu"] as const) {
    if (typeof input[key] !== "string" || input[key].trim() === "") {
      throw new TypeError(`Profile field "${key}" must be a non-empty string`);
    }
  }
  if (!Number.isSafeInteger(input.smp) || input.smp < 1) {
    throw new RangeError(`Profile vCPU count ${input.smp} is not a positive integer`);
  }
  return {
    kernel: input.kernel.trim(),
    buildId: input.buildId ?? null,
    qemu: input.qemu.trim(),
    cpu: input.cpu.trim(),
    smp: input.smp,
    cmdline: textParameters(input.cmdline),
  };
}

/**
 * The profile's identifier: the first 32 hex digits of the SHA-256 of its fields in a fixed
 * order.
 *
 * @param profile the profile
 * @returns 32 lowercase hex characters
 */
export function profileId(profile: MeasurementProfile): string {
  const canonical = JSON.stringify([
    profile.kernel,
    profile.buildId,
    profile.qemu,
    profile.cpu,
    profile.smp,
    [...profile.cmdline].sort(),
  ]);
  return createHash("sha256").update(canonical).digest("hex").slice(0, 32);
}
