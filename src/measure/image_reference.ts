/**
 * What a guest kernel's regions must hold, from its package alone (vmlinuz + System.map),
 * without booting a golden guest: the text with its patch sites masked is byte for byte the
 * image's text with the same sites masked, and the read-only data and syscall tables are the
 * image's bytes (KASLR undone). So the image gives each region's expected digest, and when a
 * guest's region differs, the image's bytes say where and how: each changed run is named by
 * symbol and offset.
 *
 * @module
 */
import { type HashAlgName, hashBatch } from "../../ffi/mod.ts";
import { toHex } from "../codec/mod.ts";
import { loadPatchSites, type PatchSites } from "./patch_sites.ts";
import type { RegionSpec } from "./regions.ts";
import { bytesHex, describe } from "./_x86.ts";
import type { KernelSymbols } from "./symbols.ts";
import type { Finding } from "./tables.ts";
import type { KernelImage } from "./vmlinuz.ts";

/** Changed runs reported per region; the rest are counted. */
const MAX_RUNS = 16;
/** Changed bytes closer than this are one run. */
const RUN_GAP = 8;

/**
 * Per image and symbol file (the sites are found by their System.map bounds): its sites,
 * and expected digests by `alg:region`.
 */
const cache = new WeakMap<
  KernelImage,
  Map<string, { sites: PatchSites; digests: Map<string, string> }>
>();

function entry(image: KernelImage, symbols: KernelSymbols) {
  let bySymbols = cache.get(image);
  if (!bySymbols) cache.set(image, bySymbols = new Map());
  let e = bySymbols.get(symbols.source);
  if (!e) {
    e = { sites: loadPatchSites(image, symbols), digests: new Map() };
    bySymbols.set(symbols.source, e);
  }
  return e;
}

/**
 * The patch sites of a kernel image, read once per loaded image and System.map file.
 *
 * @param image the kernel's vmlinuz, loaded
 * @param symbols its System.map
 * @returns its sites
 * @throws {VaspError} what {@linkcode loadPatchSites} throws
 */
export function imageSites(image: KernelImage, symbols: KernelSymbols): PatchSites {
  return entry(image, symbols).sites;
}

/** Zeroes the sites inside `bytes`, which start at `linkedVa`. */
export function maskSites(sites: PatchSites, bytes: Uint8Array, linkedVa: bigint): void {
  const base = Number(linkedVa - sites.start);
  for (const s of sites.sites) {
    // A loop, not fill(): sites are a few bytes each and there are 100,000 of them.
    const to = Math.min(bytes.length, s.offset - base + s.len);
    for (let k = Math.max(0, s.offset - base); k < to; k++) bytes[k] = 0;
  }
}

/**
 * A region's bytes as the image has them, patch sites masked in the text; undefined for a
 * region the image does not hold (the IDT is built at boot).
 */
export function expectedBytes(
  image: KernelImage,
  symbols: KernelSymbols,
  region: RegionSpec,
): Uint8Array<ArrayBuffer> | undefined {
  if (region.kind === "idt") return undefined;
  const bytes = image.elf.loadedBytes(region.linkedVa, region.len);
  if (bytes && region.kind === "text") {
    maskSites(imageSites(image, symbols), bytes, region.linkedVa);
  }
  return bytes;
}

/**
 * The digest a region must have, from the image; computed once per image.
 *
 * @param image the kernel's vmlinuz, loaded
 * @param symbols its System.map
 * @param options `region`, `alg`
 * @returns the hex digest, or undefined for a region the image does not hold
 */
export function expectedDigest(
  image: KernelImage,
  symbols: KernelSymbols,
  options: { region: RegionSpec; alg: HashAlgName },
): string | undefined {
  const { digests } = entry(image, symbols);
  const key = `${options.alg}:${options.region.name}`;
  if (!digests.has(key)) {
    const bytes = expectedBytes(image, symbols, options.region);
    if (!bytes) return undefined;
    digests.set(key, toHex(hashBatch(options.alg, [bytes])[0]!));
  }
  return digests.get(key);
}

/**
 * Every run of bytes where a region (KASLR undone, sites masked) differs from the image, as
 * findings named by symbol: `__x64_sys_getdents64+0x0: 5 bytes changed, now e9 … (jmp
 * 0xffffffffc01…, outside the kernel image)`.
 *
 * @param measured the region's normalised (and masked) bytes
 * @param expected the image's, from {@linkcode expectedBytes}
 * @param options `region`; `symbols`; `slide`, to give runtime addresses
 * @returns one violation per changed run (at most 16, then one counting the rest)
 */
export function locateChanges(
  measured: Uint8Array,
  expected: Uint8Array,
  options: { region: RegionSpec; symbols: KernelSymbols; slide: bigint },
): Finding[] {
  const { region, symbols, slide } = options;
  const end = region.linkedVa + BigInt(region.len);
  const names = {
    name: (va: bigint) =>
      va >= region.linkedVa && va < end || symbols.isCodeSymbol(va)
        ? symbols.locate(va)
        : `0x${(va + slide).toString(16)}, outside the kernel image`,
  };
  const findings: Finding[] = [];
  let runs = 0;
  for (let i = 0; i < measured.length; i++) {
    if (measured[i] === expected[i]) continue;
    let j = i + 1;
    for (let quiet = 0; j < measured.length && quiet < RUN_GAP; j++) {
      quiet = measured[j] === expected[j] ? quiet + 1 : 0;
    }
    while (measured[j - 1] === expected[j - 1]) j--;
    if (region.kind === "syscall_table") {
      // A table changes by entries: show whole ones.
      i &= ~7;
      j = Math.min(measured.length, (j + 7) & ~7);
    }
    runs++;
    if (findings.length < MAX_RUNS) {
      const va = region.linkedVa + BigInt(i);
      const now = measured.subarray(i, Math.min(j, i + 16));
      const shown = region.kind === "text" ? describe(now, va, names) : pointerOrBytes(now, names);
      findings.push({
        region: region.name,
        code: "region_changed",
        address: va + slide,
        violation: true,
        message: `${symbols.locate(va)}: ${j - i} byte${j - i === 1 ? "" : "s"} changed ` +
          `from the kernel image, now ${shown}${j - i > now.length ? " …" : ""}`,
      });
    }
    i = j;
  }
  if (runs > MAX_RUNS) {
    findings.push({
      region: region.name,
      code: "region_changed",
      violation: true,
      message: `${region.name}: ${runs - MAX_RUNS} more changed runs`,
    });
  }
  return findings;
}

/** Eight bytes as the kernel address they hold, named; other lengths as hex. */
function pointerOrBytes(b: Uint8Array, names: { name(va: bigint): string }): string {
  if (b.length !== 8) return bytesHex(b);
  const va = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  return `0x${va.toString(16)} (${names.name(va)})`;
}
