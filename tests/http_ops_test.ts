import assert from "node:assert/strict";
import { join } from "node:path";
import { openApiDocument } from "../src/http/mod.ts";
import { event, openTestApp, VM_A, VM_B } from "./fixtures/http_app.ts";

/** Parses Prometheus text exposition strictly: every line a comment or a sample. */
function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  assert.ok(text.endsWith("\n"));
  for (const line of text.trimEnd().split("\n")) {
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/
      .exec(line);
    if (type) {
      assert.ok(!types.has(type[1]), `TYPE twice for ${type[1]}`);
      types.set(type[1], type[2]);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+$/.test(line)) continue;
    const sample =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (\S+)$/
        .exec(line);
    assert.ok(sample, `not a sample line: ${JSON.stringify(line)}`);
    const family = sample[1].replace(/_(bucket|sum|count)$/, "");
    assert.ok(types.has(sample[1]) || types.has(family), `no TYPE before ${sample[1]}`);
    const value = sample[3] === "+Inf" ? Infinity : Number(sample[3]);
    assert.ok(!Number.isNaN(value), line);
    samples.set(`${sample[1]}${sample[2] ?? ""}`, value);
  }
  return samples;
}

Deno.test("GET /metrics is valid Prometheus text that counts decisions by operation and outcome", async () => {
  await using app = await openTestApp();
  await app.call("POST", "/v1/vms", {
    body: { uuid: VM_A, name: "web-1", labels: { approved: "1" } },
  });
  await app.call("POST", "/v1/decide", { body: event("start") });
  await app.call("POST", "/v1/decide", { body: event("start") });
  await app.call("POST", "/v1/decide", { body: event("resume") });
  await app.call("POST", "/v1/decide", { body: "{" });
  await app.call("POST", "/v1/events", { body: { ...event("start"), outcome: "completed" } });
  const res = await app.call("GET", "/metrics");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
  const m = parseExposition(res.text);
  assert.equal(m.get('vasp_decisions_total{operation="start",outcome="allow"}'), 2);
  assert.equal(m.get('vasp_decisions_total{operation="resume",outcome="deny"}'), 1);
  assert.equal(m.get('vasp_decisions_total{operation="unknown",outcome="error"}'), 1);
  assert.equal(m.get('vasp_http_errors_total{code="json_invalid"}'), 1);
  assert.equal(m.get('vasp_events_total{operation="start",applied="true"}'), 1);
  assert.equal(m.get("vasp_decision_duration_seconds_count"), 4);
  assert.equal(m.get('vasp_decision_duration_seconds_bucket{le="+Inf"}'), 4);
  // 4 decisions + 1 event + 1 registration, each one durable write.
  assert.equal(m.get("vasp_audit_write_duration_seconds_count"), 6);
  assert.equal(m.get("vasp_engine_duration_seconds_count"), 3);
  const revision = app.policyStore.current().revision;
  assert.equal(m.get(`vasp_policy_info{revision="${revision}"}`), 1);
  let previous = 0;
  for (const [key, value] of m) {
    if (!key.startsWith("vasp_decision_duration_seconds_bucket")) continue;
    assert.ok(value >= previous, "buckets are cumulative");
    previous = value;
  }
});

Deno.test("the OpenAPI document covers every route of the app, and names no route the app lacks", async () => {
  await using app = await openTestApp();
  const doc = await openApiDocument() as {
    openapi: string;
    paths: Record<string, Record<string, unknown>>;
  };
  assert.equal(doc.openapi, "3.1.0");
  const inApp = new Set(
    app.app.routes
      .filter((r) => r.method !== "ALL")
      .map((r) => `${r.method} ${r.path.replace(/:([a-z_]+)/g, "{$1}")}`),
  );
  const inDoc = new Set(
    Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`)
    ),
  );
  assert.deepEqual([...inApp].sort(), [...inDoc].sort());
  assert.ok(inApp.size >= 17, `only ${inApp.size} routes seen`);
  const served = await app.call("GET", "/openapi.json");
  assert.deepEqual(served.json, doc);
  // Every $ref resolves.
  const refs = JSON.stringify(doc).match(/#\/components\/schemas\/[A-Za-z]+/g) ?? [];
  const schemas = (doc as unknown as { components: { schemas: Record<string, unknown> } })
    .components.schemas;
  for (const ref of refs) assert.ok(ref.split("/").at(-1)! in schemas, ref);
});

Deno.test("GET /readyz reports the store, the policies and the ASP; /healthz only the process", async () => {
  await using app = await openTestApp();
  const ready = await app.call("GET", "/readyz");
  assert.equal(ready.status, 200);
  assert.deepEqual(ready.json.checks, { store: true, policies: true, asp: true });
  assert.equal(ready.json.asp_id, app.asp.id);
  app.asp.close();
  const closed = await app.call("GET", "/readyz");
  assert.equal(closed.status, 503);
  assert.deepEqual(closed.json.checks, { store: true, policies: true, asp: false });
  assert.equal(closed.json.code, "not_ready");
  assert.equal((await app.call("GET", "/healthz")).status, 200);
});

Deno.test("policies: list what is in force, refuse a broken reload keeping the old set, dry-run without a record", async () => {
  await using app = await openTestApp();
  const listed = await app.call("GET", "/v1/policies");
  const before = listed.json.revision;
  assert.equal(before, app.policyStore.current().revision);
  assert.deepEqual(
    listed.json.policies.map((p: { id: string }) => p.id).sort(),
    ["operations", "runtime-integrity", "start-approval"],
  );
  const approval = listed.json.policies.find((p: { id: string }) => p.id === "start-approval");
  assert.deepEqual(approval.on, ["start"]);
  assert.equal(approval.rules[0].expr, '"approved" in vm.labels');

  await Deno.writeTextFile(
    join(app.policyDir, "broken.yaml"),
    "id: broken\ndescription: x\non: [start]\neffect: deny\nrules:\n  - name: r\n    expr: vm.nosuchfield\n    message: '\"x\"'\n",
  );
  const refused = await app.call("POST", "/v1/policies/reload");
  assert.equal(refused.status, 200);
  assert.equal(refused.json.ok, false);
  assert.equal(refused.json.revision, before);
  assert.ok(refused.json.errors.length >= 1);
  assert.match(refused.json.errors[0].file, /broken\.yaml/);
  assert.ok(refused.json.errors[0].line >= 1);

  await Deno.remove(join(app.policyDir, "broken.yaml"));
  await Deno.writeTextFile(
    join(app.policyDir, "start-approval.yaml"),
    (await Deno.readTextFile(join(app.policyDir, "start-approval.yaml"))).replace(
      '"approved" in vm.labels',
      "true",
    ),
  );
  const reloaded = await app.call("POST", "/v1/policies/reload");
  assert.deepEqual([reloaded.json.ok, reloaded.json.previous_revision], [true, before]);
  assert.notEqual(reloaded.json.revision, before);

  await app.call("POST", "/v1/vms", { body: { uuid: VM_B, name: "db-1" } });
  const seq = (await app.store.queryAudit({ order: "desc", limit: 1 })).records[0].seq;
  const dry = await app.call("POST", "/v1/policies/evaluate", {
    body: event("start", { vm: { uuid: VM_B, name: "db-1" } }),
  });
  assert.equal(dry.status, 200);
  assert.deepEqual([dry.json.dry_run, dry.json.allow], [true, true]);
  assert.deepEqual(dry.json.evaluated, ["start-approval"]);
  assert.equal(dry.json.policy_revision, reloaded.json.revision);
  assert.equal((await app.store.queryAudit({ order: "desc", limit: 1 })).records[0].seq, seq);
});

Deno.test("audit: query by VM, time and page; verify the chain; VMs list and remove", async () => {
  await using app = await openTestApp();
  await app.call("POST", "/v1/vms", { body: { uuid: VM_A, name: "web-1" } });
  await app.call("POST", "/v1/vms", { body: { uuid: VM_B, name: "db-1", tenant: "acme" } });
  // Records carry millisecond times: let the registrations' millisecond pass first.
  await new Promise((resolve) => setTimeout(resolve, 5));
  const start = new Date();
  for (let i = 0; i < 5; i++) await app.call("POST", "/v1/decide", { body: event("pause") });
  const first = await app.call("GET", `/v1/audit?vm=${VM_A}&result=deny&limit=2`);
  assert.equal(first.json.records.length, 2);
  assert.ok(first.json.records.every((r: { result: string }) => r.result === "deny"));
  const second = await app.call(
    "GET",
    `/v1/audit?vm=${VM_A}&result=deny&limit=2&cursor=${first.json.next_cursor}`,
  );
  assert.ok(second.json.records[0].seq > first.json.records[1].seq);
  const since = await app.call("GET", `/v1/audit?from=${start.toISOString()}`);
  assert.equal(since.json.records.length, 5);
  const latest = await app.call("GET", "/v1/audit?order=desc&limit=1");
  assert.match(latest.json.records[0].hash, /^[0-9a-f]{64}$/);
  const verified = await app.call("GET", "/v1/audit/verify");
  assert.deepEqual([verified.json.ok, verified.json.recordsChecked], [true, 7]);

  const vms = await app.call("GET", "/v1/vms?tenant=acme");
  assert.deepEqual(vms.json.vms.map((v: { uuid: string }) => v.uuid), [VM_B]);
  const removed = await app.call("DELETE", `/v1/vms/${VM_B}`);
  assert.deepEqual(removed.json, { uuid: VM_B, removed: true });
  assert.equal((await app.call("GET", `/v1/vms/${VM_B}`)).status, 404);
  const trail = await app.call("GET", `/v1/audit?vm=${VM_B}`);
  assert.deepEqual(trail.json.records.map((r: { operation: string }) => r.operation), [
    "register",
    "remove",
  ]);
});
