/**
 * Measured launch: what a start will boot, measured once (streamed by the native library, disks
 * through the sealed digest cache), as the components the policies compare with the VM's boot
 * references and as the register extensions vBoot makes (docs/lifecycle.md).
 *
 * @module
 */
import { fromHex, toHex } from "../codec/mod.ts";
import { type BootComponent, type BootState, describeError, sha256Digest } from "../engine/mod.ts";
import type { Domain } from "../hypervisor/libvirt.ts";
import { VBOOT_REGISTERS } from "../hypervisor/vboot.ts";
import type { BootReference } from "../store/mod.ts";
import type { DiskCache } from "./disk_cache.ts";
import type { Extension } from "./instances.ts";

const encoder = new TextEncoder();
const MAX_DESCRIPTION = 1000;

/** One measured component of a boot. */
export interface Measured {
  /** `firmware`, `kernel`, `initrd`, `cmdline`, `nvram`, `disk:<target>`. */
  readonly name: string;
  /** The file (`""` for the command line). */
  readonly path: string;
  /** SHA-256, hex; `""` when it could not be measured. */
  readonly sha256: string;
  /** Why it was not measured; `""` when it was. */
  readonly detail: string;
  /**
   * Whether registration takes it as a reference: every boot file, the command line, and
   * read-only disks (a guest changes its writable disks; the operator declares those).
   */
  readonly referenced: boolean;
  /** Whether a file's digest came from the cache. */
  readonly cached?: boolean;
}

/** A boot, measured. */
export interface MeasuredBoot {
  /** The components, in register order. */
  readonly components: readonly Measured[];
  /** The register extensions, in order (the domain XML first). */
  readonly extensions: readonly Extension[];
}

/** A description within the library's 1024-byte limit, cut in the middle of long paths. */
function describe(text: string): string {
  if (encoder.encode(text).length <= MAX_DESCRIPTION) return text;
  const chars = [...text];
  return `${chars.slice(0, 480).join("")}…${chars.slice(-480).join("")}`;
}

async function bootFile(
  name: string,
  reg: number,
  path: string,
  cache: DiskCache,
): Promise<{ measured: Measured; extension: Extension }> {
  try {
    const d = await cache.digest(path, { sm3: true });
    return {
      measured: { name, path, sha256: d.sha256, detail: "", referenced: true, cached: d.cached },
      extension: {
        reg,
        data: new Uint8Array(0),
        digests: { sha256: fromHex(d.sha256), sm3: fromHex(d.sm3!) },
        description: describe(`vboot ${name} ${path}`),
      },
    };
  } catch (error) {
    // What could not be read is still recorded: the verifier sees that it was not measured.
    const why = describeError(error);
    return {
      measured: { name, path, sha256: "", detail: why, referenced: true },
      extension: {
        reg,
        data: encoder.encode(`unreadable ${path}: ${why}`),
        description: describe(`vboot ${name} ${path} (not measured: ${why})`),
      },
    };
  }
}

/** The boot files of a domain that vBoot measures: component name, register, path. */
function bootFiles(domain: Domain): [string, number, string][] {
  const os = domain.os;
  const files: [string, number, string | undefined][] = [
    ["firmware", VBOOT_REGISTERS.firmware, os.loader],
    ["nvram", VBOOT_REGISTERS.firmware, os.nvramTemplate],
    ["kernel", VBOOT_REGISTERS.kernel, os.kernel],
    ["initrd", VBOOT_REGISTERS.initrd, os.initrd],
  ];
  return files.filter((f): f is [string, number, string] => f[2] !== undefined);
}

/** Whether a disk's content is hashed at a start: a file disk, read-only or referenced. */
function hashedDisk(disk: Domain["disks"][number], referenced?: ReadonlySet<string>): boolean {
  return disk.type === "file" && disk.source !== undefined && disk.target !== undefined &&
    (disk.readonly || (referenced?.has(`disk:${disk.target}`) ?? false));
}

/**
 * Hashes ahead, in the background, what the next start of a domain will measure (its boot
 * files and hashed disks), once libvirt has put their owner back after a stop: see
 * {@link DiskCache.warm}.
 *
 * @param domain the parsed domain XML
 * @param disks the digest cache
 * @param referenced the names of the VM's boot references
 */
export function warmBoot(
  domain: Domain,
  disks: DiskCache,
  referenced?: ReadonlySet<string>,
): void {
  for (const [, , path] of bootFiles(domain)) disks.warm(path, { sm3: true });
  for (const disk of domain.disks) if (hashedDisk(disk, referenced)) disks.warm(disk.source!);
}

/**
 * Measures what a domain boots: the firmware, kernel, initrd, command line and NVRAM template,
 * and the content of each file-backed disk that is read-only or referenced (through `disks`).
 * A writable disk without a reference is named, not hashed: its guest changes it, so it would
 * miss the cache and be read whole at every start (seconds for a large image, against the
 * hook's timeout) for a digest nothing compares.
 *
 * @param domain the parsed domain XML
 * @param xml the domain XML as given (extended whole into the configuration register)
 * @param disks the digest cache (disks and boot files)
 * @param options `referenced`: the names of the VM's boot references
 * @returns the components and the extensions
 */
export async function measureBoot(
  domain: Domain,
  xml: Uint8Array,
  disks: DiskCache,
  options: { referenced?: ReadonlySet<string> } = {},
): Promise<MeasuredBoot> {
  const components: Measured[] = [];
  const extensions: Extension[] = [{
    reg: VBOOT_REGISTERS.config,
    data: xml,
    description: describe(`vboot domain XML of "${domain.name}" (${domain.uuid})`),
  }];
  const os = domain.os;
  for (const [name, reg, path] of bootFiles(domain)) {
    const { measured, extension } = await bootFile(name, reg, path, disks);
    components.push(measured);
    extensions.push(extension);
  }
  if (os.cmdline !== undefined) {
    const data = encoder.encode(os.cmdline);
    const sha256 = toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
    components.push({ name: "cmdline", path: "", sha256, detail: "", referenced: true });
    extensions.push({
      reg: VBOOT_REGISTERS.cmdline,
      data,
      description: "vboot kernel command line",
    });
  }
  for (const disk of domain.disks) {
    const fields = [
      disk.device,
      disk.type,
      disk.source ?? "-",
      disk.format ?? "-",
      disk.target ?? "-",
      disk.readonly ? "ro" : "rw",
      ...disk.backingChain.map((b) => `<${b}`),
    ];
    let content = "";
    const name = `disk:${disk.target}`;
    if (hashedDisk(disk, options.referenced)) {
      const source = disk.source!; // a hashed disk is a file disk with a source
      try {
        const d = await disks.digest(source);
        content = `content=sha256:${d.sha256}`;
        components.push({
          name,
          path: source,
          sha256: d.sha256,
          detail: "",
          referenced: disk.readonly,
          cached: d.cached,
        });
      } catch (error) {
        const why = describeError(error);
        content = "content=unmeasured";
        components.push({ name, path: source, sha256: "", detail: why, referenced: disk.readonly });
      }
    } else if (disk.type === "file" && disk.source !== undefined && disk.target !== undefined) {
      content = "content=unhashed-writable";
    }
    const line = [...fields, ...(content ? [content] : [])].join(" ");
    extensions.push({
      reg: VBOOT_REGISTERS.disks,
      data: encoder.encode(line),
      description: describe(`vboot disk ${line}`),
    });
  }
  return { components, extensions };
}

/**
 * The references registration records from a measured boot: every referenced component that
 * could be measured.
 *
 * @param boot the measured boot
 * @returns the references
 */
export function referencesOf(boot: MeasuredBoot): BootReference[] {
  return boot.components.filter((c) => c.referenced && c.sha256 !== "").map((c) => ({
    name: c.name,
    path: c.path,
    digest: c.sha256,
  }));
}

/**
 * What the policies compare: every referenced component, as measured or as missing from this
 * boot, and every boot file or command line measured without a reference. A disk without a
 * reference (writable, added) is measured and extended, not compared: the configuration digest
 * covers the disk list.
 *
 * @param boot the measured boot
 * @param references the VM's boot references
 * @param configDigest SHA-256 of the domain XML, hex
 * @returns the engine's boot state
 */
export function bootState(
  boot: MeasuredBoot,
  references: readonly BootReference[],
  configDigest: string,
): BootState {
  const byName = new Map(references.map((r) => [r.name, r]));
  const components: BootComponent[] = [];
  const seen = new Set<string>();
  for (const c of boot.components) {
    seen.add(c.name);
    const ref = byName.get(c.name);
    if (!ref && c.name.startsWith("disk:")) continue;
    components.push({
      name: c.name,
      path: c.path,
      digest: c.sha256 === "" ? "" : sha256Digest(c.sha256),
      expected: ref ? sha256Digest(ref.digest) : "",
      ...(c.detail ? { detail: c.detail } : {}),
    });
  }
  for (const ref of references) {
    if (seen.has(ref.name)) continue;
    components.push({
      name: ref.name,
      path: ref.path,
      digest: "",
      expected: sha256Digest(ref.digest),
      detail: "not in this boot",
    });
  }
  return {
    configDigest: sha256Digest(configDigest),
    components,
    references: references.length,
  };
}
