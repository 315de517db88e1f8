/**
 * Finding where a KASLR kernel sits, from guest RAM alone: the physical address of `_text`
 * (searching `linux_banner` at every aligned candidate) and the virtual slide (the one offset
 * that puts the syscall table's entries on function entries in the kernel text).
 *
 * Everything read is guest-controlled: reads are bounded by the RAM size and the candidate
 * count, and a table the guest tampered with can lower the vote, not redirect it.
 *
 * @module
 */
import { VaspError } from "../engine/error.ts";
import { type KernelSymbols, START_KERNEL_MAP } from "./symbols.ts";
import { checkSyscallTable, tableEntries } from "./tables.ts";

/** Reads guest-physical memory (GuestMemory satisfies it). */
export interface PhysReader {
  /** Guest RAM size in bytes. */
  readonly size: bigint;
  /** Copies `len` bytes at guest-physical `gpa`; throws outside guest RAM. */
  readPhys(gpa: bigint, len: number): Uint8Array;
}

/** Where the kernel runs, relative to where it was linked. */
export interface KernelLayout {
  /** Guest-physical address of `_text`. */
  readonly physText: bigint;
  /** Physical slide: `physText` minus the link-time physical address (0 under `nokaslr`). */
  readonly physOffset: bigint;
  /** Virtual slide: runtime minus link-time virtual address (0 under `nokaslr`). */
  readonly virtOffset: bigint;
  /** The `linux_banner` found at `physText`, up to its newline. */
  readonly banner: string;
  /** Syscall-table entries that do not land in the slid `[_stext, _etext)`, by index. */
  readonly syscallOutliers: readonly number[];
  /** Physical candidates whose banner was examined. */
  readonly candidatesTried: number;
}

/** How the search is bounded. */
export interface KaslrOptions {
  /** KASLR step (CONFIG_PHYSICAL_ALIGN), 2 MiB by default. */
  alignment?: bigint;
  /** Highest virtual slide to try (the kernel image area is 1 GiB). */
  maxVirtOffset?: bigint;
}

const BANNER_PREFIX = new TextEncoder().encode("Linux version ");
const MAX_BANNER = 512;
/** Entries sampled when voting for the virtual slide. */
const VOTERS = 32;
/** At least this share of entries must agree with the slide found. */
const QUORUM = 0.875;

/** The syscall table's symbol span, as 64-bit slots (padding to the next symbol included). */
export function tableSlots(symbols: KernelSymbols, name: string): number {
  const start = symbols.require(name);
  const next = symbols.nextAfter(start);
  if (next === undefined || (next - start) % 8n !== 0n || next - start > 65536n) {
    throw new VaspError(
      "symbols_invalid",
      `Cannot size "${name}" at 0x${start.toString(16)} from "${symbols.source}"`,
      { details: { symbol: name } },
    );
  }
  return Number((next - start) / 8n);
}

function readBanner(memory: PhysReader, gpa: bigint): string | undefined {
  const head = memory.readPhys(gpa, BANNER_PREFIX.length);
  if (!BANNER_PREFIX.every((b, i) => head[i] === b)) return undefined;
  const len = Number(memory.size - gpa < BigInt(MAX_BANNER) ? memory.size - gpa : MAX_BANNER);
  const bytes = memory.readPhys(gpa, len);
  let end = bytes.findIndex((b) => b === 0 || b === 0x0a);
  if (end < 0) end = bytes.length;
  return new TextDecoder().decode(bytes.subarray(0, end));
}

/** The virtual slide most entries agree on, and the entries that disagree. */
function voteSlide(
  table: Uint8Array,
  symbols: KernelSymbols,
  options: Required<KaslrOptions>,
): { slide: bigint; outliers: number[] } | undefined {
  const entries = tableEntries(table);
  const voters = entries.slice(0, VOTERS);
  let best: { slide: bigint; votes: number } | undefined;
  for (let slide = 0n; slide <= options.maxVirtOffset; slide += options.alignment) {
    let votes = 0;
    for (const e of voters) if (symbols.isCodeSymbol(e - slide)) votes++;
    if (votes > (best?.votes ?? 0)) best = { slide, votes };
  }
  if (!best || best.votes < voters.length * QUORUM) return undefined;
  const slide = best.slide;
  const outliers = checkSyscallTable("sys_call_table", table, {
    start: symbols.require("_stext"),
    end: symbols.require("_etext"),
    slide,
  }).map((f) => f.index!);
  if (entries.length - outliers.length < entries.length * QUORUM) return undefined;
  return { slide, outliers };
}

/**
 * Finds the physical and virtual placement of the kernel in guest RAM.
 *
 * @param memory guest-physical reader
 * @param symbols the kernel's System.map (link-time addresses)
 * @param options alignment and the virtual range to search
 * @returns the layout; `syscallOutliers` lists entries that failed validation (a hooked table)
 * @throws {VaspError} `kaslr_not_found` when no candidate has the banner and a syscall table
 *   a quorum of whose entries land on functions in the slid text; `symbol_missing`
 * @example
 * ```ts ignore
 * // Needs a guest's RAM and its kernel's System.map (tests/guest_measure_test.ts).
 * const layout = discoverKaslr(ram, symbols);
 * ```
 */
export function discoverKaslr(
  memory: PhysReader,
  symbols: KernelSymbols,
  options: KaslrOptions = {},
): KernelLayout {
  const opts: Required<KaslrOptions> = {
    alignment: options.alignment ?? 0x200000n,
    maxVirtOffset: options.maxVirtOffset ?? 0x40000000n,
  };
  if (opts.alignment <= 0n || opts.alignment % 4096n !== 0n) {
    throw new RangeError(`KASLR alignment ${opts.alignment} is not a multiple of 4096`);
  }
  const text = symbols.require("_text");
  const linkedPhys = text - START_KERNEL_MAP;
  const bannerOff = symbols.require("linux_banner") - text;
  const sctOff = symbols.require("sys_call_table") - text;
  const sctLen = tableSlots(symbols, "sys_call_table") * 8;
  const span = (symbols.get("_end") ?? symbols.require("_etext")) - text;
  const candidates = [linkedPhys];
  for (let c = 0n; c + span <= memory.size; c += opts.alignment) {
    if (c !== linkedPhys) candidates.push(c);
  }
  let tried = 0;
  for (const physText of candidates) {
    if (physText + span > memory.size) continue;
    tried++;
    const banner = readBanner(memory, physText + bannerOff);
    if (banner === undefined) continue;
    const vote = voteSlide(memory.readPhys(physText + sctOff, sctLen), symbols, opts);
    if (!vote) continue;
    return {
      physText,
      physOffset: physText - linkedPhys,
      virtOffset: vote.slide,
      banner,
      syscallOutliers: vote.outliers,
      candidatesTried: tried,
    };
  }
  throw new VaspError(
    "kaslr_not_found",
    `Cannot find the kernel of "${symbols.source}" in ${memory.size} bytes of guest RAM ` +
      `(${tried} candidates at ${opts.alignment}-byte steps)`,
    { details: { candidates: tried } },
  );
}
