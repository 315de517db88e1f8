/**
 * libvirt domain XML: what vASP needs of it to identify a VM and measure what it boots —
 * UUID, name, emulator, memory backing (shared RAM is what introspection maps), direct
 * kernel boot (kernel, initrd, cmdline) and disks. The XML reaches vASP from the libvirt
 * hook (`details.domain_xml_b64`); it is read with a strict parser that expands no entity.
 *
 * @module
 */
import { VaspError } from "../engine/error.ts";
import { child, parseXml, type XmlElement } from "./_xml.ts";

/** How guest RAM is backed (`<memoryBacking>`). */
export interface MemoryBacking {
  /** `<source type>`: `file`, `anonymous`, `memfd`, when given. */
  readonly source?: string;
  /** `<access mode>`: `shared` or `private`, when given. */
  readonly access?: string;
  /** Whether RAM is shared with the host, so that vASP can map it. */
  readonly shared: boolean;
  /** `<hugepages/>` is present. */
  readonly hugepages: boolean;
}

/** The boot section (`<os>`). */
export interface OsBoot {
  /** `<type>`: `hvm`, … */
  readonly type?: string;
  /** `<type arch>`. */
  readonly arch?: string;
  /** `<type machine>`. */
  readonly machine?: string;
  /** `<loader>`: firmware path. */
  readonly loader?: string;
  /** Direct kernel boot: the kernel image path. */
  readonly kernel?: string;
  /** Direct kernel boot: the initrd path. */
  readonly initrd?: string;
  /** Direct kernel boot: the kernel command line. */
  readonly cmdline?: string;
  /** `<nvram template>`: the UEFI variable store the VM's own NVRAM is copied from. */
  readonly nvramTemplate?: string;
}

/** One `<disk>`. */
export interface Disk {
  /** `device`: `disk`, `cdrom`, `floppy`, `lun`. */
  readonly device: string;
  /** `type`: `file`, `block`, `network`, `volume`, … */
  readonly type: string;
  /** The image: `<source file|dev|name|volume>`, when there is one (an empty cdrom has none). */
  readonly source?: string;
  /** `<driver type>`: `qcow2`, `raw`, … */
  readonly format?: string;
  /** `<target dev>`: `vda`, … */
  readonly target?: string;
  /** `<target bus>`. */
  readonly bus?: string;
  /** `<readonly/>` is present. */
  readonly readonly: boolean;
  /** The backing chain below the image, nearest first (paths). */
  readonly backingChain: readonly string[];
}

/** What vASP reads from a domain XML. */
export interface Domain {
  /** `<uuid>`, lower-cased. */
  readonly uuid: string;
  /** `<name>`. */
  readonly name: string;
  /** `<domain type>`: `kvm`, `qemu`. */
  readonly type: string;
  /** `<devices><emulator>`: the QEMU binary (or the vASP wrapper). */
  readonly emulator?: string;
  /** `<memory>` in KiB. */
  readonly memoryKiB?: number;
  /** `<memoryBacking>`, when present. */
  readonly memoryBacking?: MemoryBacking;
  /** `<os>`. */
  readonly os: OsBoot;
  /** Every `<disk>`, in order. */
  readonly disks: readonly Disk[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UNITS: Record<string, number> = {
  b: 1 / 1024,
  bytes: 1 / 1024,
  k: 1,
  kib: 1,
  kb: 1000 / 1024,
  m: 1024,
  mib: 1024,
  mb: 1e6 / 1024,
  g: 1024 ** 2,
  gib: 1024 ** 2,
  gb: 1e9 / 1024,
};

/**
 * Reads a libvirt domain XML.
 *
 * @param xml the XML, as libvirt gives it to hooks or `virsh dumpxml` prints it
 * @returns the domain's identity, boot and storage facts
 * @throws {VaspError} `xml_invalid` for XML the strict parser refuses; `domain_xml_invalid`
 *   for a document that is not a domain, or has no valid UUID or name
 * @example
 * ```ts
 * import { parseDomainXml } from "./libvirt.ts";
 * const d = parseDomainXml(
 *   "<domain type='kvm'><name>web-1</name><uuid>6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c</uuid></domain>",
 * );
 * if (d.name !== "web-1") throw new Error("unexpected name");
 * ```
 */
export function parseDomainXml(xml: string): Domain {
  const root = parseXml(xml);
  if (root.name !== "domain") {
    throw domainInvalid(`the root element is <${root.name}>, not <domain>`);
  }
  const uuid = child(root, "uuid")?.text.trim().toLowerCase() ?? "";
  if (!UUID.test(uuid)) throw domainInvalid(`<uuid> "${uuid}" is not a UUID`);
  const name = child(root, "name")?.text.trim() ?? "";
  if (name === "") throw domainInvalid(`the domain ${uuid} has no <name>`);
  const devices = child(root, "devices");
  const backing = child(root, "memoryBacking");
  const os = child(root, "os");
  const osType = child(os, "type");
  return {
    uuid,
    name,
    type: root.attrs.type ?? "",
    ...optional("emulator", child(devices, "emulator")?.text.trim()),
    ...optional("memoryKiB", memoryKiB(child(root, "memory"))),
    ...(backing
      ? {
        memoryBacking: {
          ...optional("source", child(backing, "source")?.attrs.type),
          ...optional("access", child(backing, "access")?.attrs.mode),
          shared: child(backing, "access")?.attrs.mode === "shared",
          hugepages: child(backing, "hugepages") !== undefined,
        },
      }
      : {}),
    os: {
      ...optional("type", osType?.text.trim()),
      ...optional("arch", osType?.attrs.arch),
      ...optional("machine", osType?.attrs.machine),
      ...optional("loader", child(os, "loader")?.text.trim()),
      ...optional("kernel", child(os, "kernel")?.text.trim()),
      ...optional("initrd", child(os, "initrd")?.text.trim()),
      ...optional("cmdline", child(os, "cmdline")?.text),
      ...optional("nvramTemplate", child(os, "nvram")?.attrs.template),
    },
    disks: (devices?.children ?? []).filter((c) => c.name === "disk").map(disk),
  };
}

function disk(el: XmlElement): Disk {
  const target = child(el, "target");
  const chain: string[] = [];
  for (let b = child(el, "backingStore"); b && chain.length < 64; b = child(b, "backingStore")) {
    const path = sourceOf(b);
    if (path === undefined) break;
    chain.push(path);
  }
  return {
    device: el.attrs.device ?? "disk",
    type: el.attrs.type ?? "",
    ...optional("source", sourceOf(el)),
    ...optional("format", child(el, "driver")?.attrs.type),
    ...optional("target", target?.attrs.dev),
    ...optional("bus", target?.attrs.bus),
    readonly: child(el, "readonly") !== undefined,
    backingChain: chain,
  };
}

function sourceOf(el: XmlElement): string | undefined {
  const s = child(el, "source")?.attrs;
  return s?.file ?? s?.dev ?? s?.name ?? s?.volume ?? s?.dir;
}

function memoryKiB(el: XmlElement | undefined): number | undefined {
  if (!el) return undefined;
  const value = Number(el.text.trim());
  const unit = UNITS[(el.attrs.unit ?? "KiB").toLowerCase()];
  if (!Number.isFinite(value) || value < 0 || unit === undefined) {
    throw domainInvalid(`<memory unit="${el.attrs.unit}">${el.text}</memory> is not a size`);
  }
  return Math.round(value * unit);
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined || value === "" ? {} : { [key]: value }) as { [P in K]?: V };
}

function domainInvalid(message: string): VaspError {
  return new VaspError("domain_xml_invalid", `Cannot use the domain XML: ${message}`);
}
