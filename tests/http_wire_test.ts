import assert from "node:assert/strict";
import { join } from "node:path";
import { parseEvent, SILENT, VaspError } from "../src/engine/mod.ts";
import { startServer } from "../src/server/mod.ts";
import { openApiDocument, ROUTES, routes, VaspClient } from "../src/wire/mod.ts";
import { event, openTestApp, TEST_POLICIES, VM_A, VM_B } from "./fixtures/http_app.ts";
import { CHECKED } from "./fixtures/wire_check.ts";
import { toPem } from "../src/attest/mod.ts";

const isVaspError = (e: unknown, code: string): e is VaspError =>
  e instanceof VaspError && e.code === code;

type Operation = { operationId?: string; responses?: Record<string, unknown> };

Deno.test("the OpenAPI document names every operation once, with a schema for every answer", async () => {
  const doc = await openApiDocument() as { paths: Record<string, Record<string, Operation>> };
  const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops))
    .map((op) => op.operationId);
  assert.equal(ids.length, ROUTES.length);
  assert.ok(ids.every((id) => typeof id === "string" && id.length > 0), String(ids));
  assert.equal(new Set(ids).size, ids.length, "operationIds are unique");
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      for (const [status, answer] of Object.entries(op.responses ?? {})) {
        const content = (answer as { content?: Record<string, { schema?: unknown }> }).content;
        const schema = Object.values(content ?? {})[0]?.schema;
        assert.ok(schema, `${method} ${path} ${status} has a schema`);
      }
    }
  }
});

Deno.test("every route answers as the document says, for each status exercised", async () => {
  await using app = await openTestApp();
  const digest = "ab".repeat(32);
  const ca = toPem(app.asp.certificate("ca"));
  const calls: [string, string, unknown?][] = [
    ["GET", "/healthz"],
    ["GET", "/readyz"],
    ["GET", "/metrics"],
    ["GET", "/v1/status"],
    ["GET", "/openapi.json"],
    ["POST", "/v1/vms", { uuid: VM_A, name: "web-1", tenant: "acme", config_digest: digest }],
    ["POST", "/v1/vms", { uuid: VM_A.toUpperCase(), name: "web-1" }],
    ["POST", "/v1/vms", { uuid: VM_B, name: "web-2", labels: { "bad key": "x" } }],
    ["GET", "/v1/vms?state=defined"],
    ["GET", "/v1/vms?state=sleeping"],
    ["GET", `/v1/vms/${VM_A}`],
    ["GET", `/v1/vms/${VM_B}`],
    ["GET", "/v1/vms/not-a-uuid"],
    ["PUT", `/v1/vms/${VM_A}/introspection`, { memory: "/dev/shm/web-1", symbols: "/m" }],
    ["PUT", `/v1/vms/${VM_A}/introspection`, { memory: "/m", symbols: "/s", interval_ms: 5 }],
    ["PUT", `/v1/vms/${VM_A}/introspection`, null],
    ["GET", `/v1/vms/${VM_A}/measurements`],
    ["PUT", `/v1/vms/${VM_A}/boot-references`, {
      references: [{ name: "kernel", path: "/boot/vmlinuz", digest: `sha256:${digest}` }],
    }],
    ["PUT", `/v1/vms/${VM_A}/boot-references`, { references: [{ name: "bios", digest }] }],
    ["GET", `/v1/vms/${VM_A}/boot-references`],
    ["GET", `/v1/vms/${VM_A}/quote?nonce=00ff&registers=0,8`],
    ["GET", `/v1/vms/${VM_A}/quote?nonce=00ff&registers=24`],
    ["POST", "/v1/decide", event("start")],
    ["POST", "/v1/decide", event("fly")],
    ["POST", "/v1/decide", "{"],
    ["POST", "/v1/events", { ...event("start"), outcome: "completed" }],
    ["POST", "/v1/events", event("start")],
    ["POST", `/v1/vms/${VM_A}/release`],
    ["GET", "/v1/policies"],
    ["POST", "/v1/policies/reload"],
    ["POST", "/v1/policies/evaluate", event("pause")],
    ["GET", `/v1/audit?vm=${VM_A}&limit=2`],
    ["GET", "/v1/audit?limit=0"],
    ["GET", "/v1/audit?colour=red"],
    ["GET", "/v1/audit/verify"],
    ["POST", "/v1/peers", { name: "host-b", ca, endpoint: "http://127.0.0.1:9", token: "t" }],
    ["POST", "/v1/peers", { name: "host b", ca, endpoint: "http://127.0.0.1:9" }],
    ["POST", "/v1/peers", { name: "host-b", ca, endpoint: "http://127.0.0.1:9" }],
    ["GET", "/v1/peers"],
    ["POST", "/v1/migrations", { vm_uuid: VM_A }],
    ["POST", "/v1/migrations", { vm_uuid: VM_B }],
    ["POST", `/v1/migrations/${VM_B}/evidence`, {
      quote: "",
      certificates: [ca, ca],
      event_log: [],
      report: {
        asp_id: digest,
        policy_revision: "",
        expected: {},
        transport_certificate: ca,
        vm_counter: 0,
      },
    }],
    ["POST", `/v1/migrations/${VM_B}/evidence`, { quote: "" }],
    ["DELETE", "/v1/peers/host-b"],
    ["DELETE", "/v1/peers/host-b"],
    ["DELETE", `/v1/vms/${VM_A}`],
    ["GET", "/no/such/route"],
  ];
  const statuses: string[] = [];
  for (const [method, path, body] of calls) {
    // The fixture checks each answer against the document; a misfit throws here.
    const res = await app.call(method, path, body === undefined ? {} : { body });
    statuses.push(`${method} ${path.split("?")[0]} ${res.status}`);
  }
  const tenant = app.token("tenant", "other");
  const hidden = await app.call("GET", `/v1/vms/${VM_A}`, { token: tenant, transport: "tcp" });
  assert.equal(hidden.status, 404);
  const refused = await app.call("GET", "/v1/vms", { transport: "tcp" });
  assert.equal(refused.status, 401);
  const missing = ROUTES.map((r) => r.operationId).filter((id) =>
    ![...CHECKED].some((c) => c.startsWith(`${id} `))
  );
  assert.deepEqual(missing, [], "every operation exercised");
  for (const status of ["200", "201", "400", "401", "404", "409"]) {
    assert.ok([...CHECKED].some((c) => c.endsWith(` ${status}`)), `a ${status} checked`);
  }
  assert.ok(statuses.includes(`GET /v1/vms/${VM_A}/quote 200`), statuses.join("\n"));
});

Deno.test("a request that does not fit its schema is invalid_request naming the field", async () => {
  await using app = await openTestApp();
  const cases: [string, string, unknown, RegExp][] = [
    ["POST", "/v1/vms", { uuid: VM_A, name: "" }, /^Invalid name "": /],
    ["POST", "/v1/vms", { uuid: "x", name: "n" }, /^Invalid uuid "x": not a UUID/],
    ["POST", "/v1/vms", { uuid: VM_A, name: "n", colour: 1 }, /field "colour"/],
    [
      "POST",
      "/v1/vms",
      { uuid: VM_A, name: "n", config_digest: "ab".repeat(32), domain_xml: "<d/>" },
      /not both/,
    ],
    ["GET", "/v1/audit?limit=1001", undefined, /^Invalid limit "1001": 1 to 1000/],
    ["GET", "/v1/audit?from=yesterday", undefined, /^Invalid from "yesterday"/],
    ["GET", `/v1/vms/${VM_A}/quote?nonce=abc`, undefined, /^Invalid nonce "abc": 1 to 64 bytes/],
    [
      "PUT",
      `/v1/vms/${VM_A}/introspection`,
      { memory: "/m", symbols: "/s", interval_ms: 99 },
      /^Invalid interval_ms 99/,
    ],
  ];
  await app.call("POST", "/v1/vms", { body: { uuid: VM_A, name: "web-1" } });
  for (const [method, path, body, message] of cases) {
    const res = await app.call(method, path, body === undefined ? {} : { body });
    assert.equal(res.status, 400, `${method} ${path}: ${res.text}`);
    assert.equal(res.json.code, "request_invalid");
    assert.match(res.json.message, message);
  }
});

Deno.test("the Event schema and the engine's parseEvent accept and refuse the same bodies", () => {
  const vm = { uuid: VM_A, name: "web-1" };
  const bodies: unknown[] = [
    event("start"),
    { operation: "pause", vm, source: "qmp-gate" },
    { operation: "pause", vm: { ...vm, uuid: VM_A.toUpperCase() }, source: "api", phase: "x" },
    { operation: "pause", vm: { ...vm, extra: 1 }, source: "api" },
    { operation: "fly", vm, source: "api" },
    { operation: "pause", vm, source: "nobody" },
    { operation: "pause", vm: { uuid: "x", name: "n" }, source: "api" },
    { operation: "pause", vm: { uuid: VM_A, name: "" }, source: "api" },
    { operation: "pause", vm: { uuid: VM_A, name: "n".repeat(257) }, source: "api" },
    { operation: "pause", vm, source: "api", phase: 3 },
    { operation: "pause", vm, source: "api", phase: "p".repeat(257) },
    { operation: "pause", vm, source: "api", details: [] },
    { operation: "pause", vm, source: "api", details: null },
    { operation: "pause", vm, source: "api", colour: "red" },
    { operation: "pause", source: "api" },
    [],
    null,
    "pause",
  ];
  const schema = routes.decideRoute.request.body.content["application/json"].schema;
  for (const body of bodies) {
    let engine = true;
    try {
      parseEvent(body);
    } catch {
      engine = false;
    }
    assert.equal(schema.safeParse(body).success, engine, JSON.stringify(body));
  }
});

Deno.test("VaspClient talks to a real server over its Unix socket and over TCP with a token", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vasp-wire-" });
  const policyDir = join(dir, "policies");
  await Deno.mkdir(policyDir);
  for (const [name, text] of Object.entries(TEST_POLICIES)) {
    await Deno.writeTextFile(join(policyDir, name), text);
  }
  const server = await startServer({
    stateDir: dir,
    policies: { dir: policyDir },
    host: { qemu: null, kernel: null },
    tcp: { hostname: "127.0.0.1", port: 0 },
    log: SILENT,
    monitor: null,
  });
  try {
    using local = new VaspClient(server.listeners.socket!, { timeoutMs: 30_000 });
    const vm = await local.registerVm({ uuid: VM_A, name: "web-1", labels: { approved: "1" } });
    assert.equal(vm.state, "defined");
    const start = {
      operation: "start",
      vm: { uuid: VM_A, name: "web-1" },
      source: "libvirt-hook",
    } as const;
    const decision = await local.decide(start);
    assert.equal(decision.allow, true, JSON.stringify(decision));
    const ack = await local.report({ ...start, outcome: "completed" });
    assert.deepEqual([ack.from, ack.state], ["defined", "running"]);
    assert.equal((await local.readiness()).ready, true);
    await assert.rejects(local.showVm(VM_B), (e) => isVaspError(e, "vm_not_found"));
    await assert.rejects(
      // A body the schema would refuse, sent as a hook might: the server's code comes back.
      local.decide({ ...start, operation: "fly" as "start" }),
      (e) => isVaspError(e, "event_invalid") && typeof e.details.decision_id === "string",
    );

    const token = server.tokens.create({ role: "operator" }).token;
    const url = `http://127.0.0.1:${server.listeners.tcp!.port}`;
    using remote = new VaspClient(url, { token, timeoutMs: 30_000 });
    assert.deepEqual((await remote.listVms()).vms.map((v) => v.uuid), [VM_A]);
    using anonymous = new VaspClient(url, { timeoutMs: 30_000 });
    await assert.rejects(anonymous.listVms(), (e) => isVaspError(e, "token_invalid"));
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
