/**
 * What the demo stands in for because this machine may lack it: the host kernel image or QEMU
 * binary the ASP measures (a file, said so), the boot files of the VM's domain, and the guest.
 * No QEMU runs here, so the guest is two kernel regions held as bytes and hashed by the native
 * library, reached through the server's own monitor by a {@link GuestPort}. Everything after
 * the hashing is the real thing: a reference set learned and stored as `vasp refs learn`
 * stores it, the server's monitor (verdicts, the register-8 extension, the `measurement`
 * decision through the decision service, enforcement), its store and vASP instances.
 *
 * @module
 */
import { delimiter, join } from "node:path";
import { hash } from "../../ffi/mod.ts";
import { toHex } from "../codec/mod.ts";
import type { GuestPort } from "../decision/mod.ts";
import type { HostMeasureOptions } from "../host/mod.ts";
import {
  type KernelMeasurement,
  makeProfile,
  profileId,
  referenceFromMeasurement,
  type RegionKind,
  saveReferenceSet,
  unslidMeasurement,
} from "../measure/mod.ts";

/** A VM as the API names it. */
export interface DemoVm {
  /** Its UUID. */
  readonly uuid: string;
  /** Its name. */
  readonly name: string;
}

async function readable(path: string): Promise<boolean> {
  try {
    (await Deno.open(path)).close();
    return true;
  } catch {
    return false;
  }
}

async function onPath(name: string): Promise<boolean> {
  const dirs = (Deno.env.get("PATH") ?? "").split(delimiter).filter(Boolean);
  for (const dir of dirs) if (await readable(join(dir, name))) return true;
  return false;
}

/**
 * The host parts the ASP measures: the real ones where this machine has them, a stand-in file
 * in `dir` for a host kernel image that cannot be read or a QEMU binary not on PATH.
 *
 * @param dir where stand-in files go
 * @returns the measurement options and the parts stood in for
 * @throws {Deno.errors.PermissionDenied} when `dir` cannot be written
 */
export async function standInHost(
  dir: string,
): Promise<{ host: HostMeasureOptions; standIns: string[] }> {
  const standIns: string[] = [];
  const standIn = async (part: string, file: string) => {
    standIns.push(part);
    await Deno.writeTextFile(join(dir, file), `a stand-in ${part} for the demo\n`);
    return join(dir, file);
  };
  const host: { kernel?: string; qemu?: string } = {};
  if (!await readable(`/boot/vmlinuz-${Deno.osRelease()}`)) {
    host.kernel = await standIn("host kernel", "host-vmlinuz");
  }
  if (!await onPath("qemu-system-x86_64")) host.qemu = await standIn("QEMU", "host-qemu");
  return { host, standIns };
}

/**
 * A domain XML that boots a kernel file written into `<dir>/boot`, as libvirt hands it to its
 * hook: what vBoot measures at start.
 *
 * @param dir where the boot files go
 * @param vm the VM
 * @returns the XML text
 * @throws {Deno.errors.AlreadyExists} when `<dir>/boot` exists
 */
export async function standInDomain(dir: string, vm: DemoVm): Promise<string> {
  const boot = join(dir, "boot");
  await Deno.mkdir(boot);
  await Deno.writeFile(join(boot, "vmlinuz"), crypto.getRandomValues(new Uint8Array(8192)));
  return `<domain type='kvm'>\n  <name>${vm.name}</name>\n  <uuid>${vm.uuid}</uuid>\n` +
    `  <memory unit='KiB'>262144</memory>\n  <os>\n    <type arch='x86_64'>hvm</type>\n` +
    `    <kernel>${boot}/vmlinuz</kernel>\n    <cmdline>console=ttyS0</cmdline>\n  </os>\n` +
    `</domain>\n`;
}

/** A stand-in guest kernel: its text and syscall table, measured as the measurer reports. */
export class StandInGuest {
  readonly #regions: { name: string; kind: RegionKind; bytes: Uint8Array<ArrayBuffer> }[] = [
    { name: "kernel_text", kind: "text", bytes: crypto.getRandomValues(new Uint8Array(65536)) },
    {
      name: "sys_call_table",
      kind: "syscall_table",
      bytes: crypto.getRandomValues(new Uint8Array(3616)),
    },
  ];

  /**
   * Measures every region once.
   *
   * @returns the measurement, KASLR undone (there is none to undo)
   */
  measure(): KernelMeasurement {
    const started = performance.now();
    const regions = this.#regions.map((r, i) => ({
      name: r.name,
      kind: r.kind,
      linkedVa: 0xffffffff81000000n + BigInt(i) * 0x200000n,
      va: 0xffffffff81000000n + BigInt(i) * 0x200000n,
      phys: 0x1000000n + BigInt(i) * 0x200000n,
      len: r.bytes.length,
      digest: toHex(hash("sha256", r.bytes)),
      error: null,
    }));
    return unslidMeasurement(regions, {
      banner: "Linux version 6.1.0-demo (stand-in guest)",
      elapsedMs: performance.now() - started,
    });
  }

  /**
   * Flips one byte of the kernel text, as a rootkit patching a function would.
   *
   * @returns the region changed
   */
  patchText(): string {
    this.#regions[0]!.bytes[0x1234]! ^= 0xff;
    return this.#regions[0]!.name;
  }
}

/** The profile of the stand-in guest. */
const STAND_IN_PROFILE = makeProfile({
  kernel: "Linux version 6.1.0-demo (stand-in guest)",
  qemu: "none (stand-in guest)",
  cpu: "qemu64",
  smp: 1,
  cmdline: "",
});

/**
 * Learns the stand-in guest's references into `referencesDir`, as `vasp refs learn` would.
 *
 * @param guest the stand-in guest
 * @param referencesDir `<stateDir>/references`
 * @returns once stored
 * @throws {VaspError} `reference_refused`, an I/O error writing the reference set
 */
export async function learnStandIn(guest: StandInGuest, referencesDir: string): Promise<void> {
  await saveReferenceSet(
    referencesDir,
    referenceFromMeasurement(guest.measure(), {
      profile: STAND_IN_PROFILE,
      learnedAt: new Date().toISOString(),
    }),
  );
}

/**
 * How the server's monitor reaches the stand-in guest: measuring it, and noting the actions it
 * would send over QMP (there is no QEMU).
 *
 * @param guest the stand-in guest
 * @param enforced where actions are noted
 * @returns the port
 */
export function standInGuests(guest: StandInGuest, enforced: string[]): GuestPort {
  return {
    open: () =>
      Promise.resolve({
        profileId: profileId(STAND_IN_PROFILE),
        measure: () => Promise.resolve(guest.measure()),
        close() {},
      }),
    enforce(_settings, action) {
      enforced.push(action);
      return Promise.resolve();
    },
  };
}
