/**
 * The x86 boot image (bzImage, Debian's `vmlinuz`): the setup header, and the compressed
 * payload the decompressor turns into `vmlinux.bin` followed by the relocation list.
 *
 * @module
 */
import { VaspError } from "../engine/error.ts";

/** Payload compressions the kernel build supports, by their magic bytes. */
export type PayloadCompression = "gzip" | "bzip2" | "lzma" | "xz" | "lzo" | "lz4" | "zstd";

/** What the setup header says about the compressed kernel. */
export interface BzImage {
  /** Boot protocol version, e.g. 0x20f. */
  readonly protocol: number;
  /** Whether the kernel may run at another physical address (needed for KASLR). */
  readonly relocatable: boolean;
  /** Physical alignment of the kernel (KASLR steps), e.g. 2 MiB. */
  readonly alignment: number;
  /** Preferred (link-time) physical load address, e.g. 0x1000000. */
  readonly preferredAddress: bigint;
  /** The compression, from the payload's magic bytes. */
  readonly compression: PayloadCompression;
  /** The compressed stream, without the 4-byte size the build appends (except gzip). */
  readonly payload: Uint8Array;
  /** Size of the decompressed payload (vmlinux.bin and the relocations). */
  readonly decompressedSize: number;
}

const MAGICS: [PayloadCompression, number[]][] = [
  ["gzip", [0x1f, 0x8b]],
  ["bzip2", [0x42, 0x5a, 0x68]],
  ["lzma", [0x5d, 0x00, 0x00]],
  ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ["lzo", [0x89, 0x4c, 0x5a, 0x4f]],
  ["lz4", [0x02, 0x21, 0x4c, 0x18]],
  ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
];

function invalid(source: string, what: string): VaspError {
  return new VaspError("kernel_image_invalid", `"${source}" is not a usable bzImage: ${what}`, {
    details: { source },
  });
}

/**
 * Reads the setup header of a bzImage and locates its compressed payload.
 *
 * @param file the whole vmlinuz file
 * @param source its name, for messages
 * @returns the header fields and the payload (a view into `file`)
 * @throws {VaspError} `kernel_image_invalid` when the magic, the protocol (before 2.08 has
 *   no payload fields), the payload bounds or its compression are not recognised
 */
export function parseBzImage(file: Uint8Array, source: string): BzImage {
  if (file.length < 0x270) throw invalid(source, `only ${file.length} bytes`);
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (view.getUint32(0x202, true) !== 0x53726448) throw invalid(source, `no "HdrS" at 0x202`);
  const protocol = view.getUint16(0x206, true);
  if (protocol < 0x208) {
    throw invalid(source, `boot protocol 0x${protocol.toString(16)} < 0x208`);
  }
  const setupSects = file[0x1f1] || 4;
  const payloadOffset = view.getUint32(0x248, true);
  const payloadLength = view.getUint32(0x24c, true);
  const start = (setupSects + 1) * 512 + payloadOffset;
  if (payloadLength < 8 || start + payloadLength > file.length) {
    throw invalid(source, `payload ${payloadLength} bytes at ${start} past the file's end`);
  }
  const raw = file.subarray(start, start + payloadLength);
  const compression = MAGICS.find(([, magic]) => magic.every((b, i) => raw[i] === b))?.[0];
  if (!compression) {
    const head = Array.from(raw.subarray(0, 6), (b) => b.toString(16).padStart(2, "0"));
    throw invalid(source, `unknown payload compression (magic ${head.join(" ")})`);
  }
  // The build appends the decompressed size, little-endian, after every compressor's output;
  // gzip's own trailer ends with it.
  const decompressedSize = view.getUint32(start + payloadLength - 4, true);
  return {
    protocol,
    relocatable: file[0x234] !== 0,
    alignment: view.getUint32(0x230, true),
    preferredAddress: view.getBigUint64(0x258, true),
    compression,
    payload: compression === "gzip" ? raw : raw.subarray(0, raw.length - 4),
    decompressedSize,
  };
}
