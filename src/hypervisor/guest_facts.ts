/**
 * What QEMU tells about a running guest over QMP that measuring its kernel needs: the CPU's
 * CR3, paging mode and IDT base, the QEMU version, the CPU model and the vCPU count.
 *
 * @module
 */
import { VaspError } from "../engine/error.ts";
import type { GuestCpuFacts } from "../measure/mod.ts";
import { QmpClient } from "./qmp_client.ts";

/** A register from `info registers` output, e.g. `CR3=000000000288e000`. */
function register(text: string, name: string): bigint {
  const m = new RegExp(`\\b${name}=\\s*([0-9a-f]+)`).exec(text);
  if (!m) throw new VaspError("qmp_failed", `"info registers" shows no ${name}`);
  return BigInt(`0x${m[1]}`);
}

/**
 * Asks QEMU, over its QMP socket, for the facts of the guest it runs.
 *
 * @param path QEMU's QMP socket
 * @returns the facts
 * @throws {VaspError} `qmp_failed` when QEMU lists no CPU or its registers lack one needed;
 *   what connecting to QMP throws
 */
export async function queryGuestFacts(path: string): Promise<GuestCpuFacts> {
  await using qmp = await QmpClient.connect(path);
  const cpus = await qmp.execute<{ "qom-path": string }[]>("query-cpus-fast");
  if (!Array.isArray(cpus) || cpus.length === 0) {
    throw new VaspError("qmp_failed", `QMP "${path}" lists no CPUs`);
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
