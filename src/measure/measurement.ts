/**
 * What one measurement of a guest kernel produced: each region's digest (KASLR undone), the
 * placement found, and what the table checks found.
 *
 * @module
 */
import type { KernelLayout } from "./kaslr.ts";
import type { RegionKind } from "./regions.ts";
import type { SiteKind } from "./patch_sites.ts";
import type { SiteState } from "./site_check.ts";
import type { Finding } from "./tables.ts";

/** Hash algorithm names (as in ffi/hash.ts, kept here so pure code needs no FFI). */
export type DigestAlg = "sha256" | "sm3";

/** One measured region. */
export interface RegionMeasurement {
  /** Region name, e.g. `kernel_text`. */
  readonly name: string;
  /** What it holds. */
  readonly kind: RegionKind;
  /** Link-time virtual address. */
  readonly linkedVa: bigint;
  /** Runtime virtual address (link-time plus the slide). */
  readonly va: bigint;
  /** Guest-physical address it was expected at. */
  readonly phys: bigint;
  /** Length in bytes. */
  readonly len: number;
  /**
   * Lowercase hex digest of the bytes with KASLR undone (the text's patch sites masked when
   * the kernel image is known), or null when it failed.
   */
  readonly digest: string | null;
  /** Why the region could not be measured (`code: message`), or null. */
  readonly error: string | null;
  /** The digest the kernel image gives for this region; absent without the image or for the IDT. */
  readonly expected?: string;
}

/** The text's patch sites: how many of each kind, and what they hold. */
export interface SitesMeasurement {
  /** Sites of each kind in the text, from the kernel image. */
  readonly counts: Readonly<Record<SiteKind, number>>;
  /** What they hold now. */
  readonly state: SiteState;
}

/** A whole measurement. */
export interface KernelMeasurement {
  /** The hash algorithm. */
  readonly alg: DigestAlg;
  /** Where the kernel was found. */
  readonly layout: KernelLayout;
  /** The page-table root the regions were read through. */
  readonly cr3: bigint;
  /** Paging depth used. */
  readonly paging: 4 | 5;
  /** Whether text and read-only data had the slide undone (false: raw, slide ≠ 0, no vmlinuz). */
  readonly normalised: boolean;
  /** Every region, in plan order. */
  readonly regions: readonly RegionMeasurement[];
  /** What the table checks found (violations and notes). */
  readonly findings: readonly Finding[];
  /** Milliseconds the measurement took. */
  readonly elapsedMs: number;
  /**
   * Text and read-only regions whose digest was computed this time, because their keyed MAC
   * changed or they had never been hashed; the others kept the digest of their unchanged
   * bytes. Absent where the measurer does not track it.
   */
  readonly rehashed?: readonly string[];
  /** The text's patch sites, when the kernel image is known (their violations are findings). */
  readonly sites?: SitesMeasurement;
}

/** Where `_text` sits in guest-physical memory when nothing moved it (CONFIG_PHYSICAL_START). */
const DEFAULT_PHYS_TEXT = 0x1000000n;

/**
 * A measurement of regions whose digests were taken where no KASLR slide had to be found or
 * undone: the layout says so (no slide, `_text` at 16 MiB, one candidate tried), 4-level
 * paging, normalised. The demo's stand-in guest reports its regions this way, and tests of
 * what judges and schedules measurements build theirs with it.
 *
 * @param regions the measured regions, in plan order
 * @param options `banner`: the kernel's banner (default `""`); `alg` (default SHA-256),
 *   `normalised`, `findings`, `elapsedMs` (default 0) as in {@link KernelMeasurement}
 * @returns the measurement
 * @example
 * ```ts
 * import { unslidMeasurement } from "./measurement.ts";
 * const m = unslidMeasurement([], { banner: "Linux version 6.1.0" });
 * if (m.layout.virtOffset !== 0n || m.alg !== "sha256") throw new Error("not unslid");
 * ```
 */
export function unslidMeasurement(
  regions: readonly RegionMeasurement[],
  options: Partial<Pick<KernelMeasurement, "alg" | "normalised" | "findings" | "elapsedMs">> & {
    banner?: string;
  } = {},
): KernelMeasurement {
  return {
    alg: options.alg ?? "sha256",
    layout: {
      physText: DEFAULT_PHYS_TEXT,
      physOffset: 0n,
      virtOffset: 0n,
      banner: options.banner ?? "",
      syscallOutliers: [],
      candidatesTried: 1,
    },
    cr3: 0n,
    paging: 4,
    normalised: options.normalised ?? true,
    regions,
    findings: options.findings ?? [],
    elapsedMs: options.elapsedMs ?? 0,
  };
}
