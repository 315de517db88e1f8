/**
 * Finding 5 of the hardening review: a decision's effects (a vASP instance created, extended,
 * sealed, adopted or destroyed; a quarantine) came before its audit record, so a record that
 * could not be written left an effect with no record (answered 503). The store is made to fail
 * at each step of the real server — the decision's record, the effect's own writes, the record
 * of the effect's failure — and no effect is ever left without a record.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { VaspError } from "../src/engine/mod.ts";
import type { AuditEntry, AuditRecord, Store, VaspBinding } from "../src/store/mod.ts";
import { tempStateDir } from "./fixtures/state_dir.ts";
import { type Answer, startVaspServer, type VaspServer } from "./fixtures/vasp_server.ts";

const VM = "3a7c1e52-9b0d-4f6e-8c21-5d4e3f2a1b0c";
const NONCE = new Uint8Array(16).fill(7);

function domainXml(boot: string): string {
  return `<domain type='kvm'>
  <name>web-1</name>
  <uuid>${VM}</uuid>
  <memory unit='KiB'>262144</memory>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${boot}/vmlinuz</kernel>
    <cmdline>console=ttyS0</cmdline>
  </os>
</domain>
`;
}

/**
 * Makes the store's `method` fail (as a full disk or a failed fsync would) for the calls
 * `when` picks, until the returned function is called.
 */
function failing<K extends "appendAudit" | "updateVm">(
  store: Store,
  method: K,
  when: (...args: Parameters<Store[K]>) => boolean = () => true,
): () => void {
  const original = store[method] as (...args: unknown[]) => Promise<unknown>;
  const replaced = (...args: unknown[]) =>
    when(...args as Parameters<Store[K]>)
      ? Promise.reject(new VaspError("audit_write_failed", `injected: ${method} failed`))
      : original.apply(store, args);
  (store as unknown as Record<string, unknown>)[method] = replaced;
  return () => {
    delete (store as unknown as Record<string, unknown>)[method];
  };
}

function decide(s: VaspServer, operation: string, extra: Record<string, unknown> = {}) {
  return s.call("POST", "/v1/decide", {
    body: { operation, vm: { uuid: VM, name: "web-1" }, source: "api", details: {}, ...extra },
  });
}

async function completed(s: VaspServer, operation: string, extra: Record<string, unknown> = {}) {
  const answer = await s.call("POST", "/v1/events", {
    body: {
      operation,
      vm: { uuid: VM, name: "web-1" },
      source: "api",
      details: {},
      outcome: "completed",
      ...extra,
    },
  });
  assert.equal(answer.status, 200, JSON.stringify(answer.json));
}

function allowed(answer: Answer): Record<string, unknown> {
  assert.equal(answer.status, 200, JSON.stringify(answer.json));
  assert.equal(answer.json.allow, true, JSON.stringify(answer.json.reasons));
  return answer.json.vasp ?? {};
}

async function records(s: VaspServer): Promise<AuditRecord[]> {
  return (await s.server.store.queryAudit({ limit: 1000 })).records;
}

/** What the VM's instance and binding are now: the state an effect would change. */
async function snapshot(s: VaspServer) {
  const vm = await s.server.store.getVm(VM);
  const quote = await s.server.vasp.quote(VM, NONCE, {}).catch((e) => e.code as string);
  return {
    state: vm?.state,
    binding: vm?.binding
      ? {
        instanceId: vm.binding.instanceId,
        sealedCounter: vm.binding.sealedCounter,
      }
      : null,
    live: typeof quote === "string" ? quote : `${quote.instanceId}/${quote.eventLog.length}`,
  };
}

async function measured(s: VaspServer, status: "ok" | "differs"): Promise<void> {
  await s.server.store.recordMeasurements(
    VM,
    ["kernel_text", "sys_call_table"].map((region) => ({
      region,
      digest: (status === "ok" ? "11" : "22").repeat(32),
      reference: "11".repeat(32),
      status,
      time: new Date(),
    })),
  );
}

Deno.test("no decision leaves an effect without its record, whichever store write fails", async (t) => {
  await using dir = await tempStateDir();
  const boot = join(dir.path, "boot");
  await Deno.mkdir(boot);
  await Deno.writeFile(join(boot, "vmlinuz"), crypto.getRandomValues(new Uint8Array(4096)));
  const xml = domainXml(boot);
  const startDetails = { domain_xml_b64: Buffer.from(xml).toString("base64") };
  await using s = await startVaspServer(dir.path);
  const store = s.server.store;
  const registered = await s.call("POST", "/v1/vms", {
    body: { uuid: VM, name: "web-1", tenant: "acme", domain_xml: xml },
  });
  assert.equal(registered.status, 201, JSON.stringify(registered.json));

  /** Runs a decision with every append failing: 503, no record, nothing changed. */
  async function unrecorded(operation: string, extra: Record<string, unknown> = {}) {
    const before = await snapshot(s);
    const count = (await records(s)).length;
    const heal = failing(store, "appendAudit");
    let answer: Answer;
    try {
      answer = await decide(s, operation, extra);
    } finally {
      heal();
    }
    assert.equal(answer.status, 503, JSON.stringify(answer.json));
    assert.equal(answer.json.code, "audit_write_failed");
    assert.equal((await records(s)).length, count, "nothing was recorded");
    assert.deepEqual(await snapshot(s), before, "and nothing was done");
  }

  await t.step("a start whose record cannot be written extends nothing (vBoot)", async () => {
    await unrecorded("start", { phase: "prepare", details: startDetails });
    const done = allowed(await decide(s, "start", { phase: "prepare", details: startDetails }));
    assert.equal(done.vboot, 3);
    await completed(s, "start", { phase: "started" });
  });

  let saved: VaspBinding | undefined;
  await t.step("a save whose record cannot be written seals nothing", async () => {
    await measured(s, "ok");
    await unrecorded("save");
    allowed(await decide(s, "save"));
    saved = (await store.getVm(VM))!.binding!;
    await completed(s, "save");
  });

  await t.step("a restore whose record cannot be written adopts nothing", async () => {
    await unrecorded("restore", { phase: "begin" });
    // The import prepared for it was dropped: the same sealed state still imports.
    assert.equal(allowed(await decide(s, "restore", { phase: "begin" })).imported, true);
    await completed(s, "restore");
  });

  await t.step("a quarantine whose record cannot be written moves nothing", async () => {
    assert.equal((await store.getVm(VM))?.state, "running");
    await measured(s, "differs");
    await unrecorded("measurement");
    assert.equal((await store.getVm(VM))?.state, "running");
    const answer = await decide(s, "measurement");
    assert.equal(answer.json.allow, false);
    assert.equal(answer.json.state, "quarantined");
    await store.updateVm(VM, { state: "running" });
    await measured(s, "ok");
  });

  await t.step(
    "an effect that fails after its record leaves a second record saying so",
    async () => {
      const count = (await records(s)).length;
      const counter = (await store.getVm(VM))!.binding!.sealedCounter;
      // The save's own write of the new sealed state fails; its record was written before.
      const heal = failing(store, "updateVm", (_uuid, patch) => patch.binding !== undefined);
      let answer: Answer;
      try {
        answer = await decide(s, "save");
      } finally {
        heal();
      }
      assert.equal(answer.status, 503, JSON.stringify(answer.json));
      const id = answer.json.decision_id as string;
      const added = (await records(s)).slice(count);
      assert.deepEqual(added.map((r) => [r.decisionId, r.result]), [
        [id, "allow"],
        [`${id}.effect`, "error"],
      ]);
      assert.match(
        (added[1]!.reasons[0] as { message: string }).message,
        new RegExp(`^decision ${id} was recorded, but carrying it out failed: injected`),
      );
      assert.equal((await store.getVm(VM))!.binding!.sealedCounter, counter);
    },
  );

  await t.step(
    "when the effect's failure cannot be recorded either, the decision's record stands",
    async () => {
      const count = (await records(s)).length;
      const healUpdate = failing(store, "updateVm", (_uuid, patch) => patch.binding !== undefined);
      const healAppend = failing(
        store,
        "appendAudit",
        (entry: AuditEntry) => entry.decisionId.endsWith(".effect"),
      );
      let answer: Answer;
      try {
        answer = await decide(s, "save");
      } finally {
        healUpdate();
        healAppend();
      }
      assert.equal(answer.status, 503);
      const added = (await records(s)).slice(count);
      assert.deepEqual(added.map((r) => [r.decisionId, r.result]), [
        [answer.json.decision_id, "allow"],
      ]);
    },
  );

  await t.step("a destroy whose record cannot be written destroys nothing", async () => {
    await unrecorded("destroy", { source: "operator" });
    assert.ok(saved);
    const destroyed = allowed(await decide(s, "destroy", { source: "operator" }));
    assert.equal(destroyed.destroyed, true);
    assert.equal((await store.getVm(VM))?.binding, null);
  });

  await t.step("a define whose record cannot be written creates no instance", async () => {
    const OTHER = "7b2d4f61-0a3c-4e5d-9f80-1b2c3d4e5f60";
    const define = (s: VaspServer) =>
      s.call("POST", "/v1/decide", {
        body: {
          operation: "define",
          vm: { uuid: OTHER, name: "db-1" },
          source: "api",
          details: {
            domain_xml_b64: Buffer.from(xml.replaceAll(VM, OTHER).replace("web-1", "db-1"))
              .toString("base64"),
          },
        },
      });
    const heal = failing(store, "appendAudit");
    let answer: Answer;
    try {
      answer = await define(s);
    } finally {
      heal();
    }
    assert.equal(answer.status, 503, JSON.stringify(answer.json));
    assert.equal(await store.getVm(OTHER), undefined);
    assert.equal(s.server.vasp.instances.status(OTHER), undefined);
    const created = await define(s);
    assert.equal(created.status, 200, JSON.stringify(created.json));
    if (created.json.allow) assert.equal(created.json.vasp?.created, true);
  });

  const verified = await store.verifyAudit();
  assert.equal(verified.ok, true, verified.problem?.message);
});
