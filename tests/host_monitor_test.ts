import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { HOST_REGISTERS } from "../src/host/mod.ts";
import { tempStateDir } from "./fixtures/state_dir.ts";
import { startVaspServer } from "./fixtures/vasp_server.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const VM = { uuid: "7d3c2b1a-0f9e-4d8c-8b7a-6a5b4c3d2e1f", name: "web-7" };

/** A start as the libvirt hook asks for it. */
const start = { operation: "start", vm: VM, source: "api", phase: "prepare", details: {} };

Deno.test("the host is measured continuously: a QEMU binary changed under a running server denies the next start, naming it", async (t) => {
  await using dir = await tempStateDir();
  const qemu = join(dir.path, "qemu-system-x86_64");
  await Deno.writeTextFile(qemu, "QEMU 7.2, as installed\n");
  await Deno.writeTextFile(join(dir.path, "vmlinuz"), "a stand-in host kernel image\n");
  await Deno.mkdir(join(dir.path, "state"));
  await using s = await startVaspServer(join(dir.path, "state"), {
    host: { kernel: join(dir.path, "vmlinuz"), qemu, intervalMs: 3_600_000 },
  });
  const host = s.server.host;
  await t.step("as learned, the host matches and the start passes host-integrity", async () => {
    host.learn();
    const answer = await s.call("POST", "/v1/decide", { body: start });
    const host_reasons = answer.json.reasons.filter((r: { policy: string }) =>
      r.policy === "host-integrity"
    );
    assert.deepEqual(host_reasons, []);
  });
  await t.step(
    "QEMU replaced while serving: extended again, recorded, and the start denied",
    async () => {
      const before = s.server.asp.read(HOST_REGISTERS.qemu);
      await Deno.writeTextFile(qemu, "QEMU with a backdoor\n");
      // The file watch may see it first; either way it is measured once, by then.
      await host.remeasure("test");
      assert.notDeepEqual(s.server.asp.read(HOST_REGISTERS.qemu), before, "extended again");
      const log = s.server.asp.eventLog().filter((e) => e.reg === HOST_REGISTERS.qemu);
      // A watch may have caught the file half-written once: the last entry is what it is now.
      assert.ok(log.length >= 2, "one entry at start, one for the change");
      assert.equal(log.at(-1)!.sha256, sha256("QEMU with a backdoor\n"));
      const answer = await s.call("POST", "/v1/decide", { body: start });
      assert.equal(answer.json.allow, false);
      const why = answer.json.reasons.find((r: { rule: string }) => r.rule === "files-match");
      assert.match(why.message, /qemu/);
      const records = (await s.server.store.queryAudit({ order: "desc", limit: 5 })).records;
      const change = records.find((r) => r.operation === "host-change");
      assert.ok(change, "the change is in the audit log");
      assert.match(change.reasons[0].message, /qemu sha256:[0-9a-f]{64} → sha256:[0-9a-f]{64}/);
    },
  );
  await t.step("the operator records the new host as expected without a restart", async () => {
    host.learn();
    const answer = await s.call("POST", "/v1/decide", { body: start });
    assert.ok(!answer.json.reasons.some((r: { policy: string }) => r.policy === "host-integrity"));
  });
  await t.step(
    "an unchanged host is only re-dated: nothing extended, freshness renewed",
    async () => {
      const entries = s.server.asp.eventLog().length;
      const before = host.state().measuredAt;
      await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(await host.remeasure("test"), []);
      assert.equal(s.server.asp.eventLog().length, entries);
      assert.ok(host.state().measuredAt > before);
    },
  );
});

Deno.test("every policy reload is measured: the policy set in force is extended with its revision", async () => {
  await using dir = await tempStateDir();
  const policies = join(dir.path, "policies");
  await Deno.mkdir(policies);
  for await (const entry of Deno.readDir(join(ROOT, "policies"))) {
    await Deno.copyFile(join(ROOT, "policies", entry.name), join(policies, entry.name));
  }
  await Deno.mkdir(join(dir.path, "state"));
  await using s = await startVaspServer(join(dir.path, "state"), {
    policies: { dir: policies },
  });
  const first = s.server.policyStore.current().revision;
  const measured = () =>
    s.server.asp.eventLog().filter((e) => e.reg === HOST_REGISTERS.policies).map((e) =>
      e.description
    );
  assert.deepEqual(measured(), [`policy set in force: ${first}`]);
  await Deno.writeTextFile(join(policies, "set.yaml"), "\n# a comment changes the set\n", {
    append: true,
  });
  const reloaded = await s.call("POST", "/v1/policies/reload");
  assert.equal(reloaded.status, 200, JSON.stringify(reloaded.json));
  const second = s.server.policyStore.current().revision;
  assert.notEqual(second, first);
  // The reload's measurement runs after its answer: wait for it (bounded).
  for (let i = 0; i < 300 && measured().length < 2; i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.deepEqual(measured(), [
    `policy set in force: ${first}`,
    `policy set in force: ${second}`,
  ]);
});
