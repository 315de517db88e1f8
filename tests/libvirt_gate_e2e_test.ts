/**
 * vASP on a real libvirt host with the QMP gate: libvirtd 9.0 whose domains' `<emulator>` is
 * the vASP wrapper (deploy/qemu/vasp-qemu, configured by `/etc/vasp/qemu-wrapper.conf` in the
 * fixture's namespace), so that every monitor command libvirt sends goes through `vasp gate`,
 * and `vasp serve` following the fixture's libvirt (`--libvirt-uri`) for define and undefine.
 * virsh drives what no libvirt hook sees: suspend and resume, save and restore (descriptors
 * passed through the gate), managed save, a memory dump, internal snapshots and their revert
 * (the wrapper's `--loadvm` ask), raw monitor commands, destroy and undefine.
 *
 * The smuggled command (`{"execute":"query-status","id":[0,0,…,{"execute":"stop"}]}`, 2 MB:
 * more than virsh's argv takes) is fed to the gate by tests/qmp_gate_differential_test.ts.
 */
import assert from "node:assert/strict";
import { startServe } from "./fixtures/serve_process.ts";
import { type GuestDomain, type LibvirtHost, poll, startLibvirt } from "./fixtures/libvirt.ts";
import { prepareGuestAssets } from "./fixtures/guest.ts";
import { type AuditRecord, type OperatorApi, operatorApi } from "./fixtures/operator_api.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const QEMU = "/usr/bin/qemu-system-x86_64";

/** A test-only policy: VM `g-nopause` may not be paused. */
const NO_PAUSE = `id: test-no-pause
description: Test only. One VM that may not be paused.
on: [pause]
effect: deny
rules:
  - name: pausable
    expr: vm.name != "g-nopause"
    message: '"VM " + vm.name + " may not be paused (test policy)"'
`;

/** Waits for an audit record after `from` that satisfies `pred`, and returns it. */
async function waitRecord(
  api: OperatorApi,
  uuid: string,
  from: number,
  what: string,
  pred: (r: AuditRecord) => boolean,
): Promise<AuditRecord> {
  let found: AuditRecord | undefined;
  await poll(what, async () => {
    found = (await api.audit(uuid)).slice(from).find(pred);
    return found !== undefined || undefined;
  }, 60_000).catch(async (error) => {
    const seen = (await api.audit(uuid)).slice(from).map((r) =>
      `${r.source} ${r.operation} ${r.result} ${r.reasons.map((x) => x.message).join("; ")}`
    );
    throw new Error(`${error.message}; records seen:\n${seen.join("\n")}`);
  });
  return found!;
}

const decided = (op: string, result: string) => (r: AuditRecord) =>
  r.source === "qmp-gate" && r.operation === op && r.result === result;
const said = (re: RegExp) => (r: AuditRecord) => r.reasons.some((x) => re.test(x.message));

async function domstate(h: LibvirtHost, name: string): Promise<string> {
  return (await h.virsh("domstate", name)).stdout.trim();
}

Deno.test({
  name: "virsh through the QMP gate on a real libvirtd: suspend, save, dump, snapshots, undefine",
  async fn(t) {
    const began = performance.now();
    const assets = await prepareGuestAssets();
    const stateDir = await Deno.makeTempDir({ prefix: "vasp-gate-serve-" });
    const policies = `${stateDir}-policies`;
    await Deno.mkdir(policies);
    for await (const e of Deno.readDir(`${ROOT}policies`)) {
      // This fixture does not measure the guests (no System.map, no references: see
      // tests/guest_measure_test.ts), and a running VM never measured may not be paused,
      // saved or snapshotted: that policy is left out here.
      if (e.name.startsWith("measurement-freshness.")) continue;
      await Deno.copyFile(`${ROOT}policies/${e.name}`, `${policies}/${e.name}`);
    }
    await Deno.writeTextFile(`${policies}/test-no-pause.yaml`, NO_PAUSE);
    let host: LibvirtHost | undefined;
    let serve: Awaited<ReturnType<typeof startServe>> | undefined;
    let api: OperatorApi | undefined;
    try {
      host = await startLibvirt({ vasp: { socket: `${stateDir}/hook.sock`, gate: true } });
      const h = host;
      serve = await startServe([
        ...["--state-dir", stateDir, "--no-tcp", "--learn-host", "--policies", policies],
        ...["--qemu", QEMU, "--host-kernel", assets.vmlinuz, "--libvirt-uri", h.uri],
      ]);
      if (!serve.output.includes("ready;")) {
        const exit = await serve.failed();
        throw new Error(`vasp serve did not start: ${exit.output}${exit.stderr}`);
      }
      const a = operatorApi(`${stateDir}/vasp.sock`);
      api = a;
      let vm!: GuestDomain;
      let mark = 0;
      const since = async () => mark = (await a.audit(vm.uuid)).length;

      await t.step("define: the server follows libvirt's event and records the VM", async () => {
        vm = await h.defineGuest("g1");
        await a.waitState(vm.uuid, "defined");
        const rec = (await a.audit(vm.uuid)).find((r) => r.operation === "define");
        assert.deepEqual([rec?.source, rec?.result], ["libvirt-events", "allow"]);
        // A tenant's VM (its memory is never exposed): registered again with its tenant.
        assert.equal((await a.call("DELETE", `/v1/vms/${vm.uuid}`)).status, 200);
        const r = await a.call("POST", "/v1/vms", {
          uuid: vm.uuid,
          name: vm.name,
          tenant: "acme",
          domain_xml: vm.xml,
        });
        assert.equal(r.status, 201, JSON.stringify(r.json));
      });

      await t.step("start through the wrapper: the gate decides libvirt's cont", async () => {
        await since();
        await h.virshOk("start", vm.name);
        await a.waitState(vm.uuid, "running");
        const qemuLog = await Deno.readTextFile(`${h.dir}/log/qemu/${vm.name}.log`);
        assert.match(qemuLog, /vasp-qemu/);
        await waitRecord(a, vm.uuid, mark, "the gate's resume (cont)", decided("resume", "allow"));
      });

      await t.step("suspend and resume are decided by the gate", async () => {
        await since();
        await h.virshOk("suspend", vm.name);
        await waitRecord(a, vm.uuid, mark, "pause allowed", decided("pause", "allow"));
        await a.waitState(vm.uuid, "paused");
        assert.equal(await domstate(h, vm.name), "paused");
        await since();
        await h.virshOk("resume", vm.name);
        await waitRecord(a, vm.uuid, mark, "resume allowed", decided("resume", "allow"));
        await a.waitState(vm.uuid, "running");
      });

      await t.step("a raw stop through qemu-monitor-command is decided", async () => {
        await since();
        await h.virshOk("qemu-monitor-command", vm.name, '{"execute":"stop"}');
        await waitRecord(a, vm.uuid, mark, "raw stop decided", decided("pause", "allow"));
        await a.waitState(vm.uuid, "paused");
        await h.virshOk("qemu-monitor-command", vm.name, '{"execute":"cont"}');
        await a.waitState(vm.uuid, "running");
      });

      await t.step("dump --memory-only of a tenant's VM is denied, the VM runs on", async () => {
        await since();
        const r = await h.virsh("dump", "--memory-only", vm.name, `${h.dir}/g1.dump`);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /vASP denied dump-guest-memory/);
        assert.match(r.stderr, /may not be exposed to the host/);
        await waitRecord(a, vm.uuid, mark, "dump denied", decided("save", "deny"));
        await h.waitState(vm.name, "running");
        await a.waitState(vm.uuid, "running");
        await assert.rejects(
          Deno.stat(`${h.dir}/g1.dump`).then((s) => {
            if (s.size === 0) throw new Error("empty");
          }),
        );
      });

      await t.step("save and restore through the gate: sealed at save, imported", async () => {
        const image = `${h.dir}/g1.save`;
        const before = (await a.binding(vm.uuid))?.sealed_counter ?? 0;
        await since();
        await h.virshOk("save", vm.name, image);
        await waitRecord(a, vm.uuid, mark, "save allowed", decided("save", "allow"));
        await a.waitState(vm.uuid, "saved");
        // The vASP state was sealed by the ASP beside the image (a new export counter).
        const sealed = await a.binding(vm.uuid);
        assert.equal(sealed?.sealed, true);
        assert.ok(sealed!.sealed_counter > before, JSON.stringify(sealed));
        assert.equal(await domstate(h, vm.name), "shut off");
        await since();
        await h.virshOk("restore", image);
        await waitRecord(
          a,
          vm.uuid,
          mark,
          "restore allowed",
          (r) => r.operation === "restore" && r.result === "allow",
        );
        await a.waitState(vm.uuid, "running");
        assert.equal(await domstate(h, vm.name), "running");
        // The instance lives on with the imported state: it quotes.
        const quote = await a.call("GET", `/v1/vms/${vm.uuid}/quote?nonce=${"ab".repeat(16)}`);
        assert.equal(quote.status, 200, JSON.stringify(quote.json));
      });

      await t.step("managedsave and start through the gate", async () => {
        await since();
        await h.virshOk("managedsave", vm.name);
        await waitRecord(a, vm.uuid, mark, "save allowed", decided("save", "allow"));
        await a.waitState(vm.uuid, "saved");
        await since();
        await h.virshOk("start", vm.name);
        await waitRecord(
          a,
          vm.uuid,
          mark,
          "restore allowed",
          (r) => r.operation === "restore" && r.result === "allow",
        );
        await a.waitState(vm.uuid, "running");
        assert.equal(await domstate(h, vm.name), "running");
      });

      await t.step("snapshot create seals its own state; revert imports that one", async () => {
        await since();
        await h.virshOk("snapshot-create-as", vm.name, "s1");
        await waitRecord(a, vm.uuid, mark, "snapshot s1 allowed", decided("snapshot", "allow"));
        await waitRecord(a, vm.uuid, mark, "s1 sealed", said(/sealed as snapshot "s1"/));
        await h.virshOk("snapshot-create-as", vm.name, "s2");
        await waitRecord(a, vm.uuid, mark, "s2 sealed", said(/sealed as snapshot "s2"/));
        await since();
        await h.virshOk("snapshot-revert", vm.name, "s1");
        const qemuLog = await Deno.readTextFile(`${h.dir}/log/qemu/${vm.name}.log`);
        assert.match(qemuLog.slice(qemuLog.lastIndexOf("-loadvm")), /-loadvm s1\b/);
        await waitRecord(a, vm.uuid, mark, "revert to s1 imported", said(/snapshot "s1"/));
        await h.waitState(vm.name, "running");
        await a.waitState(vm.uuid, "running");
        const after = (await a.audit(vm.uuid)).slice(mark);
        assert.ok(!after.some(said(/snapshot "s2"/)), "the revert imported s2's state");
        await h.virshOk("snapshot-delete", vm.name, "s2");
        await h.virshOk("snapshot-delete", vm.name, "s1");
      });

      await t.step("destroy is a forced power-off: the vASP instance lives", async () => {
        await since();
        await h.virshOk("destroy", vm.name);
        await a.waitState(vm.uuid, "shut-off");
        const after = (await a.audit(vm.uuid)).slice(mark);
        assert.ok(!after.some((r) => r.operation === "destroy"), JSON.stringify(after));
        const quote = await a.call("GET", `/v1/vms/${vm.uuid}/quote?nonce=${"cd".repeat(16)}`);
        assert.equal(quote.status, 200, JSON.stringify(quote.json));
      });

      await t.step("undefine removes the VM and its vASP instance", async () => {
        await since();
        await h.virshOk("undefine", "--snapshots-metadata", vm.name);
        await a.waitState(vm.uuid, undefined);
        await waitRecord(a, vm.uuid, mark, "undefine audited", (r) => r.operation === "undefine");
      });

      await t.step("suspend denied by a policy fails with vASP's reason, the VM runs", async () => {
        const b = await h.defineGuest("g-nopause");
        await a.waitState(b.uuid, "defined");
        await h.virshOk("start", b.name);
        await a.waitState(b.uuid, "running");
        const from = (await a.audit(b.uuid)).length;
        const r = await h.virsh("suspend", b.name);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /vASP denied stop: .*may not be paused \(test policy\)/);
        await waitRecord(a, b.uuid, from, "pause denied", decided("pause", "deny"));
        assert.equal(await domstate(h, b.name), "running");
        assert.equal(await a.state(b.uuid), "running");
        const raw = await h.virsh("qemu-monitor-command", b.name, '{"execute":"stop"}');
        assert.match(raw.stdout + raw.stderr, /vASP denied stop/);
        assert.equal(await domstate(h, b.name), "running");
        // A QMP quit is a forced power-off too, decided as a shutdown.
        await h.virsh("qemu-monitor-command", b.name, '{"execute":"quit"}');
        await h.waitState(b.name, "shut off");
        await waitRecord(a, b.uuid, from, "quit decided", decided("shutdown", "allow"));
        await a.waitState(b.uuid, "shut-off");
      });
      console.log(`e2e through the gate: ${((performance.now() - began) / 1000).toFixed(1)} s`);
    } finally {
      await host?.close();
      api?.close();
      await serve?.stop();
      await Deno.remove(stateDir, { recursive: true });
      await Deno.remove(policies, { recursive: true });
    }
  },
});
