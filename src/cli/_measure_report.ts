/**
 * How `vasp measure` and `vasp refs …` print a measurement: a table for people, JSON (with
 * addresses as hex strings) for programs.
 *
 * @module
 */
import type { Comparison, KernelMeasurement, MeasurementProfile } from "../measure/mod.ts";
import { profileId } from "../measure/mod.ts";

const hex = (v: bigint) => `0x${v.toString(16)}`;

/** A region digest in the form vASP prints digests: `<alg>:<hex>` (`sha256:…`, `sm3:…`). */
const digestOf = (m: KernelMeasurement, digest: string | null) =>
  digest === null ? null : `${m.alg}:${digest}`;

/**
 * The measurement as plain JSON.
 *
 * @param m the measurement
 * @param profile its profile, when known
 * @returns a JSON-serialisable object
 */
export function measurementJson(
  m: KernelMeasurement,
  profile?: MeasurementProfile,
): Record<string, unknown> {
  return {
    alg: m.alg,
    kaslr: {
      physText: hex(m.layout.physText),
      physOffset: hex(m.layout.physOffset),
      virtOffset: hex(m.layout.virtOffset),
      candidatesTried: m.layout.candidatesTried,
    },
    kernel: m.layout.banner,
    cr3: hex(m.cr3),
    paging: m.paging,
    normalised: m.normalised,
    profile: profile ? { id: profileId(profile), ...profile } : undefined,
    regions: m.regions.map((r) => ({
      name: r.name,
      kind: r.kind,
      va: hex(r.va),
      linkedVa: hex(r.linkedVa),
      phys: hex(r.phys),
      len: r.len,
      digest: digestOf(m, r.digest),
      expected: digestOf(m, r.expected ?? null) ?? undefined,
      error: r.error ?? undefined,
    })),
    sites: m.sites,
    findings: m.findings.map((f) => ({
      ...f,
      address: f.address === undefined ? undefined : hex(f.address),
    })),
    elapsedMs: Number(m.elapsedMs.toFixed(3)),
  };
}

/**
 * The measurement as a table: placement, then one line per region, then findings.
 *
 * @param m the measurement
 * @param discoveryMs how long finding the kernel took
 * @returns printable text
 */
export function measurementText(m: KernelMeasurement, discoveryMs: number): string {
  const l = m.layout;
  const width = Math.max(...m.regions.map((r) => r.name.length), 6);
  const lines = [
    `kernel      ${l.banner}`,
    `kaslr       _text at physical ${hex(l.physText)} (offset ${hex(l.physOffset)}), ` +
    `virtual offset ${hex(l.virtOffset)}; found in ${discoveryMs.toFixed(1)} ms ` +
    `(${l.candidatesTried} candidates), confirmed by a ${m.paging}-level walk from CR3 ${
      hex(m.cr3)
    }`,
    `normalised  ${m.normalised ? "yes" : "NO: KASLR slide and no --vmlinuz (raw digests)"}`,
    "",
    `${"region".padEnd(width)}  ${"address".padEnd(18)}  ${"size".padStart(9)}  digest`,
    ...m.regions.map((r) =>
      `${r.name.padEnd(width)}  ${hex(r.va).padEnd(18)}  ${String(r.len).padStart(9)}  ${
        digestOf(m, r.digest) ?? `FAILED ${r.error}`
      }${r.expected === undefined ? "" : r.expected === r.digest ? "  = image" : "  ≠ image"}`
    ),
  ];
  if (m.sites) {
    const s = m.sites.state;
    const total = Object.values(m.sites.counts).reduce((a, b) => a + b, 0);
    lines.push(
      `patch sites ${total} masked and checked: ${s.jumpLabelsOn} jump labels on, ftrace on at ` +
        `${s.ftraceEnabledSites} function entries (tracer ${s.ftraceTracer ?? "none"}), ` +
        `${s.staticCallsRetargeted} static calls not as linked`,
    );
  }
  for (const f of m.findings) lines.push(`${f.violation ? "VIOLATION" : "note"}: ${f.message}`);
  lines.push(`measured in ${m.elapsedMs.toFixed(1)} ms`);
  return lines.join("\n");
}

/**
 * A comparison as text: one line per differing region and per violation.
 *
 * @param c the comparison
 * @returns printable text
 */
export function comparisonText(c: Comparison): string {
  if (c.matches) return "every region matches its reference";
  return [
    ...c.differences.map((d) => `DIFFERS ${d.region} (${d.status}): ${d.message}`),
    ...c.violations.map((f) => `VIOLATION ${f.region}: ${f.message}`),
  ].join("\n");
}
