/**
 * The flags every guest command shares (`vasp measure`, `vasp refs …`), turned into typed
 * guest settings; with `--qmp`, the facts come from QEMU.
 *
 * @module
 */
import type { HashAlgName } from "../../ffi/mod.ts";
import { errorMessage, VaspError } from "../engine/error.ts";
import { queryGuestFacts } from "../hypervisor/mod.ts";
import { type GuestSettings, type OpenedGuest, openGuest } from "../measure/mod.ts";

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

/**
 * Fails with an error naming the flag and the path when `path` cannot be read.
 *
 * @throws {VaspError} `io_failed`
 */
export function mustExist(flag: string, path: string): void {
  try {
    Deno.statSync(path);
  } catch (cause) {
    const why = cause instanceof Deno.errors.NotFound ? "no such file" : errorMessage(cause);
    throw new VaspError("io_failed", `Cannot read ${flag} "${path}": ${why}`, {
      cause,
      details: { flag, path },
    });
  }
}

function usage(message: string): VaspError {
  return new VaspError("usage_invalid", message);
}

function integer(value: string, name: string): bigint {
  if (!/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(value)) throw usage(`${name} "${value}" is not a number`);
  return BigInt(value);
}

/**
 * The `--hash` flag's algorithm, SHA-256 when absent.
 *
 * @throws {VaspError} `usage_invalid` for another value
 */
export function hashOption(value: string | undefined): HashAlgName {
  if (value === undefined || value === "sha256" || value === "sm3") return value ?? "sha256";
  throw usage(`--hash must be sha256 or sm3, not "${value}"`);
}

/**
 * Opens the guest the flags describe.
 *
 * @param values parsed {@linkcode GUEST_OPTIONS}
 * @returns the opened guest
 * @throws {VaspError} `usage_invalid` for a missing or malformed flag; what QMP or
 *   {@linkcode openGuest} throws
 */
export async function openGuestFromFlags(values: GuestValues): Promise<OpenedGuest> {
  if (!values.memory) throw usage("--memory is required");
  if (!values.symbols) throw usage("--symbols is required");
  for (const flag of ["memory", "symbols", "vmlinuz"] as const) {
    const path = values[flag];
    if (path !== undefined) mustExist(`--${flag}`, path);
  }
  const settings: GuestSettings = {
    memory: values.memory,
    symbols: values.symbols,
    vmlinuz: values.vmlinuz,
    hash: hashOption(values.hash),
    below4g: values["below-4g"] ? integer(values["below-4g"], "--below-4g") : undefined,
    qemuVersion: values["qemu-version"],
    cpu: values.cpu,
    smp: values.smp !== undefined ? Number(integer(values.smp, "--smp")) : undefined,
    cmdline: values.cmdline,
  };
  const facts = values.qmp ? await queryGuestFacts(values.qmp) : undefined;
  return await openGuest({ ...settings, facts });
}
