/**
 * Internal snapshots in the real server (native ASP, SQLite store, the default policies): each
 * snapshot keeps its own sealed vASP state by name, a revert imports that snapshot's state —
 * from the gate (`snapshot-load`, `loadvm`) or from the wrapper before QEMU starts with
 * `-loadvm` — a deleted snapshot's state is dropped and unregistered, and a replayed one is
 * refused as a rollback, after a restart too.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { type SnapshotState, SqliteStore, type VaspBinding } from "../src/store/mod.ts";
import { tempStateDir } from "./fixtures/state_dir.ts";
import { type Answer, startVaspServer, type VaspServer } from "./fixtures/vasp_server.ts";
import {
  allowed,
  attested,
  bootFiles,
  completed,
  decide,
  domainXml,
  measuredClean,
} from "./fixtures/vasp_vm.ts";

const VM = { uuid: "6f1c2a9e-3b4d-4c5e-8f70-1a2b3c4d5e6f", name: "web-1" };

type Reason = { policy: string; rule: string; message: string; effect?: string };

/** Registers the VM with its domain XML and starts it (vBoot); returns the XML. */
async function registeredAndStarted(s: VaspServer, stateDir: string): Promise<string> {
  const boot = join(stateDir, "boot");
  await bootFiles(boot);
  const xml = domainXml(VM, boot);
  const answer = await s.call("POST", "/v1/vms", {
    body: { uuid: VM.uuid, name: VM.name, tenant: "acme", domain_xml: xml },
  });
  assert.equal(answer.status, 201, JSON.stringify(answer.json));
  const details = { domain_xml_b64: Buffer.from(xml).toString("base64") };
  assert.equal(allowed(await decide(s, VM, "start", { phase: "prepare", details })).vboot, 6);
  await completed(s, VM, "start", { phase: "started" });
  return xml;
}

/** A runtime measurement extended into register 8, as the measurement monitor does. */
async function measured(s: VaspServer, text: string): Promise<void> {
  await s.server.vasp.extend(VM.uuid, [{
    reg: 8,
    data: new TextEncoder().encode(text),
    description: `runtime measurement ${text}`,
  }]);
}

/** The gate's `snapshot-save`, `snapshot-load`, `snapshot-delete` of a named snapshot. */
function snapshot(s: VaspServer, action: string, name?: string): Promise<Answer> {
  const details = { command: `snapshot-${action}`, action, ...(name ? { snapshot: name } : {}) };
  return decide(s, VM, "snapshot", { source: "qmp-gate", details });
}

function denied(answer: Answer): Reason[] {
  assert.equal(answer.status, 200, JSON.stringify(answer.json));
  assert.equal(answer.json.allow, false, JSON.stringify(answer.json));
  return answer.json.reasons;
}

function vaspReason(reasons: Reason[], rule: string): Reason | undefined {
  return reasons.find((r) => r.policy === "vasp.instance" && r.rule === rule);
}

async function kept(s: VaspServer): Promise<Record<string, number>> {
  const list = await s.server.store.listSnapshots(VM.uuid);
  return Object.fromEntries(list.map((x) => [x.name, x.sealedCounter]));
}

Deno.test("each internal snapshot keeps its own sealed vASP state: a revert imports that snapshot's registers, and a deleted snapshot's revert is refused", async (t) => {
  await using dir = await tempStateDir();
  await using s = await startVaspServer(dir.path);
  const xml = await registeredAndStarted(s, dir.path);
  await measuredClean(s, VM);
  let atA: Awaited<ReturnType<typeof attested>>;
  let atB: Awaited<ReturnType<typeof attested>>;

  await t.step("snapshot A seals the instance under its name and as the newest state", async () => {
    await measured(s, "kernel before A");
    atA = await attested(s, VM, dir.path);
    const done = allowed(await snapshot(s, "save", "A"));
    assert.equal(done.snapshot, "A");
    assert.equal(done.instance_id, atA.instanceId);
    assert.deepEqual(await kept(s), { A: done.counter });
    assert.equal((await s.server.store.getVm(VM.uuid))?.binding?.sealedCounter, done.counter);
  });

  await t.step("snapshot B, taken after more measurements, keeps its own state", async () => {
    await measured(s, "kernel before B");
    atB = await attested(s, VM, dir.path);
    assert.notEqual(atB.registers[8], atA.registers[8]);
    const done = allowed(await snapshot(s, "save", "B"));
    assert.equal(done.snapshot, "B");
    assert.deepEqual(Object.keys(await kept(s)), ["A", "B"]);
    await measured(s, "kernel after B");
    const now = await attested(s, VM, dir.path);
    assert.notEqual(now.registers[8], atB.registers[8]);
  });

  await t.step("a revert to A (snapshot-load) imports A's registers and event log", async () => {
    const done = allowed(await snapshot(s, "load", "A"));
    assert.equal(done.imported, true);
    assert.equal(done.snapshot, "A");
    const now = await attested(s, VM, dir.path);
    assert.deepEqual(now.registers, atA.registers);
    assert.equal(now.entries, atA.entries);
    assert.equal(now.instanceId, atA.instanceId);
  });

  await t.step("a revert to B (restore with action load, as loadvm) imports B's", async () => {
    const done = allowed(
      await decide(s, VM, "restore", {
        source: "qmp-gate",
        details: {
          command: "human-monitor-command",
          hmp: "loadvm B",
          action: "load",
          snapshot: "B",
        },
      }),
    );
    assert.equal(done.snapshot, "B");
    assert.deepEqual((await attested(s, VM, dir.path)).registers, atB.registers);
  });

  await t.step(
    "libvirt's revert of a shut-off VM: the hook's prepare, then the wrapper's start with details.snapshot imports A",
    async () => {
      await completed(s, VM, "shutdown");
      const details = { domain_xml_b64: Buffer.from(xml).toString("base64") };
      allowed(await decide(s, VM, "start", { phase: "prepare", details }));
      const done = allowed(
        await decide(s, VM, "start", { source: "qmp-gate", details: { snapshot: "A" } }),
      );
      assert.equal(done.imported, true);
      assert.equal(done.snapshot, "A");
      assert.equal(done.vboot, undefined, "a revert boots nothing");
      await completed(s, VM, "start", { phase: "started" });
      assert.deepEqual((await attested(s, VM, dir.path)).registers, atA.registers);
      await measuredClean(s, VM);
    },
  );

  await t.step("deleting A drops its sealed state; a revert to A is then refused", async () => {
    const before = (await s.server.store.getVm(VM.uuid))!.binding!.sealedCounter;
    const done = allowed(await snapshot(s, "delete", "A"));
    assert.equal(done.dropped, true);
    assert.equal(done.snapshot, "A");
    // Sealed again: the deleted snapshot's blob, were it the newest, no longer is.
    assert.ok((done.counter as number) > before);
    assert.deepEqual(Object.keys(await kept(s)), ["B"]);
    const reasons = denied(await snapshot(s, "load", "A"));
    assert.deepEqual(vaspReason(reasons, "import"), {
      policy: "vasp.instance",
      rule: "import",
      message: 'no sealed vASP state for snapshot "A" of VM "web-1"',
      effect: "deny",
    });
    // The wrapper's revert before -loadvm A is refused the same way.
    await completed(s, VM, "shutdown");
    const start = denied(await decide(s, VM, "start", { details: { snapshot: "A" } }));
    assert.match(vaspReason(start, "import")!.message, /no sealed vASP state for snapshot "A"/);
    assert.ok(start.some((r) => r.policy === "vasp-binding" && r.rule === "usable"));
    // B is untouched.
    assert.equal(
      allowed(await decide(s, VM, "start", { details: { snapshot: "B" } })).snapshot,
      "B",
    );
    await completed(s, VM, "start", { phase: "started" });
    assert.deepEqual((await attested(s, VM, dir.path)).registers, atB.registers);
  });

  await t.step("a snapshot or revert that names no snapshot is refused", async () => {
    await measuredClean(s, VM);
    const save = denied(await snapshot(s, "save"));
    assert.match(vaspReason(save, "seal")!.message, /names none \(details\.snapshot\)/);
    const load = denied(await snapshot(s, "load"));
    assert.match(vaspReason(load, "import")!.message, /names none \(details\.snapshot\)/);
    const bad = await snapshot(s, "rename", "A");
    assert.equal(bad.json.code, "event_invalid", JSON.stringify(bad.json));
    const control = await decide(s, VM, "snapshot", { details: { snapshot: "a\nb" } });
    assert.equal(control.json.code, "event_invalid", JSON.stringify(control.json));
  });

  await t.step(
    "the audit records name the snapshot sealed, imported, dropped or refused",
    async () => {
      const { records } = await s.server.store.queryAudit({ vmUuid: VM.uuid, limit: 1000 });
      const notes = records.flatMap((r) =>
        r.reasons.filter((x) => x.policy === "vasp.instance").map((x) => `${r.result} ${x.message}`)
      );
      for (
        const expected of [
          /^allow the vASP state of VM "web-1" is sealed as snapshot "A"/,
          /^allow the vASP state of VM "web-1" is sealed as snapshot "B"/,
          /^allow VM "web-1" is reverted to snapshot "A": its sealed vASP state is imported/,
          /^allow VM "web-1" is reverted to snapshot "B"/,
          /^allow the sealed vASP state of snapshot "A" of VM "web-1" is dropped/,
          /^deny no sealed vASP state for snapshot "A" of VM "web-1"$/,
        ]
      ) assert.ok(notes.some((n) => expected.test(n)), `${expected} in\n${notes.join("\n")}`);
    },
  );

  await t.step("destroying the VM drops every snapshot's sealed state", async () => {
    allowed(await decide(s, VM, "destroy", { source: "operator" }));
    assert.deepEqual(await kept(s), {});
  });
});

Deno.test("snapshots' sealed states survive a restart, a deleted snapshot's state put back into the store is refused as a rollback, and a VM whose binding was rolled back reverts to a kept snapshot", async () => {
  await using dir = await tempStateDir();
  let deleted: SnapshotState | undefined;
  let first: VaspBinding | undefined;
  let atB;
  {
    await using s = await startVaspServer(dir.path);
    await registeredAndStarted(s, dir.path);
    first = (await s.server.store.getVm(VM.uuid))!.binding!;
    await measuredClean(s, VM);
    await measured(s, "kernel before A");
    allowed(await snapshot(s, "save", "A"));
    deleted = (await s.server.store.listSnapshots(VM.uuid))[0];
    await measured(s, "kernel before B");
    atB = await attested(s, VM, dir.path);
    allowed(await snapshot(s, "save", "B"));
    // Taken again under the same name: the first A is unregistered, the new one kept.
    allowed(await snapshot(s, "save", "A"));
    const replaced = deleted!;
    assert.throws(
      () =>
        s.server.vasp.instances.importPending(VM.uuid, replaced.sealedState, { snapshot: true }),
      { code: "rollback_refused" },
    );
    deleted = (await s.server.store.listSnapshots(VM.uuid)).find((x) => x.name === "A");
    allowed(await snapshot(s, "delete", "A"));
  }
  {
    // While the server is down, the deleted snapshot's row is put back, and the binding is
    // rolled back to an old sealed state.
    await using store = SqliteStore.openIn(dir.path);
    await store.keepSnapshot(VM.uuid, deleted!);
    await store.updateVm(VM.uuid, { binding: first! });
  }
  await using s = await startVaspServer(dir.path);
  await measuredClean(s, VM);
  assert.ok(s.logged.some((l) => /VM "web-1" has no vASP instance: .*rollback_refused/.test(l)));
  const quote = await s.call("GET", `/v1/vms/${VM.uuid}/quote?nonce=${"ab".repeat(16)}`);
  assert.equal(quote.json.code, "vasp_instance_unavailable");
  const reasons = denied(await snapshot(s, "load", "A"));
  assert.match(
    vaspReason(reasons, "import")?.message ?? JSON.stringify(reasons),
    /^the sealed vASP state of snapshot "A" was refused: .*\[rollback_refused\]$/,
  );
  assert.ok(reasons.some((r) => r.policy === "sealed-state" && r.rule === "sealed"));
  // A registered snapshot imports: the VM has a live instance again, B's.
  assert.equal(allowed(await snapshot(s, "load", "B")).snapshot, "B");
  assert.deepEqual((await attested(s, VM, dir.path)).registers, atB!.registers);
});
