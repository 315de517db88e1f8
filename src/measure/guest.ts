/**
 * Opening a running guest for measurement: its RAM, its kernel's symbols and image, KASLR
 * discovery, and the facts that make its measurement profile. The settings are typed; the
 * `vasp` command builds them from flags, the monitor from a VM's introspection settings.
 *
 * @module
 */
import { GuestMemory, type HashAlgName } from "../../ffi/mod.ts";
import { VaspError } from "../engine/error.ts";
import { readBuildId, readCommandLine } from "./guest_info.ts";
import { KernelMeasurer } from "./measurer.ts";
import { makeProfile, type MeasurementProfile } from "./profile.ts";
import { type KernelSymbols, parseSymbolMap } from "./symbols.ts";
import { type KernelImage, loadKernelImage } from "./vmlinuz.ts";

/** What the hypervisor told about the guest (QMP): see `queryGuestFacts` in src/hypervisor. */
export interface GuestCpuFacts {
  /** QEMU version. */
  readonly qemu: string;
  /** CPU model. */
  readonly cpu: string;
  /** vCPU count. */
  readonly smp: number;
  /** CR3 of the first vCPU. */
  readonly cr3: bigint;
  /** 4- or 5-level paging. */
  readonly paging: 4 | 5;
  /** The IDT's base address. */
  readonly idtr: bigint;
}

/** Where a guest is and what is known of it. */
export interface GuestSettings {
  /** Guest RAM: QEMU memory-backend-file (share=on) or a raw dump. */
  readonly memory: string;
  /** The guest kernel's System.map (or a /proc/kallsyms copy). */
  readonly symbols: string;
  /** The guest kernel's vmlinuz: its relocations undo KASLR. */
  readonly vmlinuz?: string;
  /** Digest algorithm (default sha256). */
  readonly hash?: HashAlgName;
  /** RAM below the PCI hole when the file is larger (default: all of it). */
  readonly below4g?: bigint;
  /** What QEMU told (CR3, paging, IDTR, profile facts). */
  readonly facts?: GuestCpuFacts;
  /** Profile: QEMU version (default: from `facts`). */
  readonly qemuVersion?: string;
  /** Profile: CPU model (default: from `facts`). */
  readonly cpu?: string;
  /** Profile: vCPU count (default: from `facts`). */
  readonly smp?: number;
  /** Profile: kernel command line (default: read from guest RAM). */
  readonly cmdline?: string;
}

/** An opened guest; dispose it to close its RAM. */
export interface OpenedGuest extends AsyncDisposable {
  readonly memory: GuestMemory;
  readonly symbols: KernelSymbols;
  readonly image: KernelImage | undefined;
  readonly measurer: KernelMeasurer;
  readonly alg: HashAlgName;
  /** Whether the facts or the settings give every fact the profile needs. */
  readonly hasProfileFacts: boolean;
  /**
   * The measurement profile.
   *
   * @throws {VaspError} `usage_invalid` naming the facts missing
   */
  profile(): MeasurementProfile;
}

/**
 * Opens the guest the settings describe and finds its kernel.
 *
 * @param settings where the guest is and what is known of it
 * @returns the opened guest
 * @throws {VaspError} `kernel_mismatch` when the guest runs another build than the vmlinuz;
 *   what loading the symbols, the vmlinuz or KASLR discovery throws
 */
export async function openGuest(settings: GuestSettings): Promise<OpenedGuest> {
  const symbols = parseSymbolMap(await Deno.readTextFile(settings.symbols), settings.symbols);
  const image = settings.vmlinuz ? await loadKernelImage(settings.vmlinuz) : undefined;
  const facts = settings.facts;
  const memory = GuestMemory.open(settings.memory, { below4g: settings.below4g });
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
    const qemu = settings.qemuVersion ?? facts?.qemu;
    const cpu = settings.cpu ?? facts?.cpu;
    const smp = settings.smp ?? facts?.smp;
    return {
      memory,
      symbols,
      image,
      measurer,
      alg: settings.hash ?? "sha256",
      hasProfileFacts: qemu !== undefined && cpu !== undefined && smp !== undefined,
      profile() {
        if (!qemu || !cpu || smp === undefined) {
          throw new VaspError(
            "usage_invalid",
            "the profile needs --qmp, or --qemu-version, --cpu and --smp",
          );
        }
        return makeProfile({
          kernel: measurer.layout.banner,
          buildId,
          qemu,
          cpu,
          smp,
          cmdline: settings.cmdline ?? readCommandLine(memory, kernel),
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
