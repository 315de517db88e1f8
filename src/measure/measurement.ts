/**
 * What one measurement of a guest kernel produced: each region's digest (KASLR undone), the
 * placement found, and what the table checks found.
 *
 * @module
 */
import type { KernelLayout } from "./kaslr.ts";
import type { RegionKind } from "./regions.ts";
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
  /** Lowercase hex digest of the bytes with KASLR undone, or null when it failed. */
  readonly digest: string | null;
  /** Why the region could not be measured (`code: message`), or null. */
  readonly error: string | null;
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
}
