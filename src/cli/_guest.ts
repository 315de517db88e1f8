/**
 * What `vasp measure` and `vasp refs …` share: the guest options, opening a guest (RAM,
 * symbols, vmlinuz, QMP), and the facts that make its measurement profile.
 *
 * @module
 */
import { GuestMemory, type HashAlgName } from "../../ffi/mod.ts";
import { VaspError } from "../engine/error.ts";
import { QmpClient } from "../hypervisor/qmp_client.ts";
import {
  type KernelImage,
  KernelMeasurer,
  type KernelSymbols,
  loadKernelImage,
  makeProfile,
  type MeasurementProfile,
  parseSymbolMap,
} from "../measure/mod.ts";
import { readBuildId, readCommandLine } from "../measure/guest_info.ts";

/** parseArgs options of every guest command. */
export const GUEST_OPTIONS = {
  memory: { type: "string" },
  symbols: { type: "string" },
  vmlinuz: { type: "string" },
  qmp: { type: "string" },
  hash: { type: "string" },
  "below-4g": { type: "string" },
  "qemu-version": { type: "string" },
  cpu: { type: "string" },
  smp: { type: "string" },
  cmdline: { type: "string" },
  json: { type: "boolean" },
} as const;

/** Usage lines for {@linkcode GUEST_OPTIONS}. */
export const GUEST_USAGE =
  `  --memory FILE        guest RAM: QEMU memory-backend-file (share=on) or a raw dump
  --symbols FILE       the guest kernel's System.map (or a /proc/kallsyms copy)
  --vmlinuz FILE       the guest kernel's vmlinuz: its relocations undo KASLR
  --qmp SOCKET         QEMU's QMP socket: CR3, paging, IDTR, QEMU version, CPU model, vCPUs
  --hash ALG           sha256 (default) or sm3
  --below-4g BYTES     RAM below the PCI hole when the file is larger (default: all of it)
  --qemu-version V     profile: QEMU version (default: from --qmp)
  --cpu MODEL          profile: CPU model, e.g. qemu64 (default: from --qmp)
  --smp N              profile: vCPU count (default: from --qmp)
  --cmdline TEXT       profile: kernel command line (default: read from guest RAM)
  --json               print JSON`;

/** Parsed values of {@linkcode GUEST_OPTIONS}. */
export type GuestValues = {
  [K in keyof typeof GUEST_OPTIONS]?: K extends "json" ? boolean : string;
};

/** What the hypervisor told about the guest. */
interface QmpFacts {
  qemu: string;
  cpu: string;
  smp: number;
  cr3: bigint;
  paging: 4 | 5;
  idtr: bigint;
}

/** An opened guest; dispose it to close the RAM and the QMP socket. */
export interface OpenedGuest extends AsyncDisposable {
  readonly memory: GuestMemory;
  readonly symbols: KernelSymbols;
  readonly image: KernelImage | undefined;
  readonly measurer: KernelMeasurer;
  readonly alg: HashAlgName;
  /** Whether QMP or the flags give every fact the profile needs. */
  readonly hasProfileFacts: boolean;
  /** The profile, or a usage error naming the facts missing. */
  profile(): MeasurementProfile;
}

function usage(message: string): VaspError {
  return new VaspError("usage_error", message);
}

/** A register from `info registers` output, e.g. `CR3=000000000288e000`. */
function register(text: string, name: string): bigint {
  const m = new RegExp(`\\b${name}=\\s*([0-9a-f]+)`).exec(text);
  if (!m) throw new VaspError("qmp_error", `"info registers" shows no ${name}`);
  return BigInt(`0x${m[1]}`);
}

async function qmpFacts(path: string): Promise<QmpFacts> {
  await using qmp = await QmpClient.connect(path);
  const cpus = await qmp.execute<{ "qom-path": string }[]>("query-cpus-fast");
  if (!Array.isArray(cpus) || cpus.length === 0) {
    throw new VaspError("qmp_error", `QMP "${path}" lists no CPUs`);
  }
  const type = await qmp.execute<string>("qom-get", {
    path: cpus[0]!["qom-path"],
    property: "type",
  });
  const regs = await qmp.hmp("info registers");
  const v = qmp.version;
  return {
    qemu: v ? `${v.qemu.major}.${v.qemu.minor}.${v.qemu.micro} (${v.package.trim()})` : "",
    cpu: String(type).replace(/-x86_64-cpu$/, ""),
    smp: cpus.length,
    cr3: register(regs, "CR3"),
    paging: (register(regs, "CR4") & 0x1000n) !== 0n ? 5 : 4,
    idtr: register(regs, "IDT"),
  };
}

function hashOption(value: string | undefined): HashAlgName {
  if (value === undefined || value === "sha256" || value === "sm3") return value ?? "sha256";
  throw usage(`--hash must be sha256 or sm3, not "${value}"`);
}

function integer(value: string, name: string): bigint {
  if (!/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(value)) throw usage(`${name} "${value}" is not a number`);
  return BigInt(value);
}

/**
 * Opens the guest the options describe and finds its kernel.
 *
 * @param values parsed {@linkcode GUEST_OPTIONS}
 * @returns the opened guest
 * @throws {VaspError} `usage_error` for a missing or malformed option; what loading the
 *   symbols, the vmlinuz, QMP or KASLR discovery throws
 */
export async function openGuest(values: GuestValues): Promise<OpenedGuest> {
  if (!values.memory) throw usage("--memory is required");
  if (!values.symbols) throw usage("--symbols is required");
  const alg = hashOption(values.hash);
  const symbols = parseSymbolMap(await Deno.readTextFile(values.symbols), values.symbols);
  const image = values.vmlinuz ? await loadKernelImage(values.vmlinuz) : undefined;
  const facts = values.qmp ? await qmpFacts(values.qmp) : undefined;
  const below4g = values["below-4g"] ? integer(values["below-4g"], "--below-4g") : undefined;
  const memory = GuestMemory.open(values.memory, { below4g });
  try {
    const measurer = KernelMeasurer.create(memory, symbols, {
      image,
      cr3: facts?.cr3,
      paging: facts?.paging,
      idtr: facts?.idtr,
    });
    const kernel = { measurer, symbols };
    const buildId = readBuildId(memory, kernel);
    if (image && image.elf.buildId && buildId !== image.elf.buildId) {
      throw new VaspError(
        "kernel_mismatch",
        `The guest runs build ${buildId}, "${image.source}" is build ${image.elf.buildId}`,
      );
    }
    return {
      memory,
      symbols,
      image,
      measurer,
      alg,
      hasProfileFacts: facts !== undefined ||
        (values["qemu-version"] !== undefined && values.cpu !== undefined &&
          values.smp !== undefined),
      profile() {
        const qemu = values["qemu-version"] ?? facts?.qemu;
        const cpu = values.cpu ?? facts?.cpu;
        const smp = values.smp !== undefined ? Number(integer(values.smp, "--smp")) : facts?.smp;
        if (!qemu || !cpu || smp === undefined) {
          throw usage("the profile needs --qmp, or --qemu-version, --cpu and --smp");
        }
        return makeProfile({
          kernel: measurer.layout.banner,
          buildId,
          qemu,
          cpu,
          smp,
          cmdline: values.cmdline ?? readCommandLine(memory, kernel),
        });
      },
      [Symbol.asyncDispose]() {
        memory.close();
        return Promise.resolve();
      },
    };
  } catch (error) {
    memory.close();
    throw error;
  }
}
