/**
 * What the operator expects of the host: the digests recorded as expected (in the state
 * directory's `host-expected.json`), and the host state the policies see, each measured file
 * beside the digest expected of it.
 *
 * @module
 */
import type { HostState } from "../engine/mod.ts";
import { sha256Digest } from "../engine/context.ts";
import type { HostMeasurement } from "./measure.ts";

/** Host file names the policies see, by measured part. */
const HOST_FILE_NAMES: Readonly<Record<HostMeasurement["part"], string>> = {
  engine: "vasp-engine",
  library: "libvasp",
  policies: "policy-bundle",
  qemu: "qemu",
  kernel: "host-kernel",
};

/**
 * The host file name the policies see for a measured part.
 *
 * @param part the part
 * @returns its name, e.g. `qemu`, `host-kernel`
 */
export function hostFileName(part: HostMeasurement["part"]): string {
  return HOST_FILE_NAMES[part];
}

/** The expected host digests, set by the operator (`vasp serve --learn-host`). */
export const HOST_EXPECTED_FILE = "host-expected.json";

/**
 * The host state the policies see: each measured file with the digest the operator expects
 * (none: empty, which policies requiring expected files deny).
 *
 * @param measured what the ASP measured
 * @param expected expected digests by host file name
 * @param options `at`, the measurement time; `bootId`
 * @returns the host state
 */
export function hostState(
  measured: readonly HostMeasurement[],
  expected: Readonly<Record<string, string>>,
  options: { at: Date; bootId: string },
): HostState {
  const files: Record<string, { digest: string; expected: string }> = {};
  for (const m of measured) {
    if (m.sha256 === undefined) continue;
    const name = HOST_FILE_NAMES[m.part];
    files[name] = { digest: sha256Digest(m.sha256), expected: expected[name] ?? "" };
  }
  return { asp: "soft", bootId: options.bootId, files, measuredAt: options.at };
}

/**
 * The host's boot ID, which tells one boot of the host from the next.
 *
 * @returns the boot ID, "" where the kernel does not give one
 */
export function bootId(): string {
  try {
    return Deno.readTextFileSync("/proc/sys/kernel/random/boot_id").trim();
  } catch {
    return "";
  }
}
