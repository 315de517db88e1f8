/**
 * What to measure in a kernel, planned from its symbols alone: the text, the read-only data
 * without the window the kernel writes once at boot, the syscall tables and the IDT.
 *
 * @module
 */
import { VaspError } from "../engine/error.ts";
import { tableSlots } from "./kaslr.ts";
import type { KernelSymbols } from "./symbols.ts";

/** What a region holds; decides how it is read, normalised and checked. */
export type RegionKind = "text" | "rodata" | "syscall_table" | "idt";

/** One region, at its link-time address. */
export interface RegionSpec {
  /** Stable name within a kernel build: `kernel_text`, `rodata.1`, `sys_call_table` … */
  readonly name: string;
  /** What it holds. */
  readonly kind: RegionKind;
  /** Link-time virtual address of its first byte. */
  readonly linkedVa: bigint;
  /** Length in bytes. */
  readonly len: number;
}

/** Syscall tables an x86-64 kernel may have; those in the map are measured. */
export const SYSCALL_TABLES = ["sys_call_table", "ia32_sys_call_table", "x32_sys_call_table"];
/** 256 gates of 16 bytes. */
export const IDT_BYTES = 4096;

function span(symbols: KernelSymbols, start: string, end: string): [bigint, bigint] {
  const a = symbols.require(start);
  const b = symbols.require(end);
  if (b <= a || b - a > 1n << 30n) {
    throw new VaspError(
      "symbols_invalid",
      `"${start}".."${end}" (0x${a.toString(16)}..0x${b.toString(16)}) in "${symbols.source}" ` +
        `is not a range`,
      { details: { start, end } },
    );
  }
  return [a, b];
}

/**
 * Splits `[start, end)` around holes, naming the pieces `<prefix>.1`, `<prefix>.2` … in
 * address order.
 */
function carve(
  prefix: string,
  start: bigint,
  end: bigint,
  holes: [bigint, bigint][],
): RegionSpec[] {
  const pieces: RegionSpec[] = [];
  let at = start;
  const inside = holes.filter(([a, b]) => b > start && a < end).sort((x, y) =>
    x[0] < y[0] ? -1 : 1
  );
  for (const [a, b] of [...inside, [end, end] as [bigint, bigint]]) {
    const stop = a < end ? a : end;
    if (stop > at) {
      pieces.push({
        name: `${prefix}.${pieces.length + 1}`,
        kind: "rodata",
        linkedVa: at,
        len: Number(stop - at),
      });
    }
    if (b > at) at = b;
  }
  return pieces;
}

/**
 * Plans the regions of a kernel: `kernel_text` [_stext, _etext); the syscall tables, sized
 * to the next symbol; `idt_table`; and the read-only data [__start_rodata, __end_rodata)
 * cut around `[__start_ro_after_init, __end_ro_after_init)` (written during boot, different
 * every boot) and around the syscall tables (measured on their own, so a hook names them).
 *
 * @param symbols the kernel's System.map
 * @returns the regions, text first, in a stable order
 * @throws {VaspError} `symbol_missing` or `symbols_invalid` when a bound is missing or out of
 *   order
 * @example
 * ```ts
 * import { planRegions } from "./regions.ts";
 * import { parseSymbolMap } from "./symbols.ts";
 * const symbols = parseSymbolMap([
 *   "ffffffff81000000 T _stext",
 *   "ffffffff81600000 T _etext",
 *   "ffffffff81800000 D __start_rodata",
 *   "ffffffff81800100 D sys_call_table",
 *   "ffffffff81800148 d after_table",
 *   "ffffffff81a00000 D __start_ro_after_init",
 *   "ffffffff81a10000 D __end_ro_after_init",
 *   "ffffffff81c00000 D __end_rodata",
 *   "ffffffff82000000 b idt_table",
 *   "ffffffff82001000 b after_idt",
 * ].join("\n"), "System.map");
 * const names = planRegions(symbols).map((r) => r.name);
 * // ["kernel_text", "rodata.1", "rodata.2", "rodata.3", "sys_call_table", "idt_table"]
 * if (names.at(-1) !== "idt_table") throw new Error(names.join());
 * ```
 */
export function planRegions(symbols: KernelSymbols): RegionSpec[] {
  const [stext, etext] = span(symbols, "_stext", "_etext");
  const [rodata, rodataEnd] = span(symbols, "__start_rodata", "__end_rodata");
  const tables: RegionSpec[] = SYSCALL_TABLES.filter((n) => symbols.get(n) !== undefined)
    .map((name) => ({
      name,
      kind: "syscall_table",
      linkedVa: symbols.require(name),
      len: tableSlots(symbols, name) * 8,
    }));
  const holes: [bigint, bigint][] = tables.map((t) => [t.linkedVa, t.linkedVa + BigInt(t.len)]);
  if (symbols.get("__start_ro_after_init") !== undefined) {
    holes.push(span(symbols, "__start_ro_after_init", "__end_ro_after_init"));
  }
  return [
    { name: "kernel_text", kind: "text", linkedVa: stext, len: Number(etext - stext) },
    ...carve("rodata", rodata, rodataEnd, holes),
    ...tables,
    { name: "idt_table", kind: "idt", linkedVa: symbols.require("idt_table"), len: IDT_BYTES },
  ];
}
