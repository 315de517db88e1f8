/**
 * What vASP adds to virsh on a real libvirtd (tests/fixtures/libvirt.ts): `virsh start`,
 * `suspend`, `resume`, `save` and `restore` of a TCG guest, without vASP (plain QEMU as the
 * emulator, no hook), with vASP's hook alone (what the gate costs) and with all of it (the
 * wrapper, the QMP gate, the hook and `vasp serve` with the default policies but
 * measurement-freshness: these guests are not measured), in one run on this machine. Each
 * figure is the median of `--iterations` rounds: a start a second after the VM stopped, a
 * restart (a start right after a destroy: it waits for the server's hash of the boot files
 * libvirt changed the owner of at the stop, docs/lifecycle.md), suspend, resume, save, restore,
 * destroy. With the hook alone vASP does not see a save, so that configuration times starts,
 * suspend and resume.
 *
 *   deno run --allow-all bench/libvirt_bench.ts [--iterations N] [--json]
 *
 * Goal: start and restore with vASP within 10% of without.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type LibvirtHost, startLibvirt } from "../tests/fixtures/libvirt.ts";
import { startServe } from "../tests/fixtures/serve_process.ts";
import { prepareGuestAssets } from "../tests/fixtures/guest.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const OPS = ["start", "restart", "suspend", "resume", "save", "restore"] as const;
type Op = typeof OPS[number];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Times each operation `n` times on `host`'s domain `name`; save and restore only with `saves`
 * (NaN without).
 */
async function rounds(
  host: LibvirtHost,
  name: string,
  n: number,
  saves = true,
): Promise<Record<Op, number>> {
  const times: Record<Op, number[]> = {
    start: [],
    restart: [],
    suspend: [],
    resume: [],
    save: [],
    restore: [],
  };
  const image = `${host.dir}/${name}.bench.save`;
  const timed = async (op: Op, command: string, ...args: string[]) => {
    const t0 = performance.now();
    await host.virshOk(command, ...args);
    times[op].push(performance.now() - t0);
  };
  const destroy = async () => {
    await host.virshOk("destroy", name);
    await host.waitState(name, "shut off");
  };
  for (let i = 0; i < n; i++) {
    // A start a while after the stop: by then vASP has hashed the boot files again (libvirt
    // changed their owner at the stop). A restart right after a stop waits for that hash.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await timed("start", "start", name);
    await destroy();
    await timed("restart", "start", name);
    await timed("suspend", "suspend", name);
    await timed("resume", "resume", name);
    if (saves) {
      await timed("save", "save", name, image);
      await timed("restore", "restore", image);
      await Deno.remove(image);
    }
    await destroy();
  }
  return Object.fromEntries(
    OPS.map((op) => [op, times[op].length ? median(times[op]) : NaN]),
  ) as Record<Op, number>;
}

const { values } = parseArgs({
  args: Deno.args,
  options: { iterations: { type: "string", default: "5" }, json: { type: "boolean" } },
});
const n = Number(values.iterations);
const assets = await prepareGuestAssets();

let without: Record<Op, number>;
{
  await using host = await startLibvirt();
  await host.defineGuest("bench");
  await rounds(host, "bench", 1); // the first start probes QEMU
  without = await rounds(host, "bench", n);
}

/**
 * The same rounds with vASP: `vasp serve`, the hook, and the wrapper and gate when `gate`.
 * Without the gate vASP does not see a save (a QMP migration to a file), so it would refuse the
 * restore: that configuration times start, suspend and resume.
 */
async function withVasp(gate: boolean): Promise<Record<Op, number>> {
  const stateDir = await Deno.makeTempDir({ prefix: "vasp-bench-libvirt-" });
  const policies = `${stateDir}-policies`;
  await Deno.mkdir(policies);
  for await (const e of Deno.readDir(`${ROOT}policies`)) {
    if (e.name.startsWith("measurement-freshness.")) continue;
    await Deno.copyFile(`${ROOT}policies/${e.name}`, `${policies}/${e.name}`);
  }
  try {
    await using host = await startLibvirt({ vasp: { socket: `${stateDir}/hook.sock`, gate } });
    const serve = await startServe([
      ...["--state-dir", stateDir, "--no-tcp", "--learn-host", "--policies", policies],
      ...["--qemu", "/usr/bin/qemu-system-x86_64", "--host-kernel", assets.vmlinuz],
      ...["--libvirt-uri", host.uri],
    ]);
    try {
      if (!serve.output.includes("ready;")) throw new Error("vasp serve did not start");
      const vm = await host.defineGuest("bench");
      // The server learns of the domain from libvirt's define event.
      const client = Deno.createHttpClient({
        proxy: { transport: "unix", path: `${stateDir}/vasp.sock` },
      });
      const deadline = Date.now() + 120_000;
      while ((await fetch(`http://localhost/v1/vms/${vm.uuid}`, { client })).status !== 200) {
        if (Date.now() > deadline) throw new Error("vasp serve did not learn of the domain");
        await new Promise((r) => setTimeout(r, 200));
      }
      client.close();
      await rounds(host, "bench", 1, gate);
      return await rounds(host, "bench", n, gate);
    } finally {
      await serve.stop();
    }
  } finally {
    await Deno.remove(stateDir, { recursive: true });
    await Deno.remove(policies, { recursive: true });
  }
}
const hooksOnly = await withVasp(false);
const gated = await withVasp(true);

const rows = OPS.map((op) => ({
  op,
  withoutMs: without[op],
  hooksOnlyMs: hooksOnly[op],
  withMs: gated[op],
  addedPercent: (gated[op] / without[op] - 1) * 100,
  goalPercent: op === "start" || op === "restore" ? 10 : undefined,
}));
if (values.json) console.log(JSON.stringify(rows));
else {
  console.log(
    `virsh on a real libvirtd, median of ${n} (ms): without vASP | hooks only | with vASP | added`,
  );
  for (const r of rows) {
    const goal = r.goalPercent === undefined
      ? ""
      : r.addedPercent <= r.goalPercent
      ? `  (goal ≤ ${r.goalPercent}%: met)`
      : `  (goal ≤ ${r.goalPercent}%: MISSED)`;
    console.log(
      `  ${r.op.padEnd(8)} ${r.withoutMs.toFixed(0).padStart(7)} | ${
        (Number.isNaN(r.hooksOnlyMs) ? "-" : r.hooksOnlyMs.toFixed(0)).padStart(7)
      } | ${r.withMs.toFixed(0).padStart(7)} | ${r.addedPercent.toFixed(1).padStart(6)}%${goal}`,
    );
  }
}
