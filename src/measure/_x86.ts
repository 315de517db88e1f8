/**
 * x86-64 encodings the kernel's self-patching writes, and matching bytes against them: the
 * kernel's NOPs, INT3 and RET padding, rel32 branches, replacements whose 0x90 padding
 * `optimize_nops` may have rewritten. Private to src/measure.
 *
 * @module
 */

/** x86 NOPs as the kernel writes them (`x86_nops`), by length. */
export const NOPS: readonly (readonly number[])[] = [
  [],
  [0x90],
  [0x66, 0x90],
  [0x0f, 0x1f, 0x00],
  [0x0f, 0x1f, 0x40, 0x00],
  [0x0f, 0x1f, 0x44, 0x00, 0x00],
  [0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00],
  [0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00],
  [0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
];
export const NOP5 = NOPS[5]!;
export const XOR5RAX = [0x2e, 0x2e, 0x2e, 0x31, 0xc0];
export const INT3 = 0xcc;
export const RET = 0xc3;

/** Byte ranges, from a site's start, that a nested site checks instead. */
export type Holes = readonly (readonly [number, number])[];

/** Bytes as spaced hex, as a disassembler shows them: `e9 0b 00 00 00`. */
export function bytesHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
}

/** Whether `b[from, to)` is a sequence of kernel NOPs. */
export function isNops(b: Uint8Array, from: number, to: number): boolean {
  let i = from;
  next: while (i < to) {
    for (let n = Math.min(8, to - i); n >= 1; n--) {
      const nop = NOPS[n]!;
      let k = 0;
      while (k < n && b[i + k] === nop[k]) k++;
      if (k === n) {
        i += n;
        continue next;
      }
    }
    return false;
  }
  return true;
}

/** Whether `b[from, to)` holds only INT3. */
export function isInt3s(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== INT3) return false;
  return true;
}

/** Whether the bytes at `at` are `want`. */
export function equalsAt(b: Uint8Array, at: number, want: readonly number[] | Uint8Array): boolean {
  for (let i = 0; i < want.length; i++) if (b[at + i] !== want[i]) return false;
  return true;
}

/** Whether `a[at, at + len)` equals `b[from, from + len)`. */
export function sameBytes(
  a: Uint8Array,
  at: number,
  b: Uint8Array,
  from: number,
  len: number,
): boolean {
  for (let i = 0; i < len; i++) if (a[at + i] !== b[from + i]) return false;
  return true;
}

/** The rel32 displacement at `at`. */
export function rel32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24));
}

/** Bytes, decoded when they are a CALL or JMP: `e9 …  (jmp 0x… <name>)`. */
export function describe(
  bytes: Uint8Array,
  va: bigint,
  names: { name(va: bigint): string },
): string {
  const raw = bytesHex(bytes);
  if ((bytes[0] === 0xe8 || bytes[0] === 0xe9) && bytes.length >= 5) {
    const target = BigInt.asUintN(64, va + 5n + BigInt(rel32(bytes, 1)));
    return `${raw} (${bytes[0] === 0xe8 ? "call" : "jmp"} ${names.name(target)})`;
  }
  return raw;
}

/**
 * Whether the bytes at `at` equal `want`, except that each run of 0x90 in `want` may be any
 * sequence of kernel NOPs of the same length (`optimize_nops`), and bytes in `holes`
 * (offsets from `at`) are not compared.
 */
export function matchesWithNops(
  b: Uint8Array,
  at: number,
  want: Uint8Array,
  holes: Holes | undefined,
): boolean {
  const inHole = (k: number) => holes !== undefined && holes.some(([h0, h1]) => k >= h0 && k < h1);
  for (let k = 0; k < want.length;) {
    if (inHole(k)) {
      k++;
      continue;
    }
    if (want[k] === 0x90) {
      let run = k;
      while (run < want.length && want[run] === 0x90 && !inHole(run)) run++;
      if (!isNops(b, at + k, at + run) && !equalsAt(b, at + k, want.subarray(k, run))) return false;
      k = run;
      continue;
    }
    if (b[at + k] !== want[k]) return false;
    k++;
  }
  return true;
}
