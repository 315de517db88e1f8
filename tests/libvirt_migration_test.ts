/**
 * Live migration between two real libvirt hosts on one machine (each libvirtd in its own mount
 * namespace, its domains behind the vASP wrapper and QMP gate), each with its own `vasp serve`
 * (state directory, software ASP, manufacturer CA, TCP listener on loopback). The destination's
 * migrate hook fetches the VM's vASP state from the source, which attests it first; every
 * refusal ends `virsh migrate` with its reason and leaves the guest running on the source with
 * its vASP; the migration that is allowed moves the VM and its vASP, and the source keeps none;
 * the destination's monitor measures the guest's kernel against the references that came with it.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { type GuestDomain, poll } from "./fixtures/libvirt.ts";
import { type GuestAssets, prepareGuestAssets } from "./fixtures/guest.ts";
import {
  enrol,
  type MigrationHost as Host,
  startMigrationHost,
} from "./fixtures/migration_hosts.ts";
import { readCertificates, verifyQuote } from "../src/attest/mod.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** The guest's RAM file on a host: libvirt names its folder after the domain's ID there. */
async function ramFile(host: Host, vm: GuestDomain): Promise<string> {
  const dir = `${host.libvirt.ramDir}/libvirt/qemu`;
  let found: string | undefined;
  await poll(`${vm.name}'s RAM file on ${host.name}`, async () => {
    try {
      for await (const e of Deno.readDir(dir)) {
        if (e.name.endsWith(`-${vm.name}`)) found = `${dir}/${e.name}/pc.ram`;
      }
    } catch { /* not made yet */ }
    return found !== undefined || undefined;
  });
  return found!;
}

/**
 * How a host's monitor measures the guest: its RAM file there, the kernel's System.map and
 * vmlinuz, and the profile facts QMP would give (QEMU's only QMP monitor is the gate's).
 */
function introspection(memory: string, assets: GuestAssets) {
  return {
    memory,
    symbols: assets.systemMap,
    vmlinuz: assets.vmlinuz,
    qemu_version: "7.2",
    cpu: "qemu64",
    smp: 1,
    interval_ms: 1000,
  };
}

/** Waits until the host's monitor recorded every region of the VM `ok`; the statuses. */
async function measuredOk(host: Host, uuid: string): Promise<string[]> {
  let seen: string[] = [];
  await poll(`${host.name}'s monitor to find the guest's kernel ok`, async () => {
    const r = await host.api.call("GET", `/v1/vms/${uuid}/measurements`);
    seen = (r.json.measurements ?? []).map((m: { region: string; status: string }) =>
      `${m.region}:${m.status}`
    );
    return (seen.length > 0 && seen.every((x) => x.endsWith(":ok"))) || undefined;
  }).catch((error) => {
    throw new Error(`${error.message}; last seen: ${seen.join(" ")}`);
  });
  return seen;
}

/** The host's latest decision about the VM for `operation` (events left out). */
async function latest(host: Host, uuid: string, operation: string) {
  const records = await host.api.audit(uuid);
  return records.filter((r) => r.operation === operation && r.result !== "event").at(-1);
}

Deno.test({
  name: "live migration between two libvirt hosts: only to an attested host, the vASP with it",
  async fn(t) {
    const assets = await prepareGuestAssets();
    await using a = await startMigrationHost("host-a", assets.vmlinuz);
    await using b = await startMigrationHost("host-b", assets.vmlinuz);
    let vm!: GuestDomain;
    const migrate = () =>
      a.libvirt.virsh(
        ...["migrate", "--live", "--unsafe", vm.name, b.libvirt.uri],
        ...["--migrateuri", "tcp://127.0.0.1"],
      );
    /** A refused migration: virsh says `reason`, the guest runs on A with its vASP. */
    const refused = async (reason: RegExp) => {
      const r = await migrate();
      assert.notEqual(r.code, 0, "virsh migrate should fail");
      assert.match(r.stderr, reason);
      assert.equal((await a.libvirt.virsh("domstate", vm.name)).stdout.trim(), "running");
      assert.equal((await a.api.binding(vm.uuid))?.sealed, true);
      const q = await a.api.call("GET", `/v1/vms/${vm.uuid}/quote?nonce=${"aa".repeat(16)}`);
      assert.equal(q.status, 200, JSON.stringify(q.json));
    };

    await t.step("a guest runs on host A under vASP", async () => {
      vm = await a.libvirt.defineGuest("mig-e2e");
      await a.api.waitState(vm.uuid, "defined");
      assert.equal((await a.api.call("DELETE", `/v1/vms/${vm.uuid}`)).status, 200);
      const r = await a.api.call("POST", "/v1/vms", {
        uuid: vm.uuid,
        name: vm.name,
        tenant: "acme",
        domain_xml: vm.xml,
      });
      assert.equal(r.status, 201, JSON.stringify(r.json));
      await a.libvirt.virshOk("start", vm.name);
      await a.api.waitState(vm.uuid, "running");
      await a.libvirt.waitGuestInit(vm);
    });

    await t.step("A measures the guest's kernel against references learned from it", async () => {
      const ram = await ramFile(a, vm);
      const learned = await new Deno.Command(Deno.execPath(), {
        args: [
          ...["run", "-A", "src/cli/main.ts", "refs", "learn"],
          ...["--memory", ram, "--symbols", assets.systemMap, "--vmlinuz", assets.vmlinuz],
          ...["--qemu-version", "7.2", "--cpu", "qemu64", "--smp", "1"],
          ...["--references", `${a.stateDir}/references`],
        ],
        cwd: ROOT,
      }).output();
      assert.equal(learned.code, 0, new TextDecoder().decode(learned.stderr));
      const set = await a.api.call("PUT", `/v1/vms/${vm.uuid}/introspection`, {
        ...introspection(ram, assets),
      });
      assert.equal(set.status, 200, JSON.stringify(set.json));
      await measuredOk(a, vm.uuid);
    });

    await t.step(
      "B has no peer to fetch the VM's vASP from: an incoming VM with no state",
      async () => {
        await refused(/no vASP state of VM "mig-e2e" can be fetched: no enrolled peer/);
        assert.equal((await latest(b, vm.uuid, "migrate-in"))?.result, "deny");
      },
    );

    await t.step("A does not know B: the destination is not enrolled", async () => {
      await enrol(b, a);
      await refused(/source host host-a refused: .*not an enrolled peer/);
      const out = await latest(a, vm.uuid, "migrate-out");
      assert.deepEqual([out?.source, out?.result, out?.reasons[0]?.rule], [
        "peer",
        "deny",
        "enrolled",
      ]);
      assert.equal((await latest(b, vm.uuid, "migrate-in"))?.result, "deny");
    });

    await t.step("A enrols B, but B's QEMU is not what B expects: B is refused", async () => {
      await enrol(a, b);
      const original = await Deno.readFile(b.qemu);
      await Deno.writeFile(b.qemu, new Uint8Array([1]), { append: true });
      const tampered = async (want: boolean) =>
        await poll(
          `B's host monitor to see its QEMU ${want ? "changed" : "restored"}`,
          async () => {
            const s = (await b.api.call("GET", "/v1/status")).json;
            const qemu = s.host?.files.find((f: { name: string }) => f.name === "qemu");
            return qemu?.ok === !want || undefined;
          },
        );
      await tampered(true);
      await refused(/destination host-b is not the host it expects to be: .*qemu/);
      assert.equal((await latest(a, vm.uuid, "migrate-out"))?.reasons[0]?.rule, "host");
      await Deno.writeFile(b.qemu, original);
      await tampered(false);
    });

    await t.step("a live migration to the attested B: the VM and its vASP move", async () => {
      const began = performance.now();
      const r = await migrate();
      const seconds = (performance.now() - began) / 1000;
      assert.equal(r.code, 0, r.stderr);
      console.log(`    live migration with vASP: ${seconds.toFixed(1)} s`);
      await b.libvirt.waitState(vm.name, "running");
      await b.api.waitState(vm.uuid, "running");
      // A retires its instance once its QEMU reports the migration completed.
      await poll(
        "A to retire the VM's vASP instance",
        async () => (await a.api.binding(vm.uuid)) === null || undefined,
      );
      const stale = await a.api.call("GET", `/v1/vms/${vm.uuid}/quote?nonce=${"bb".repeat(16)}`);
      assert.equal(stale.status, 409, JSON.stringify(stale.json));
      const out = await latest(a, vm.uuid, "migrate-out");
      assert.equal(out?.result, "allow");
      // B's record came with the VM: its tenant, and an instance bound as on A; A no longer
      // measures it, B does, against the references of its kernel profile that came with it.
      const arrived = (await b.api.call("GET", `/v1/vms/${vm.uuid}`)).json;
      assert.equal(arrived.tenant, "acme");
      assert.notEqual(arrived.binding, null);
      assert.equal((await a.api.call("GET", `/v1/vms/${vm.uuid}`)).json.introspection, null);
      const kept = [...Deno.readDirSync(`${b.stateDir}/references`)].map((e) => e.name);
      assert.equal(kept.length, 1, kept.join(" "));
      const set = await b.api.call("PUT", `/v1/vms/${vm.uuid}/introspection`, {
        ...introspection(await ramFile(b, vm), assets),
      });
      assert.equal(set.status, 200, JSON.stringify(set.json));
      await measuredOk(b, vm.uuid);
      // The tenant's quote now chains to B's ASP, the event log continuing A's.
      const nonce = "cc".repeat(16);
      const q = (await b.api.call("GET", `/v1/vms/${vm.uuid}/quote?nonce=${nonce}`)).json;
      const verified = await verifyQuote(Buffer.from(q.quote, "base64"), {
        chain: readCertificates(new TextEncoder().encode(q.certificates.join(""))),
        root: readCertificates(await Deno.readFile(`${b.stateDir}/manufacturer-ca.pem`))[0]!,
        nonce: Buffer.from(nonce, "hex"),
        now: new Date(),
        vm: { vmUuid: vm.uuid },
        eventLog: q.event_log,
      });
      assert.equal(verified.ok, true, JSON.stringify(verified));
      const log = q.event_log as { reg: number; description: string }[];
      assert.ok(log.some((e) => e.reg === 2 && e.description.startsWith("vboot kernel")));
      assert.ok(log.some((e) => e.reg === 9 && /migrate-in from host-a/.test(e.description)));
      // Register 8: A's measurement before the move, B's after (the first of each host).
      const moved = log.findIndex((e) => e.reg === 9);
      assert.ok(log.slice(0, moved).some((e) => e.reg === 8), "A's measurement in the log");
      await poll("B's measurement in the VM's event log", async () => {
        const now = (await b.api.call("GET", `/v1/vms/${vm.uuid}/quote?nonce=${nonce}`)).json;
        return now.event_log.slice(moved + 1).some((e: { reg: number }) => e.reg === 8) ||
          undefined;
      });
    });

    await t.step("and back to A: its vASP returns, B forgets the transient domain", async () => {
      const r = await b.libvirt.virsh(
        ...["migrate", "--live", "--unsafe", vm.name, a.libvirt.uri],
        ...["--migrateuri", "tcp://127.0.0.1"],
      );
      assert.equal(r.code, 0, r.stderr);
      await a.libvirt.waitState(vm.name, "running");
      await a.api.waitState(vm.uuid, "running");
      assert.equal((await a.api.binding(vm.uuid))?.sealed, true);
      // On B the domain was transient: libvirt's `Stopped Migrated` retires its vASP there, and
      // the record goes with the domain; nothing is destroyed, so the VM may come back.
      await b.api.waitState(vm.uuid, undefined);
      const gone = (await b.api.audit(vm.uuid)).at(-1);
      assert.equal(gone?.operation, "undefine");
      assert.doesNotMatch(gone?.reasons.map((x) => x.message).join(" ") ?? "", /destroyed/);
      const log = (await a.api.call("GET", `/v1/vms/${vm.uuid}/quote?nonce=${"dd".repeat(16)}`))
        .json.event_log as { reg: number; description: string }[];
      assert.deepEqual(
        log.filter((e) => e.reg === 9).map((e) => e.description.split(" (")[0]),
        ["migrate-in from host-a", "migrate-in from host-b"],
      );
      // And to B once more: B takes it, though it had it before.
      const again = await migrate();
      assert.equal(again.code, 0, again.stderr);
      await b.api.waitState(vm.uuid, "running");
    });
  },
});
