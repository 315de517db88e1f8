/**
 * The kernel's relocation list, as the x86 build appends it to `vmlinux.bin` inside the
 * compressed payload (arch/x86/tools/relocs, consumed by arch/x86/boot/compressed/misc.c),
 * and undoing the KASLR slide it was used to apply.
 *
 * Read backwards from the end of the decompressed payload, 32-bit little-endian words:
 * 32-bit relocations, 0, inverse 32-bit relocations, 0, 64-bit relocations, 0. Each word is
 * the link-time virtual address of a location, sign-extended from 32 bits. Under KASLR the
 * decompressor adds the virtual slide to every 32- and 64-bit location and subtracts it from
 * every inverse one (PC-relative references to per-CPU data, which does not move).
 *
 * @module
 */
import { VaspError } from "../engine/error.ts";

/** Relocation locations, as the low 32 bits of their link-time addresses, ascending. */
export interface Relocations {
  /** 32-bit absolute locations (slide added). */
  readonly abs32: Uint32Array;
  /** Inverse 32-bit locations (slide subtracted). */
  readonly inv32: Uint32Array;
  /** 64-bit absolute locations (slide added). */
  readonly abs64: Uint32Array;
}

/** Sign-extended, a location below this is not in the kernel image (0xffffffff80000000). */
const MIN_LOCATION = 0x80000000;

/**
 * Parses the relocation list at the end of a decompressed kernel payload.
 *
 * @param payload the decompressed payload: vmlinux.bin, then the list
 * @param options `floor`: offset the list may not extend below (the end of vmlinux.bin)
 * @returns the three lists, sorted
 * @throws {VaspError} `relocations_invalid` when a list lacks its terminator or names a
 *   location outside the kernel image
 * @example
 * ```ts
 * // 64-bit: none; inverse: none; 32-bit: 0xffffffff81000010
 * const words = new Uint32Array([0, 0, 0, 0x81000010]);
 * parseRelocations(new Uint8Array(words.buffer)).abs32; // Uint32Array [0x81000010]
 * ```
 */
export function parseRelocations(
  payload: Uint8Array,
  options: { floor?: number } = {},
): Relocations {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const floor = Math.max(0, options.floor ?? 0);
  let at = (payload.byteLength & ~3) - 4;
  const list = (kind: string): Uint32Array => {
    const out: number[] = [];
    for (; at >= floor; at -= 4) {
      const word = view.getUint32(at, true);
      if (word === 0) {
        at -= 4;
        return Uint32Array.from(out).sort();
      }
      if (word < MIN_LOCATION) {
        throw new VaspError(
          "relocations_invalid",
          `${kind} relocation at payload offset ${at} names 0x${
            word.toString(16)
          }, outside the kernel image`,
          { details: { offset: at } },
        );
      }
      out.push(word);
    }
    throw new VaspError(
      "relocations_invalid",
      `The ${kind} relocation list has no terminator above payload offset ${floor}`,
      { details: { floor } },
    );
  };
  const abs32 = list("32-bit");
  const inv32 = list("inverse 32-bit");
  const abs64 = list("64-bit");
  return { abs32, inv32, abs64 };
}

/** Index of the first element >= value. */
function lowerBound(list: Uint32Array, value: number): number {
  let lo = 0, hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Adds `slide` to every location of one kind inside the buffer (negative to undo), returns
 * how many it changed.
 */
function shift(
  view: DataView,
  start: number,
  list: Uint32Array,
  width: 4 | 8,
  slide: number,
): number {
  const end = start + view.byteLength;
  const straddles = (r: number) => (r < start && r + width > start) || (r < end && r + width > end);
  let i = lowerBound(list, start - width + 1);
  let n = 0;
  for (; i < list.length && list[i]! < end; i++) {
    const r = list[i]!;
    if (straddles(r)) {
      throw new VaspError(
        "relocation_straddles",
        `A ${width * 8}-bit relocation at 0xffffffff${
          r.toString(16)
        } crosses the edge of the region being normalised`,
        { details: { location: r } },
      );
    }
    const o = r - start;
    const lo = view.getUint32(o, true) + slide;
    view.setUint32(o, lo >>> 0, true);
    if (width === 8) {
      // Carry or borrow into the upper half: the slide is below 2^32 in magnitude.
      const carry = lo >= 0x100000000 ? 1 : lo < 0 ? -1 : 0;
      if (carry !== 0) view.setUint32(o + 4, (view.getUint32(o + 4, true) + carry) >>> 0, true);
    }
    n++;
  }
  return n;
}

function lowBits(linkedVa: bigint, len: number): number {
  const start = linkedVa - 0xffffffff00000000n;
  if (start < BigInt(MIN_LOCATION) || start + BigInt(len) > 0x100000000n) {
    throw new RangeError(`0x${linkedVa.toString(16)} (+${len}) is not in the kernel image`);
  }
  return Number(start);
}

function checkSlide(slide: bigint): number {
  if (slide <= -(1n << 32n) || slide >= 1n << 32n) {
    throw new RangeError(`KASLR slide ${slide} is out of range`);
  }
  return Number(slide);
}

/**
 * Applies a KASLR virtual slide to bytes as the decompressor does (the inverse of
 * {@linkcode undoRelocations}); used to check the round trip.
 *
 * @param bytes a copy of kernel-image bytes, changed in place
 * @param linkedVa the link-time virtual address of `bytes[0]`
 * @param options `slide`: the virtual KASLR offset; `relocations`: the list
 * @returns how many locations were changed
 * @throws {VaspError} `relocation_straddles` when a location crosses an edge of `bytes`
 * @throws {RangeError} when the bytes or the slide are not in the kernel image's range
 */
export function applyRelocations(
  bytes: Uint8Array,
  linkedVa: bigint,
  options: { slide: bigint; relocations: Relocations },
): number {
  const start = lowBits(linkedVa, bytes.byteLength);
  const slide = checkSlide(options.slide);
  if (slide === 0) return 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const { abs32, inv32, abs64 } = options.relocations;
  return shift(view, start, abs32, 4, slide) + shift(view, start, inv32, 4, -slide) +
    shift(view, start, abs64, 8, slide);
}

/**
 * Undoes a KASLR virtual slide in a copy of kernel-image bytes read from a running guest,
 * giving the bytes a `nokaslr` boot holds at the same place.
 *
 * @param bytes the copy, changed in place
 * @param linkedVa the link-time virtual address of `bytes[0]`
 * @param options `slide`: the virtual KASLR offset found; `relocations`: the list
 * @returns how many locations were changed
 * @throws {VaspError} `relocation_straddles` when a location crosses an edge of `bytes`
 * @throws {RangeError} when the bytes or the slide are not in the kernel image's range
 */
export function undoRelocations(
  bytes: Uint8Array,
  linkedVa: bigint,
  options: { slide: bigint; relocations: Relocations },
): number {
  return applyRelocations(bytes, linkedVa, { ...options, slide: -options.slide });
}
