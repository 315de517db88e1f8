import assert from "node:assert/strict";
import { SqliteStore } from "../src/store/mod.ts";
import { event, openTestApp, VM_A, VM_B } from "./fixtures/http_app.ts";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function register(
  t: Awaited<ReturnType<typeof openTestApp>>,
  vm: Record<string, unknown>,
) {
  const res = await t.call("POST", "/v1/vms", { body: vm });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

Deno.test("POST /v1/decide allows an approved start and denies an unapproved one, with reasons from the policy set", async () => {
  await using t = await openTestApp();
  await register(t, { uuid: VM_A, name: "web-1", labels: { approved: "yes" } });
  await register(t, { uuid: VM_B, name: "web-2" });

  const allowed = await t.call("POST", "/v1/decide", { body: event("start") });
  assert.equal(allowed.status, 200, allowed.text);
  assert.match(allowed.json.decision_id, UUID_V7);
  assert.equal(allowed.json.allow, true);
  assert.deepEqual(allowed.json.reasons, []);
  assert.equal(allowed.json.policy_revision, t.policyStore.current().revision);
  assert.deepEqual(allowed.json.transition, { from: "defined", to: "running" });
  assert.equal(allowed.json.state, "defined", "a decision does not move the state");

  const denied = await t.call("POST", "/v1/decide", {
    body: event("start", { vm: { uuid: VM_B, name: "web-2" } }),
  });
  assert.equal(denied.status, 200);
  assert.equal(denied.json.allow, false);
  assert.deepEqual(denied.json.reasons, [{
    policy: "start-approval",
    rule: "approved",
    message: "VM web-2 is not approved",
    effect: "deny",
  }]);
  assert.deepEqual(denied.json.actions, ["alert"]);
  assert.ok(denied.json.decision_id > allowed.json.decision_id, "IDs sort by time");
});

Deno.test("POST /v1/decide denies an operation the life cycle does not have, and an unknown VM no policy covers", async () => {
  await using t = await openTestApp();
  await register(t, { uuid: VM_A, name: "web-1", state: "quarantined" });
  const resume = await t.call("POST", "/v1/decide", { body: event("resume") });
  assert.equal(resume.json.allow, false);
  assert.equal(resume.json.reasons[0].policy, "vasp.lifecycle");
  assert.match(resume.json.reasons[0].message, /no resume from state quarantined/);

  const unknown = await t.call("POST", "/v1/decide", {
    body: event("save", { vm: { uuid: VM_B, name: "ghost" } }),
  });
  assert.equal(unknown.json.allow, false);
  assert.equal(unknown.json.state, null);
});

Deno.test("a decision's audit record is durable before the answer: a fresh store on the same file finds it", async () => {
  await using t = await openTestApp();
  await register(t, { uuid: VM_A, name: "web-1", labels: { approved: "yes" } });
  const answers = await Promise.all(
    Array.from({ length: 8 }, () => t.call("POST", "/v1/decide", { body: event("start") })),
  );
  // No await between the answers and this read: the records must already be on disk.
  using reader = SqliteStore.openIn(t.stateDir, { readOnly: true });
  const page = await reader.queryAudit({ vmUuid: VM_A, result: "allow" });
  const ids = page.records.map((r) => r.decisionId);
  for (const a of answers) assert.ok(ids.includes(a.json.decision_id), a.json.decision_id);
  const record = page.records.find((r) => r.decisionId === answers[0].json.decision_id)!;
  assert.equal(record.operation, "start");
  assert.equal(record.source, "libvirt-hook");
  assert.equal(record.policyRevision, t.policyStore.current().revision);
  assert.match(record.inputDigest, /^[0-9a-f]{64}$/);
  assert.ok(Number.isInteger(record.engineLatencyUs) && record.engineLatencyUs >= 0);
  assert.equal((await reader.verifyAudit()).ok, true);
});

Deno.test("a dirty measurement quarantines the VM, and a resume is then denied until an operator releases it", async () => {
  await using t = await openTestApp();
  await register(t, { uuid: VM_A, name: "web-1", state: "running" });
  const clean = await t.call("POST", "/v1/decide", {
    body: event("measurement", { source: "monitor", details: { clean: true } }),
  });
  assert.equal(clean.json.allow, true);
  assert.equal(clean.json.state, "running");

  const dirty = await t.call("POST", "/v1/decide", {
    body: event("measurement", { source: "monitor", details: { clean: false } }),
  });
  assert.equal(dirty.json.allow, false);
  assert.deepEqual(dirty.json.actions, ["alert", "quarantine"]);
  assert.equal(dirty.json.state, "quarantined");
  assert.equal((await t.store.getVm(VM_A))!.state, "quarantined");

  const resume = await t.call("POST", "/v1/decide", { body: event("resume") });
  assert.equal(resume.json.allow, false);

  const released = await t.call("POST", `/v1/vms/${VM_A}/release`);
  assert.equal(released.status, 200, released.text);
  assert.equal(released.json.state, "paused");
  assert.equal((await t.call("POST", "/v1/decide", { body: event("resume") })).json.allow, true);
  const again = await t.call("POST", `/v1/vms/${VM_A}/release`);
  assert.equal(again.status, 409);
  assert.equal(again.json.code, "transition_invalid");
  const ops = (await t.store.queryAudit({ vmUuid: VM_A, result: "event" })).records
    .map((r) => r.operation);
  assert.deepEqual(ops, ["register", "release-quarantine"]);
});

Deno.test("POST /v1/events moves the recorded state, and a resume of a quarantined VM is recorded as unexpected without leaving quarantine", async () => {
  await using t = await openTestApp();
  await register(t, { uuid: VM_A, name: "web-1", labels: { approved: "yes" } });
  const report = (operation: string, outcome: string, extra: Record<string, unknown> = {}) =>
    t.call("POST", "/v1/events", { body: { ...event(operation, extra), outcome } });

  const started = await report("start", "completed");
  assert.equal(started.status, 200, started.text);
  assert.match(started.json.event_id, UUID_V7);
  assert.deepEqual([started.json.from, started.json.state], ["defined", "running"]);

  const failed = await report("pause", "failed", { source: "qmp-gate" });
  assert.deepEqual([failed.json.state, failed.json.applied], ["running", false]);
  const paused = await report("pause", "completed", { source: "qmp-gate" });
  assert.equal(paused.json.state, "paused");

  await t.store.updateVm(VM_A, { state: "quarantined" });
  const bypass = await report("resume", "completed", { source: "qmp-gate" });
  assert.deepEqual(
    [bypass.json.state, bypass.json.applied, bypass.json.expected],
    ["quarantined", false, false],
  );

  const records = (await t.store.queryAudit({ vmUuid: VM_A, result: "event" })).records;
  const last = records.at(-1)!;
  assert.equal(last.decisionId, bypass.json.event_id);
  assert.equal(last.reasons[0].policy, "vasp.event");
  assert.equal((last.reasons[0] as { expected?: unknown }).expected, false);
  assert.match(last.reasons[0].message, /unexpected/);
});

Deno.test("a completed start of a VM vASP does not know registers it, so that its later pause exists", async () => {
  await using t = await openTestApp();
  const body = {
    ...event("start", { vm: { uuid: VM_B, name: "transient" } }),
    outcome: "completed",
  };
  const started = await t.call("POST", "/v1/events", { body });
  assert.deepEqual([started.json.from, started.json.state], ["unknown", "running"]);
  const vm = await t.store.getVm(VM_B);
  assert.deepEqual([vm?.name, vm?.tenant, vm?.state], ["transient", "", "running"]);
  const pause = await t.call("POST", "/v1/decide", {
    body: event("pause", { vm: { uuid: VM_B, name: "transient" }, source: "qmp-gate" }),
  });
  assert.equal(pause.json.allow, true);
});

Deno.test("every failed decision still answers with its decision ID and leaves an error record", async (t) => {
  await using app = await openTestApp();
  const cases: [string, unknown, number, string][] = [
    ["malformed JSON", '{"operation": "start", ', 400, "json_invalid"],
    ["an unknown operation", event("teleport"), 400, "event_invalid"],
    ["a wrong type", event("start", { vm: { uuid: 42, name: "x" } }), 400, "event_invalid"],
  ];
  for (const [what, body, status, code] of cases) {
    await t.step(what, async () => {
      const res = await app.call("POST", "/v1/decide", { body });
      assert.equal(res.status, status, res.text);
      assert.equal(res.json.code, code);
      assert.match(res.json.decision_id, UUID_V7);
      const { records } = await app.store.queryAudit({ result: "error", order: "desc", limit: 1 });
      assert.equal(records[0]?.decisionId, res.json.decision_id);
      assert.equal(records[0].reasons[0].rule, code);
    });
  }
  await t.step("the error record keeps what could be read of the input", async () => {
    const res = await app.call("POST", "/v1/decide", { body: event("teleport") });
    const { records } = await app.store.queryAudit({ result: "error", order: "desc", limit: 1 });
    assert.equal(records[0].decisionId, res.json.decision_id);
    assert.equal(records[0].operation, "teleport");
    assert.equal(records[0].vm.uuid, VM_A);
  });
});

Deno.test("an internal failure answers 500 internal_error without leaking its message, and is recorded", async () => {
  await using t = await openTestApp();
  // A fault inside the server: the policy store itself throws.
  (t.policyStore as { current: () => unknown }).current = () => {
    throw new Error("secret detail at /internal/path.ts:12");
  };
  const res = await t.call("POST", "/v1/decide", { body: event("start") });
  assert.equal(res.status, 500);
  assert.equal(res.json.code, "internal_error");
  assert.doesNotMatch(res.text, /secret|internal\/path|at /);
  assert.match(res.json.decision_id, UUID_V7);
  assert.ok(t.logged.some((l) => l.includes("secret detail") && l.includes(res.json.decision_id)));
  const { records } = await t.store.queryAudit({ result: "error" });
  assert.equal(records.length, 1);
  assert.equal(records[0].decisionId, res.json.decision_id);
  assert.doesNotMatch(records[0].reasons[0].message, /secret/);
});

Deno.test("when the store cannot keep the record, the answer is 503 with the decision ID: fail closed", async () => {
  await using t = await openTestApp();
  await t.store.close();
  const res = await t.call("POST", "/v1/decide", { body: event("start") });
  assert.equal(res.status, 503, res.text);
  assert.equal(res.json.code, "store_closed");
  assert.match(res.json.decision_id, UUID_V7);
  const events = await t.call("POST", "/v1/events", {
    body: { ...event("start"), outcome: "completed" },
  });
  assert.equal(events.status, 503);
  assert.match(events.json.decision_id, UUID_V7);
  const ready = await t.call("GET", "/readyz");
  assert.equal(ready.status, 503);
  assert.equal(ready.json.checks.store, false);
});
