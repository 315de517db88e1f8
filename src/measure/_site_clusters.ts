/**
 * The patch sites of one text grouped into clusters of overlapping sites, with per-cluster
 * state a `SiteChecker` keeps between checks. Private to src/measure.
 *
 * @module
 */
import type { PatchSite } from "./patch_sites.ts";
import type { SiteViolation } from "./site_check.ts";

/**
 * The sites grouped into clusters of overlapping ones, with what each cluster's bytes were
 * at the last check and what that check found.
 */
export interface Clusters {
  readonly count: number;
  /** Index of each cluster's first site; one more entry closes the last. */
  readonly first: Int32Array;
  readonly spanAt: Int32Array;
  readonly spanLen: Int32Array;
  readonly seenAt: Int32Array;
  readonly seen: Uint8Array;
  /** Each one-site cluster's bytes as linked, where `seen` has its bytes. */
  readonly original: Uint8Array;
  /** Each one-site cluster's `QUICK_*` states, `QUICK_NONE` for a larger cluster. */
  readonly quick: Uint8Array;
  readonly fact: Uint8Array;
  /** When each cluster was first seen in flux, 0 when it is not. */
  readonly fluxSince: Float64Array;
  /** 1 for a cluster with violations (kept in `violations`). */
  readonly failing: Uint8Array;
  readonly violations: Map<number, SiteViolation[]>;
  /** Offset of `ftrace_call`, whose target names the tracer. */
  readonly tracerAt: number | undefined;
  tracer: string | null;
}

/**
 * The common states of a site's kind, which most of the 100,000 sites of a boot hold: its NOP,
 * a LOCK or DS prefix, a RET or a JMP to a return thunk with INT3 padding, its bytes as
 * linked, a CALL (JMP for a tail call) to a function entry. A one-site cluster in one of them
 * is accepted without the general path.
 */
export const QUICK_NONE = 0;
export const QUICK_NOP = 1;
export const QUICK_LOCK = 2;
export const QUICK_RETURN = 3;
export const QUICK_ORIGINAL = 4;
export const QUICK_CALL = 5;
export const QUICK_TAIL_CALL = 6;

/** The `QUICK_*` states a site's kind has. */
export function quickOf(s: PatchSite): number {
  switch (s.kind) {
    case "jump_label":
    case "ftrace":
      return QUICK_NOP;
    case "smp_lock":
      return QUICK_LOCK;
    case "return_thunk":
      return QUICK_RETURN;
    case "retpoline":
      return QUICK_ORIGINAL;
    case "static_call":
      return s.tail ? QUICK_TAIL_CALL : QUICK_CALL;
    case "static_call_tramp":
      return QUICK_TAIL_CALL;
    default:
      return QUICK_NONE;
  }
}

/**
 * Groups sites sorted by offset into clusters of overlapping ones.
 *
 * @param sites the sites, by offset
 * @param tracerAt offset of `ftrace_call`, if the kernel has it
 * @returns the clusters, with empty per-check state
 */
export function cluster(sites: readonly PatchSite[], tracerAt: number | undefined): Clusters {
  const first: number[] = [];
  const spanAt: number[] = [];
  const spanLen: number[] = [];
  for (let i = 0; i < sites.length;) {
    const at = sites[i]!.offset;
    let end = at + sites[i]!.len;
    let j = i + 1;
    for (; j < sites.length && sites[j]!.offset < end; j++) {
      end = Math.max(end, sites[j]!.offset + sites[j]!.len);
    }
    first.push(i);
    spanAt.push(at);
    spanLen.push(end - at);
    i = j;
  }
  const seenAt = new Int32Array(first.length);
  let total = 0;
  spanLen.forEach((n, k) => {
    seenAt[k] = total;
    total += n;
  });
  // Flat copies: the quick path reads no site object.
  const quick = new Uint8Array(first.length);
  const original = new Uint8Array(total);
  first.forEach((i, k) => {
    if ((first[k + 1] ?? sites.length) - i !== 1) return;
    quick[k] = quickOf(sites[i]!);
    original.set(sites[i]!.original, seenAt[k]!);
  });
  return {
    count: first.length,
    first: Int32Array.from([...first, sites.length]),
    spanAt: Int32Array.from(spanAt),
    spanLen: Int32Array.from(spanLen),
    seenAt,
    seen: new Uint8Array(total),
    original,
    quick,
    fact: new Uint8Array(first.length),
    fluxSince: new Float64Array(first.length),
    failing: new Uint8Array(first.length),
    violations: new Map(),
    tracerAt,
    tracer: null,
  };
}
