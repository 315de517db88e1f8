/**
 * Just enough ELF64 (little-endian) to read `vmlinux.bin`, the kernel the bzImage payload
 * holds: bytes by link-time virtual address, where the file ends, and the GNU build ID.
 *
 * @module
 */
import { toHex } from "../codec/mod.ts";
import { VaspError } from "../engine/error.ts";

/** One loadable segment. */
interface Segment {
  readonly vaddr: bigint;
  readonly offset: number;
  readonly filesz: number;
}

/** A parsed ELF64 image. */
export interface ElfImage {
  /** Offset just past the last header table or segment: where appended data starts. */
  readonly end: number;
  /** The GNU build ID as lowercase hex, if the image has one. */
  readonly buildId: string | undefined;
  /**
   * The file bytes at a link-time virtual address.
   *
   * @returns a view, or undefined when the range is not inside one segment's file bytes
   */
  bytesAt(vaddr: bigint, len: number): Uint8Array | undefined;
  /**
   * The bytes the x86 boot decompressor leaves at a link-time address: it decompresses the
   * image in place at the load address and moves each segment to its own place
   * (`parse_elf`), so an address no segment's file bytes cover — the padding before
   * `__end_rodata`, say — still holds the image's own byte at the same offset from the load
   * address. Measured equal on a real guest.
   *
   * @returns a copy, or undefined when the range is outside the image
   */
  loadedBytes(vaddr: bigint, len: number): Uint8Array<ArrayBuffer> | undefined;
}

const PT_LOAD = 1;
const PT_NOTE = 4;
const NT_GNU_BUILD_ID = 3;

function invalid(source: string, what: string): VaspError {
  return new VaspError("kernel_image_invalid", `"${source}" is not a usable ELF64: ${what}`, {
    details: { source },
  });
}

/** Finds an NT_GNU_BUILD_ID note in a PT_NOTE segment's bytes. */
export function findBuildId(notes: Uint8Array): string | undefined {
  const view = new DataView(notes.buffer, notes.byteOffset, notes.byteLength);
  let at = 0;
  while (at + 12 <= notes.length) {
    const namesz = view.getUint32(at, true);
    const descsz = view.getUint32(at + 4, true);
    const type = view.getUint32(at + 8, true);
    const name = at + 12;
    const desc = name + ((namesz + 3) & ~3);
    const next = desc + ((descsz + 3) & ~3);
    if (next > notes.length || next <= at) return undefined;
    const isGnu = namesz === 4 && notes[name] === 0x47 && notes[name + 1] === 0x4e &&
      notes[name + 2] === 0x55 && notes[name + 3] === 0;
    if (isGnu && type === NT_GNU_BUILD_ID && descsz > 0) {
      return toHex(notes.subarray(desc, desc + descsz));
    }
    at = next;
  }
  return undefined;
}

/**
 * Parses the headers of an ELF64 little-endian file.
 *
 * @param file the file's bytes (kept, not copied)
 * @param source its name, for messages
 * @returns segments by address, the end of the ELF data, the build ID
 * @throws {VaspError} `kernel_image_invalid` when the magic, class or a table's bounds are
 *   wrong
 */
export function parseElf(file: Uint8Array, source: string): ElfImage {
  if (file.length < 64) throw invalid(source, `only ${file.length} bytes`);
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (view.getUint32(0, false) !== 0x7f454c46) throw invalid(source, "no ELF magic");
  if (file[4] !== 2 || file[5] !== 1) throw invalid(source, "not 64-bit little-endian");
  const phoff = Number(view.getBigUint64(0x20, true));
  const shoff = Number(view.getBigUint64(0x28, true));
  const phentsize = view.getUint16(0x36, true);
  const phnum = view.getUint16(0x38, true);
  const shentsize = view.getUint16(0x3a, true);
  const shnum = view.getUint16(0x3c, true);
  if (phentsize < 56 || phoff + phnum * phentsize > file.length) {
    throw invalid(source, `program headers (${phnum} at ${phoff}) past the end`);
  }
  let end = Math.max(64, phoff + phnum * phentsize, shoff + shnum * shentsize);
  if (end > file.length) throw invalid(source, `section headers past the end (${end} bytes)`);
  const segments: Segment[] = [];
  let buildId: string | undefined;
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    const type = view.getUint32(at, true);
    const offset = Number(view.getBigUint64(at + 8, true));
    const vaddr = view.getBigUint64(at + 16, true);
    const filesz = Number(view.getBigUint64(at + 32, true));
    if (offset + filesz > file.length) throw invalid(source, `segment ${i} past the end`);
    end = Math.max(end, offset + filesz);
    if (type === PT_LOAD) segments.push({ vaddr, offset, filesz });
    if (type === PT_NOTE) buildId ??= findBuildId(file.subarray(offset, offset + filesz));
  }
  const load = segments[0]?.vaddr;
  return {
    end,
    buildId,
    bytesAt(vaddr, len) {
      for (const s of segments) {
        if (vaddr >= s.vaddr && vaddr + BigInt(len) <= s.vaddr + BigInt(s.filesz)) {
          const at = s.offset + Number(vaddr - s.vaddr);
          return file.subarray(at, at + len);
        }
      }
      return undefined;
    },
    loadedBytes(vaddr, len) {
      if (load === undefined || vaddr < load || vaddr - load + BigInt(len) > BigInt(file.length)) {
        return undefined;
      }
      const from = Number(vaddr - load);
      const out = file.slice(from, from + len);
      for (const s of segments) {
        const a = s.vaddr > vaddr ? s.vaddr : vaddr;
        const b = s.vaddr + BigInt(s.filesz) < vaddr + BigInt(len)
          ? s.vaddr + BigInt(s.filesz)
          : vaddr + BigInt(len);
        if (a >= b) continue;
        const at = s.offset + Number(a - s.vaddr);
        out.set(file.subarray(at, at + Number(b - a)), Number(a - vaddr));
      }
      return out;
    },
  };
}
