/**
 * Kernel symbols from a System.map or a `/proc/kallsyms`-format file: the addresses the
 * kernel was linked at (System.map) or runs at (kallsyms), by name, and the address that
 * follows a symbol, which sizes tables the map gives no size for.
 *
 * @module
 */
import { VaspError } from "../engine/error.ts";

/** `__START_KERNEL_map`: kernel-image virtual addresses start here on x86-64. */
export const START_KERNEL_MAP = 0xffffffff80000000n;

/** One line's worth: name, address, and the `nm` type letter. */
export interface KernelSymbol {
  /** Symbol name. */
  readonly name: string;
  /** Address as written in the file. */
  readonly addr: bigint;
  /** `nm` type letter (`T` text, `D` data, `b` bss, `A` absolute …). */
  readonly type: string;
}

const LINE = /^([0-9a-fA-F]{1,16})\s+([A-Za-z?])\s+(\S+)(?:\s+\[\S+\])?\s*$/;
/** Type letters of code symbols. */
const CODE_TYPES = new Set(["T", "t", "W", "w"]);
/** Names the linker gives section bounds (`__static_call_text_start`, `_stext`). */
const BOUND = /^(__start_|__stop_)|_(start|end)$|^_[se]?text$/;

/** Which of the symbols at one address names it: a function before a bound before data. */
function rank(s: KernelSymbol): number {
  return (CODE_TYPES.has(s.type) ? 2 : 0) + (BOUND.test(s.name) ? 0 : 1);
}

/** A parsed symbol file, indexed by name and by address. */
export class KernelSymbols {
  readonly #byName: Map<string, KernelSymbol>;
  readonly #addrs: BigUint64Array;
  /** The name to report for each of `#addrs`: a function's when one starts there. */
  readonly #names: string[];
  readonly #code: Set<bigint>;
  /** The file the symbols came from, for messages. */
  readonly source: string;

  /**
   * @param symbols the symbols in file order; the first of duplicate names wins
   * @param source where they came from, for messages
   */
  constructor(symbols: readonly KernelSymbol[], source: string) {
    this.source = source;
    this.#byName = new Map();
    const image = new Map<bigint, KernelSymbol>();
    this.#code = new Set();
    for (const s of symbols) {
      if (!this.#byName.has(s.name)) this.#byName.set(s.name, s);
      // Per-CPU offsets and absolute values are not addresses in the image.
      const known = image.get(s.addr);
      if (
        s.addr >= START_KERNEL_MAP && s.type !== "A" && (!known || rank(s) > rank(known))
      ) image.set(s.addr, s);
      if (CODE_TYPES.has(s.type)) this.#code.add(s.addr);
    }
    this.#addrs = BigUint64Array.from(image.keys()).sort();
    this.#names = Array.from(this.#addrs, (a) => image.get(a)!.name);
  }

  /** Index of the first image address above `addr`. */
  #above(addr: bigint): number {
    let lo = 0, hi = this.#addrs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#addrs[mid]! <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Number of distinct names. */
  get size(): number {
    return this.#byName.size;
  }

  /**
   * The address of `name`, or undefined.
   *
   * @param name symbol name
   * @returns its address
   */
  get(name: string): bigint | undefined {
    return this.#byName.get(name)?.addr;
  }

  /**
   * The address of `name`.
   *
   * @param name symbol name
   * @returns its address
   * @throws {VaspError} `symbol_missing` naming the symbol and the file
   */
  require(name: string): bigint {
    const addr = this.get(name);
    if (addr === undefined) {
      throw new VaspError(
        "symbol_missing",
        `Kernel symbol "${name}" is not in "${this.source}"`,
        { details: { symbol: name, source: this.source } },
      );
    }
    return addr;
  }

  /**
   * The lowest kernel-image address above `addr`: where the object at `addr` ends at the
   * latest.
   *
   * @param addr an address in the kernel image
   * @returns the next symbol's address, or undefined after the last one
   */
  nextAfter(addr: bigint): bigint | undefined {
    return this.#addrs[this.#above(addr)];
  }

  /**
   * Names an address as `symbol+0xoffset`, after the nearest image symbol at or below it.
   *
   * @param addr an address as linked
   * @returns e.g. `__x64_sys_getdents64+0x0`, or the address in hex below every symbol
   * @example
   * ```ts
   * import { parseSymbolMap } from "./symbols.ts";
   * const syms = parseSymbolMap("ffffffff81000000 T _text\nffffffff81000100 T f\n", "map");
   * syms.locate(0xffffffff81000104n); // "f+0x4"
   * ```
   */
  locate(addr: bigint): string {
    const i = this.#above(addr) - 1;
    if (i < 0) return `0x${addr.toString(16)}`;
    return `${this.#names[i]}+0x${(addr - this.#addrs[i]!).toString(16)}`;
  }

  /**
   * The function entries in `[start, end)`, ascending.
   *
   * @param start first address, as linked
   * @param end address past the range
   * @returns the addresses of code symbols there
   */
  codeSymbolsIn(start: bigint, end: bigint): bigint[] {
    const out: bigint[] = [];
    for (let i = this.#above(start - 1n); i < this.#addrs.length && this.#addrs[i]! < end; i++) {
      if (this.#code.has(this.#addrs[i]!)) out.push(this.#addrs[i]!);
    }
    return out;
  }

  /**
   * Whether a code symbol (a function entry) starts exactly at `addr`.
   *
   * @param addr an address as linked
   * @returns true for a `T`/`t`/`W`/`w` symbol's address
   */
  isCodeSymbol(addr: bigint): boolean {
    return this.#code.has(addr);
  }
}

/**
 * Parses a System.map (`ffffffff81000000 T _text`) or `/proc/kallsyms` text (module names in
 * brackets allowed).
 *
 * @param text the file's content
 * @param source the file name, for messages
 * @returns the symbols
 * @throws {VaspError} `symbols_invalid` for a malformed line (with its number), an empty
 *   file, or kallsyms whose addresses are all zero (read without privilege)
 * @example
 * ```ts
 * const syms = parseSymbolMap("ffffffff81000000 T _text\n", "System.map");
 * syms.require("_text"); // 0xffffffff81000000n
 * ```
 */
export function parseSymbolMap(text: string, source: string): KernelSymbols {
  const symbols: KernelSymbol[] = [];
  let lineNo = 0;
  let nonZero = false;
  for (const line of text.split("\n")) {
    lineNo++;
    if (line.trim() === "") continue;
    const m = LINE.exec(line);
    if (!m) {
      throw new VaspError(
        "symbols_invalid",
        `Cannot parse line ${lineNo} of "${source}": ${JSON.stringify(line.slice(0, 80))}`,
        { details: { source, line: lineNo } },
      );
    }
    const addr = BigInt(`0x${m[1]}`);
    if (addr !== 0n) nonZero = true;
    symbols.push({ addr, type: m[2]!, name: m[3]! });
  }
  if (symbols.length === 0) {
    throw new VaspError("symbols_invalid", `"${source}" holds no symbols`, {
      details: { source },
    });
  }
  if (!nonZero) {
    throw new VaspError(
      "symbols_invalid",
      `Every address in "${source}" is zero (kallsyms read without CAP_SYSLOG?)`,
      { details: { source } },
    );
  }
  return new KernelSymbols(symbols, source);
}
