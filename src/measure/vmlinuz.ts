/**
 * Loads a kernel boot image (vmlinuz) from disk: decompresses its payload with the matching
 * command-line tool and returns the ELF image and the relocation list it carries.
 *
 * @module
 */
import { gunzipSync } from "node:zlib";
import { VaspError } from "../engine/error.ts";
import { type BzImage, parseBzImage, type PayloadCompression } from "./bzimage.ts";
import { type ElfImage, parseElf } from "./elf.ts";
import { parseRelocations, type Relocations } from "./relocs.ts";

/** A kernel build as its boot image describes it. */
export interface KernelImage {
  /** The vmlinuz path. */
  readonly source: string;
  /** Setup-header facts (without the payload). */
  readonly header: Omit<BzImage, "payload">;
  /** The decompressed `vmlinux.bin`. */
  readonly elf: ElfImage;
  /** The relocations appended to it. */
  readonly relocations: Relocations;
}

/** The command that decompresses each format from stdin to stdout, and its package. */
const DECOMPRESSORS: Record<Exclude<PayloadCompression, "gzip">, [string, string[], string]> = {
  bzip2: ["bzip2", ["-dc"], "bzip2"],
  lzma: ["xz", ["--format=lzma", "-dc"], "xz-utils"],
  xz: ["xz", ["--single-stream", "-dc"], "xz-utils"],
  lzo: ["lzop", ["-dc"], "lzop"],
  lz4: ["lz4", ["-dc"], "lz4"],
  zstd: ["zstd", ["-dc"], "zstd"],
};

async function decompress(bz: BzImage, source: string): Promise<Uint8Array> {
  if (bz.compression === "gzip") return gunzipSync(bz.payload);
  const [cmd, args, pkg] = DECOMPRESSORS[bz.compression];
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, { args, stdin: "piped", stdout: "piped", stderr: "piped" })
      .spawn();
  } catch (cause) {
    throw new VaspError(
      "tool_missing",
      `Cannot decompress the ${bz.compression} payload of "${source}": "${cmd}" is missing ` +
        `(Debian package ${pkg})`,
      { cause },
    );
  }
  const writer = child.stdin.getWriter();
  const written = writer.write(bz.payload).then(() => writer.close()).catch(() => {});
  const [out] = await Promise.all([child.output(), written]);
  if (!out.success) {
    throw new VaspError(
      "kernel_image_invalid",
      `"${cmd}" cannot decompress the payload of "${source}": ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
      { details: { source } },
    );
  }
  return out.stdout;
}

/** Loaded images by path, with the file identity they were loaded from. */
const loaded = new Map<string, { stamp: string; image: Promise<KernelImage> }>();

/**
 * Reads a vmlinuz, decompresses its payload, and parses vmlinux.bin and the relocations.
 * One process loads a file once while it is unchanged (same device, inode, size, mtime and
 * ctime): the monitor opens every VM running a kernel with the same image, which also
 * shares what is derived from it (its patch sites, its expected digests). A load that
 * failed is not kept.
 *
 * @param path the vmlinuz file
 * @returns the kernel image
 * @throws {VaspError} `kernel_image_invalid` for a file that is not a relocatable bzImage or
 *   whose payload does not decompress to the size the header gives; `tool_missing` when the
 *   decompressor is not installed; `relocations_invalid`
 */
export async function loadKernelImage(path: string): Promise<KernelImage> {
  const st = await Deno.stat(path);
  const stamp = `${st.dev}:${st.ino}:${st.size}:${st.mtime?.getTime()}:${st.ctime?.getTime()}`;
  const known = loaded.get(path);
  if (known?.stamp === stamp) return await known.image;
  const image = readKernelImage(path);
  loaded.set(path, { stamp, image });
  image.catch(() => {
    if (loaded.get(path)?.image === image) loaded.delete(path);
  });
  return await image;
}

async function readKernelImage(path: string): Promise<KernelImage> {
  const file = await Deno.readFile(path);
  const bz = parseBzImage(file, path);
  if (!bz.relocatable) {
    throw new VaspError("kernel_image_invalid", `"${path}" is not a relocatable kernel`, {
      details: { source: path },
    });
  }
  const payload = await decompress(bz, path);
  if (payload.length !== bz.decompressedSize) {
    throw new VaspError(
      "kernel_image_invalid",
      `The payload of "${path}" decompressed to ${payload.length} bytes, the header says ${bz.decompressedSize}`,
      { details: { source: path } },
    );
  }
  const elf = parseElf(payload, `${path} (vmlinux.bin)`);
  const relocations = parseRelocations(payload, { floor: elf.end });
  const { payload: _, ...header } = bz;
  return { source: path, header, elf, relocations };
}
