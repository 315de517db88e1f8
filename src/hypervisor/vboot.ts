/**
 * vBoot: what a VM is about to boot, as register extensions of its vASP instance. The
 * register allocation is fixed (docs/lifecycle.md): a verifier replays the event log and
 * compares each entry's SHA-256 with the file or text it expects. A file is extended with its
 * whole content, so the entry's `sha256` is the file's own digest.
 *
 * @module
 */
import type { Domain } from "./libvirt.ts";
import { errorMessage } from "../engine/error.ts";

/** Which instance register vBoot extends with what. */
export const VBOOT_REGISTERS = {
  /** The domain XML as the hook gave it (its SHA-256 is the boot's configuration digest). */
  config: 0,
  /** Firmware: `<os><loader>`. */
  firmware: 1,
  /** Direct kernel boot: `<os><kernel>`. */
  kernel: 2,
  /** Direct kernel boot: `<os><initrd>`. */
  initrd: 3,
  /** Direct kernel boot: `<os><cmdline>`, as UTF-8. */
  cmdline: 4,
  /** Each `<disk>`: device, type, source, format, target, read-only, backing chain. */
  disks: 5,
} as const;

/** One register extension. */
export interface BootExtension {
  /** Instance register. */
  readonly reg: number;
  /** The bytes extended (the event log keeps their SHA-256 and SM3). */
  readonly data: Uint8Array;
  /** What they are. */
  readonly description: string;
}

/** Options of {@link vbootExtensions}. */
export interface VbootOptions {
  /** Reads a file (default: `Deno.readFile`); its failure is logged, not thrown. */
  readonly readFile?: (path: string) => Promise<Uint8Array>;
  /** Size of a file (default: `Deno.stat`). */
  readonly fileSize?: (path: string) => Promise<number>;
  /** Files larger than this are logged as too large, not read (default 512 MiB). */
  readonly maxFileBytes?: number;
}

const encoder = new TextEncoder();
const MAX_DESCRIPTION = 1000;

/** A description within the library's 1024-byte limit, cut in the middle of long paths. */
function describe(text: string): string {
  if (encoder.encode(text).length <= MAX_DESCRIPTION) return text;
  const chars = [...text];
  return `${chars.slice(0, 480).join("")}…${chars.slice(-480).join("")}`;
}

async function fileExtension(
  reg: number,
  what: string,
  path: string,
  options: VbootOptions,
): Promise<BootExtension> {
  const max = options.maxFileBytes ?? 512 * 1024 * 1024;
  const size = options.fileSize ?? (async (p: string) => (await Deno.stat(p)).size);
  const read = options.readFile ?? ((p: string) => Deno.readFile(p));
  try {
    const bytes = await size(path);
    if (bytes > max) throw new Error(`${bytes} bytes, over the ${max}-byte limit`);
    return { reg, data: await read(path), description: describe(`vboot ${what} ${path}`) };
  } catch (error) {
    // What could not be read is still recorded: the verifier sees that it was not measured.
    const why = errorMessage(error);
    return {
      reg,
      data: encoder.encode(`unreadable ${path}: ${why}`),
      description: describe(`vboot ${what} ${path} (not measured: ${why})`),
    };
  }
}

/**
 * The extensions for one boot of a domain, in register order.
 *
 * @param domain the parsed domain XML
 * @param xml the domain XML as given (extended whole into the config register)
 * @param options how files are read
 * @returns the extensions; a file that cannot be read becomes an entry saying so
 * @example
 * ```ts ignore
 * const plan = await vbootExtensions(parseDomainXml(xml), xml);
 * for (const e of plan) instance.extend(e.reg, e.data, e.description);
 * ```
 */
export async function vbootExtensions(
  domain: Domain,
  xml: Uint8Array,
  options: VbootOptions = {},
): Promise<BootExtension[]> {
  const out: BootExtension[] = [{
    reg: VBOOT_REGISTERS.config,
    data: xml,
    description: describe(`vboot domain XML of "${domain.name}" (${domain.uuid})`),
  }];
  const os = domain.os;
  if (os.loader) {
    out.push(await fileExtension(VBOOT_REGISTERS.firmware, "firmware", os.loader, options));
  }
  if (os.kernel) {
    out.push(await fileExtension(VBOOT_REGISTERS.kernel, "kernel", os.kernel, options));
  }
  if (os.initrd) {
    out.push(await fileExtension(VBOOT_REGISTERS.initrd, "initrd", os.initrd, options));
  }
  if (os.cmdline !== undefined) {
    out.push({
      reg: VBOOT_REGISTERS.cmdline,
      data: encoder.encode(os.cmdline),
      description: "vboot kernel command line",
    });
  }
  for (const disk of domain.disks) {
    const line = [
      disk.device,
      disk.type,
      disk.source ?? "-",
      disk.format ?? "-",
      disk.target ?? "-",
      disk.readonly ? "ro" : "rw",
      ...disk.backingChain.map((b) => `<${b}`),
    ].join(" ");
    out.push({
      reg: VBOOT_REGISTERS.disks,
      data: encoder.encode(line),
      description: describe(`vboot disk ${line}`),
    });
  }
  return out;
}
