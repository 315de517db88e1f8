/**
 * The places where a running x86-64 Linux kernel legitimately rewrites its own text, read
 * from the kernel's image (vmlinuz's `vmlinux.bin`), never from the guest: the tables are
 * located by their System.map bounds and their entries decoded as Linux 6.x lays them out.
 * A guest can therefore neither add a site nor move one.
 *
 * | kind                | table                                           | patched when                    |
 * | ------------------- | ----------------------------------------------- | ------------------------------- |
 * | `jump_label`        | `__start___jump_table` (16-byte relative)       | a static key flips              |
 * | `ftrace`            | `__start_mcount_loc` (absolute addresses)       | a function is traced            |
 * | `ftrace_call`       | `ftrace_call`, `ftrace_regs_call` (5 bytes)     | the tracer changes              |
 * | `static_call`       | `__start_static_call_sites` (8-byte relative)   | a static call is retargeted     |
 * | `static_call_tramp` | `__SCT__*` trampolines in `.static_call.text`   | a static call is retargeted     |
 * | `alternative`       | `__alt_instructions` (12-byte relative)         | boot (CPU features)             |
 * | `paravirt`          | `__parainstructions` (16-byte absolute)         | boot                            |
 * | `retpoline`         | `__retpoline_sites` (relative)                  | boot (spectre_v2 mitigation)    |
 * | `return_thunk`      | `__return_sites` (relative)                     | boot (return mitigation)        |
 * | `smp_lock`          | `__smp_locks` (relative)                        | boot, CPU hotplug (1 ↔ n CPUs)  |
 *
 * Only sites inside `[_stext, _etext)` are kept: the others are in init text, freed after
 * boot, or padding. Offsets are from `_stext`, at link time.
 *
 * @module
 */
import { VaspError } from "../engine/error.ts";
import type { KernelSymbols } from "./symbols.ts";
import type { KernelImage } from "./vmlinuz.ts";

/** What patches a site, and so what it may hold. */
export type SiteKind =
  | "jump_label"
  | "ftrace"
  | "ftrace_call"
  | "static_call"
  | "static_call_tramp"
  | "alternative"
  | "paravirt"
  | "retpoline"
  | "return_thunk"
  | "smp_lock";

/** Every kind, in report order. */
const SITE_KINDS: readonly SiteKind[] = [
  "jump_label",
  "ftrace",
  "ftrace_call",
  "static_call",
  "static_call_tramp",
  "alternative",
  "paravirt",
  "retpoline",
  "return_thunk",
  "smp_lock",
];

/** A replacement an alternative may hold instead of its original instruction. */
export interface Replacement {
  /** Link-time address of the replacement bytes (in `.altinstr_replacement`). */
  readonly va: bigint;
  /** Its bytes as linked. */
  readonly bytes: Uint8Array;
}

/** One patch site. */
export interface PatchSite {
  readonly kind: SiteKind;
  /** Offset of its first byte from `_stext`. */
  readonly offset: number;
  /** Bytes the kernel may rewrite. */
  readonly len: number;
  /** The bytes as linked (the image's). */
  readonly original: Uint8Array;
  /** Jump label: link-time address its JMP goes to. Static call site: whether a tail call. */
  readonly target?: bigint;
  /** Static call site: the call is a tail call (JMP). */
  readonly tail?: boolean;
  /** Alternative: its replacements, in table order. */
  readonly replacements?: readonly Replacement[];
}

/** The sites of one kernel build. */
export interface PatchSites {
  /** Link-time `_stext`. */
  readonly start: bigint;
  /** Link-time `_etext`. */
  readonly end: bigint;
  /** Every site, by offset (an alternative's replacements merged into one site). */
  readonly sites: readonly PatchSite[];
  /** How many sites of each kind. */
  readonly counts: Readonly<Record<SiteKind, number>>;
  /** Milliseconds reading the tables took. */
  readonly loadMs: number;
}

/** The tables and how each is laid out. */
interface Table {
  readonly start: string;
  readonly end: string;
  readonly entry: number;
}

const TABLES = {
  jump_label: { start: "__start___jump_table", end: "__stop___jump_table", entry: 16 },
  ftrace: { start: "__start_mcount_loc", end: "__stop_mcount_loc", entry: 8 },
  static_call: { start: "__start_static_call_sites", end: "__stop_static_call_sites", entry: 8 },
  alternative: { start: "__alt_instructions", end: "__alt_instructions_end", entry: 12 },
  paravirt: { start: "__parainstructions", end: "__parainstructions_end", entry: 16 },
  retpoline: { start: "__retpoline_sites", end: "__retpoline_sites_end", entry: 4 },
  return_thunk: { start: "__return_sites", end: "__return_sites_end", entry: 4 },
  smp_lock: { start: "__smp_locks", end: "__smp_locks_end", entry: 4 },
} as const satisfies Partial<Record<SiteKind, Table>>;

/** `STATIC_CALL_SITE_TAIL`: a flag in the low bits of a static call site's key. */
const SC_TAIL = 1n;
const hex = (v: bigint) => `0x${v.toString(16)}`;

function invalid(source: string, what: string): VaspError {
  return new VaspError(
    "patch_sites_invalid",
    `Cannot read the patch sites of "${source}": ${what}`,
    {
      details: { source },
    },
  );
}

/** Reads a table's bytes from the image, or undefined when the map does not have it. */
function tableBytes(
  image: KernelImage,
  symbols: KernelSymbols,
  table: Table,
): { va: bigint; view: DataView; count: number } | undefined {
  const start = symbols.get(table.start);
  const end = symbols.get(table.end);
  if (start === undefined || end === undefined) return undefined;
  if (end < start || end - start > 1n << 26n) {
    throw invalid(image.source, `${table.start}..${table.end} is not a range`);
  }
  const len = Number(end - start);
  const bytes = image.elf.bytesAt(start, len);
  if (!bytes) {
    throw invalid(image.source, `${table.start} (${hex(start)}, ${len} bytes) is not in the image`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { va: start, view, count: Math.floor(len / table.entry) };
}

/** Length of the jump at a jump label from its bytes as linked: objtool writes NOP2/JMP8 or NOP5/JMP32. */
function jumpLabelLength(b: Uint8Array): number | undefined {
  if (b[0] === 0xeb || (b[0] === 0x66 && b[1] === 0x90)) return 2;
  if (
    b[0] === 0xe9 || (b[0] === 0x0f && b[1] === 0x1f && b[2] === 0x44 && b[3] === 0 && b[4] === 0)
  ) {
    return 5;
  }
  return undefined;
}

/**
 * Length of a call, jump or conditional jump with a 32-bit displacement, with the CS prefix
 * `-mindirect-branch-cs-prefix` puts before calls to retpoline thunks.
 */
function branchLength(b: Uint8Array): number | undefined {
  const p = b[0] === 0x2e ? 1 : 0;
  if (b[p] === 0xe8 || b[p] === 0xe9) return p + 5;
  if (b[p] === 0x0f && (b[p + 1]! & 0xf0) === 0x80) return p + 6;
  return undefined;
}

/**
 * Reads every patch site of a kernel build from its image.
 *
 * @param image the kernel's vmlinuz, loaded
 * @param symbols its System.map
 * @returns the sites inside the text, by offset, and their counts
 * @throws {VaspError} `patch_sites_invalid` when a table is not in the image, or a site's
 *   bytes are not an instruction its kind can patch (another kernel version's layout);
 *   `symbol_missing` without `_stext`/`_etext`
 * @example
 * ```ts ignore
 * // Needs a real kernel (tests/guest_sites_test.ts).
 * const sites = loadPatchSites(await loadKernelImage("vmlinuz"), symbols);
 * sites.counts.jump_label; // 5,822 in the text of Debian's 6.1 cloud kernel
 * ```
 */
export function loadPatchSites(image: KernelImage, symbols: KernelSymbols): PatchSites {
  const started = performance.now();
  const start = symbols.require("_stext");
  const end = symbols.require("_etext");
  const byKey = new Map<string, PatchSite>();
  const original = (va: bigint, len: number) => {
    const b = image.elf.bytesAt(va, len);
    if (!b) throw invalid(image.source, `site ${hex(va)} (+${len}) is not in the image`);
    return b;
  };
  const add = (kind: SiteKind, va: bigint, len: number, extra: Partial<PatchSite> = {}) => {
    if (len === 0 || va < start || va + BigInt(len) > end) return;
    const key = `${kind}:${va}`;
    const known = byKey.get(key);
    if (known?.replacements && extra.replacements) {
      byKey.set(key, { ...known, replacements: [...known.replacements, ...extra.replacements] });
      return;
    }
    // Every site has every field, in one order: one object shape for the 100,000 checks.
    byKey.set(key, {
      kind,
      offset: Number(va - start),
      len,
      original: original(va, len),
      target: extra.target,
      tail: extra.tail,
      replacements: extra.replacements,
    });
  };
  const rel = (t: { va: bigint; view: DataView }, at: number) =>
    t.va + BigInt(at) + BigInt(t.view.getInt32(at, true));
  const inText = (va: bigint) => va >= start && va < end;

  const jl = tableBytes(image, symbols, TABLES.jump_label);
  for (let i = 0; jl && i < jl.count; i++) {
    const code = rel(jl, i * 16);
    if (!inText(code)) continue;
    const len = jumpLabelLength(original(code, 5));
    if (len === undefined) {
      throw invalid(image.source, `jump label ${hex(code)} holds neither a NOP nor a JMP`);
    }
    add("jump_label", code, len, { target: rel(jl, i * 16 + 4) });
  }
  const mc = tableBytes(image, symbols, TABLES.ftrace);
  for (let i = 0; mc && i < mc.count; i++) add("ftrace", mc.view.getBigUint64(i * 8, true), 5);
  for (const name of ["ftrace_call", "ftrace_regs_call"]) {
    const va = symbols.get(name);
    if (va !== undefined) add("ftrace_call", va, 5);
  }
  const sc = tableBytes(image, symbols, TABLES.static_call);
  for (let i = 0; sc && i < sc.count; i++) {
    const key = rel(sc, i * 8 + 4);
    add("static_call", rel(sc, i * 8), 5, { tail: (key & SC_TAIL) !== 0n });
  }
  const sctStart = symbols.get("__static_call_text_start");
  const sctEnd = symbols.get("__static_call_text_end");
  if (sctStart !== undefined && sctEnd !== undefined) {
    for (const va of symbols.codeSymbolsIn(sctStart, sctEnd)) add("static_call_tramp", va, 5);
  }
  const alt = tableBytes(image, symbols, TABLES.alternative);
  for (let i = 0; alt && i < alt.count; i++) {
    const at = i * 12;
    const instr = rel(alt, at);
    const repl = rel(alt, at + 4);
    const instrLen = alt.view.getUint8(at + 10);
    const replLen = alt.view.getUint8(at + 11);
    add("alternative", instr, instrLen, {
      replacements: [{
        va: repl,
        bytes: replLen === 0 ? new Uint8Array() : original(repl, replLen),
      }],
    });
  }
  const pv = tableBytes(image, symbols, TABLES.paravirt);
  for (let i = 0; pv && i < pv.count; i++) {
    add("paravirt", pv.view.getBigUint64(i * 16, true), pv.view.getUint8(i * 16 + 9));
  }
  for (const kind of ["retpoline", "return_thunk"] as const) {
    const t = tableBytes(image, symbols, TABLES[kind]);
    for (let i = 0; t && i < t.count; i++) {
      const va = rel(t, i * 4);
      if (!inText(va)) continue;
      const len = branchLength(original(va, 3));
      if (len === undefined) throw invalid(image.source, `${kind} site ${hex(va)} is not a branch`);
      add(kind, va, len);
    }
  }
  const locks = tableBytes(image, symbols, TABLES.smp_lock);
  for (let i = 0; locks && i < locks.count; i++) add("smp_lock", rel(locks, i * 4), 1);

  // At one place, what is patched last first: alternatives are applied after paravirt.
  const order = (k: SiteKind) => k === "alternative" ? 0 : 1;
  const sites = [...byKey.values()].sort((a, b) =>
    a.offset - b.offset || a.len - b.len || order(a.kind) - order(b.kind)
  );
  const counts = Object.fromEntries(SITE_KINDS.map((k) => [k, 0])) as Record<SiteKind, number>;
  for (const s of sites) counts[s.kind]++;
  return { start, end, sites, counts, loadMs: performance.now() - started };
}
