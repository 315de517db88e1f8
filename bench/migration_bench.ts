/**
 * What vASP adds to a live migration: `virsh migrate --live` of a 512 MiB TCG guest between two
 * libvirt hosts on this machine, with vASP (each host's hook, QMP gate and `vasp serve`; the
 * destination fetches the VM's state from the source, which attests it first; the source
 * retires its instance after) and without it (plain QEMU, no hook), in one run, alternating
 * directions and the two pairs so that both see the same load. Each figure is the median of
 * `--iterations` migrations. Then the attestation and transfer step alone: the destination's
 * `migrate-in` decision (open, evidence, appraisal and decision at the source, sealing to the
 * destination, import), timed through its operator socket, each one undone by reporting the
 * migration failed on both sides.
 *
 *   deno run --allow-all bench/migration_bench.ts [--iterations N] [--json]
 *
 * Goal: a migration with vASP within 10% of one without.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type LibvirtHost, startLibvirt } from "../tests/fixtures/libvirt.ts";
import { prepareGuestAssets } from "../tests/fixtures/guest.ts";
import {
  enrol,
  type MigrationHost,
  startMigrationHost,
} from "../tests/fixtures/migration_hosts.ts";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const { values } = parseArgs({
  args: Deno.args,
  options: { iterations: { type: "string", default: "5" }, json: { type: "boolean" } },
});
const n = Number(values.iterations);
const assets = await prepareGuestAssets();

/** Migrates `name` live from `from` to `to`; milliseconds. */
async function migrate(from: LibvirtHost, to: LibvirtHost, name: string): Promise<number> {
  const t0 = performance.now();
  await from.virshOk(
    ...["migrate", "--live", "--unsafe", name, to.uri, "--migrateuri", "tcp://127.0.0.1"],
  );
  const ms = performance.now() - t0;
  await to.waitState(name, "running");
  return ms;
}

await using a = await startMigrationHost("host-a", assets.vmlinuz);
await using b = await startMigrationHost("host-b", assets.vmlinuz);
await enrol(a, b);
await enrol(b, a);
await using c = await startLibvirt();
await using d = await startLibvirt();

const protectedVm = await a.libvirt.defineGuest("bench-vasp");
await a.api.waitState(protectedVm.uuid, "defined");
await a.api.call("DELETE", `/v1/vms/${protectedVm.uuid}`);
await a.api.call("POST", "/v1/vms", {
  uuid: protectedVm.uuid,
  name: protectedVm.name,
  domain_xml: protectedVm.xml,
});
const plainVm = await c.defineGuest("bench-plain");
for (const [host, vm] of [[a.libvirt, protectedVm], [c, plainVm]] as const) {
  await host.virshOk("start", vm.name);
  await host.waitGuestInit(vm);
}

// Where each guest is now, and a migration of it to the other host of its pair.
let here: [MigrationHost, MigrationHost] = [a, b];
let plainHere: [LibvirtHost, LibvirtHost] = [c, d];
const withVasp = async () => {
  const ms = await migrate(here[0].libvirt, here[1].libvirt, protectedVm.name);
  here = [here[1], here[0]];
  return ms;
};
const without = async () => {
  const ms = await migrate(plainHere[0], plainHere[1], plainVm.name);
  plainHere = [plainHere[1], plainHere[0]];
  return ms;
};
// The first migration of each pair probes QEMU on the destination.
await withVasp();
await without();
const times = { vasp: [] as number[], plain: [] as number[] };
for (let i = 0; i < n; i++) {
  times.vasp.push(await withVasp());
  times.plain.push(await without());
}

// The attestation and transfer alone: the destination's migrate-in decision, undone each time.
const [source, destination] = here;
const vm = { uuid: protectedVm.uuid, name: protectedVm.name };
const step: number[] = [];
for (let i = 0; i < n * 4; i++) {
  const t0 = performance.now();
  const r = await destination.api.call("POST", "/v1/decide", {
    operation: "migrate-in",
    phase: "begin",
    vm,
    source: "libvirt-hook",
  });
  step.push(performance.now() - t0);
  if (!r.json.allow) throw new Error(`migrate-in refused: ${JSON.stringify(r.json.reasons)}`);
  for (const [host, operation] of [[destination, "migrate-in"], [source, "migrate-out"]] as const) {
    const e = await host.api.call("POST", "/v1/events", {
      operation,
      vm,
      source: "qmp-gate",
      outcome: "failed",
    });
    if (e.status !== 200) throw new Error(`event refused: ${JSON.stringify(e.json)}`);
  }
}

const result = {
  iterations: n,
  migrate_ms: { with_vasp: median(times.vasp), without: median(times.plain) },
  ratio: median(times.vasp) / median(times.plain),
  attest_and_transfer_ms: median(step),
  runs_ms: times,
};
if (values.json) console.log(JSON.stringify(result, null, 2));
else {
  console.log(`live migration, median of ${n} (512 MiB TCG guest, loopback):`);
  console.log(`  without vASP  ${result.migrate_ms.without.toFixed(0)} ms`);
  console.log(
    `  with vASP     ${result.migrate_ms.with_vasp.toFixed(0)} ms  (×${result.ratio.toFixed(2)})`,
  );
  console.log(
    `attestation + transfer step (destination's migrate-in decision), median of ${step.length}: ` +
      `${result.attest_and_transfer_ms.toFixed(1)} ms`,
  );
}
