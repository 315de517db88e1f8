import assert from "node:assert/strict";
import { join } from "node:path";
import { bootstrapOperatorToken, TokenRegistry } from "../src/http/mod.ts";
import { event, openTestApp, VM_A, VM_B } from "./fixtures/http_app.ts";

Deno.test("over TCP every route but /healthz needs a valid bearer token; over the Unix socket none", async (t) => {
  await using app = await openTestApp();
  const tcp = { transport: "tcp" } as const;
  await t.step("/healthz answers anyone", async () => {
    assert.equal((await app.call("GET", "/healthz", tcp)).status, 200);
  });
  for (
    const [method, path] of [
      ["POST", "/v1/decide"],
      ["GET", "/v1/vms"],
      ["GET", "/metrics"],
      ["GET", "/readyz"],
      ["GET", "/openapi.json"],
      ["GET", "/no/such/route"],
    ]
  ) {
    await t.step(`${method} ${path} without a token is 401`, async () => {
      const res = await app.call(method, path, {
        ...tcp,
        body: method === "POST" ? event("start") : undefined,
      });
      assert.equal(res.status, 401);
      assert.equal(res.json.code, "token_invalid");
      assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="vasp"');
    });
  }
  const operator = app.token("operator");
  await t.step("a wrong, malformed or revoked token is 401", async () => {
    const wrong = operator.slice(0, -4) + (operator.endsWith("AAAA") ? "BBBB" : "AAAA");
    for (const token of [wrong, "vasp_nope", "", operator + "x"]) {
      const res = await app.call("GET", "/v1/vms", { ...tcp, token });
      assert.equal(res.status, 401, token);
    }
    const basic = await app.call("GET", "/v1/vms", {
      ...tcp,
      headers: { authorization: `Basic ${btoa("a:b")}` },
    });
    assert.equal(basic.status, 401);
    const spare = app.token("operator");
    assert.equal((await app.call("GET", "/v1/vms", { ...tcp, token: spare })).status, 200);
    app.tokens.revoke(app.tokens.list().find((i) => spare.includes(i.id))!.id);
    assert.equal((await app.call("GET", "/v1/vms", { ...tcp, token: spare })).status, 401);
  });
  await t.step("the Unix socket needs no token", async () => {
    assert.equal((await app.call("GET", "/v1/vms")).status, 200);
  });
  await t.step("a listener that says nothing of its transport is treated as TCP", async () => {
    const res = await app.app.fetch(new Request("http://vasp/v1/vms"));
    assert.equal(res.status, 401);
  });
});

Deno.test("a hook token decides and reports, and may do nothing an operator does", async () => {
  await using app = await openTestApp();
  const hook = { transport: "tcp", token: app.token("hook") } as const;
  assert.equal(
    (await app.call("POST", "/v1/decide", { ...hook, body: event("start") })).status,
    200,
  );
  const report = await app.call("POST", "/v1/events", {
    ...hook,
    body: { ...event("start"), outcome: "failed" },
  });
  assert.equal(report.status, 200, report.text);
  for (
    const [method, path] of [
      ["GET", "/v1/vms"],
      ["POST", "/v1/vms"],
      ["GET", "/v1/audit"],
      ["GET", "/metrics"],
      ["POST", "/v1/policies/reload"],
      ["DELETE", `/v1/vms/${VM_A}`],
    ]
  ) {
    const res = await app.call(method, path, { ...hook, body: method === "POST" ? {} : undefined });
    assert.equal(res.status, 403, `${method} ${path}`);
    assert.equal(res.json.code, "role_forbidden");
  }
});

Deno.test("a tenant token reads only its own VMs, their measurements and audit, and never decides or changes", async () => {
  await using app = await openTestApp();
  await app.call("POST", "/v1/vms", { body: { uuid: VM_A, name: "acme-web", tenant: "acme" } });
  await app.call("POST", "/v1/vms", { body: { uuid: VM_B, name: "globex-db", tenant: "globex" } });
  await app.store.recordMeasurements(VM_A, [{
    region: "kernel_text",
    digest: "ab".repeat(32),
    reference: "debian-12",
    status: "match",
    time: new Date(),
  }]);
  await app.call("POST", "/v1/decide", { body: event("pause") });
  await app.call("POST", "/v1/decide", {
    body: event("pause", { vm: { uuid: VM_B, name: "globex-db" } }),
  });
  const acme = { transport: "tcp", token: app.token("tenant", "acme") } as const;

  const list = await app.call("GET", "/v1/vms", acme);
  assert.deepEqual(list.json.vms.map((v: { name: string }) => v.name), ["acme-web"]);
  const spoof = await app.call("GET", "/v1/vms?tenant=globex", acme);
  assert.deepEqual(spoof.json.vms.map((v: { name: string }) => v.name), ["acme-web"]);
  assert.equal((await app.call("GET", `/v1/vms/${VM_A}`, acme)).json.tenant, "acme");
  const other = await app.call("GET", `/v1/vms/${VM_B}`, acme);
  assert.deepEqual([other.status, other.json.code], [404, "vm_not_found"]);
  const measured = await app.call("GET", `/v1/vms/${VM_A}/measurements`, acme);
  assert.equal(measured.json.measurements[0].region, "kernel_text");
  assert.equal((await app.call("GET", `/v1/vms/${VM_B}/measurements`, acme)).status, 404);

  const audit = await app.call("GET", `/v1/audit?vm=${VM_A}`, acme);
  assert.equal(audit.status, 200);
  assert.ok(audit.json.records.length >= 2);
  assert.ok(audit.json.records.every((r: { vm_uuid: string }) => r.vm_uuid === VM_A));
  assert.equal((await app.call("GET", `/v1/audit?vm=${VM_B}`, acme)).status, 404);
  assert.equal((await app.call("GET", "/v1/audit", acme)).status, 403);

  for (
    const [method, path, body] of [
      ["POST", "/v1/decide", event("pause")],
      ["POST", "/v1/events", { ...event("pause"), outcome: "completed" }],
      ["POST", "/v1/vms", {
        uuid: "11111111-2222-4333-8444-555555555555",
        name: "x",
        tenant: "acme",
      }],
      ["DELETE", `/v1/vms/${VM_A}`, undefined],
      ["POST", `/v1/vms/${VM_A}/release`, undefined],
      ["POST", "/v1/policies/evaluate", event("pause")],
      ["GET", "/v1/policies", undefined],
      ["GET", "/v1/audit/verify", undefined],
      ["GET", "/metrics", undefined],
    ] as const
  ) {
    const res = await app.call(method, path, { ...acme, body });
    assert.equal(res.status, 403, `${method} ${path}`);
  }
  assert.equal((await app.store.getVm(VM_A))?.state, "defined");
});

Deno.test("the token file keeps only SHA-256 hashes, mode 0600, and a running server sees new tokens", async () => {
  await using app = await openTestApp();
  // The server wrote it on its first start.
  const path = join(app.stateDir, "operator.token");
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  assert.equal(bootstrapOperatorToken(app.tokens, app.stateDir), undefined, "only on first start");
  const token = (await Deno.readTextFile(path)).trim();
  const file = await Deno.readTextFile(app.tokens.path);
  assert.equal((await Deno.stat(app.tokens.path)).mode! & 0o777, 0o600);
  // vasp_<hex id>_<base64url secret>: the secret itself may contain "_".
  const secret = token.split("_").slice(2).join("_");
  assert.equal(secret.length, 43);
  assert.ok(!file.includes(secret), "the secret is not stored");
  // Another process (vasp token create) adds a token: the server's registry sees it.
  const cli = new TokenRegistry(app.stateDir);
  const { token: hook } = cli.create({ role: "hook" });
  const res = await app.call("POST", "/v1/decide", {
    transport: "tcp",
    token: hook,
    body: event("start"),
  });
  assert.equal(res.status, 200);
  assert.throws(() => cli.create({ role: "tenant" }), { code: "request_invalid" });
  assert.throws(() => cli.create({ role: "hook", tenant: "acme" }), { code: "request_invalid" });
  assert.throws(() => cli.revoke("0000"), { code: "token_not_found" });
});
