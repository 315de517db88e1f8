import assert from "node:assert/strict";
import { event, openTestApp, VM_A } from "./fixtures/http_app.ts";

Deno.test("bad input gets a JSON error with a stable code and the right status", async (t) => {
  await using app = await openTestApp();
  await app.call("POST", "/v1/vms", { body: { uuid: VM_A, name: "web-1" } });
  const cases: [string, string, string, unknown, number, string][] = [
    ["malformed JSON", "POST", "/v1/decide", "{not json", 400, "json_invalid"],
    ["an empty body", "POST", "/v1/decide", "", 400, "json_invalid"],
    ["a JSON array", "POST", "/v1/decide", "[1,2]", 400, "event_invalid"],
    ["an unknown operation", "POST", "/v1/decide", event("teleport"), 400, "event_invalid"],
    ["an unknown field", "POST", "/v1/decide", event("start", { extra: 1 }), 400, "event_invalid"],
    [
      "a bad UUID",
      "POST",
      "/v1/decide",
      event("start", { vm: { uuid: "x", name: "a" } }),
      400,
      "event_invalid",
    ],
    [
      "details of the wrong type",
      "POST",
      "/v1/decide",
      event("start", { details: [] }),
      400,
      "event_invalid",
    ],
    ["an event without outcome", "POST", "/v1/events", event("start"), 400, "event_invalid"],
    [
      "a bad outcome",
      "POST",
      "/v1/events",
      { ...event("start"), outcome: "maybe" },
      400,
      "event_invalid",
    ],
    ["an unknown route", "GET", "/v1/nothing", undefined, 404, "route_not_found"],
    ["a wrong method", "PUT", "/v1/decide", undefined, 404, "route_not_found"],
    [
      "an unknown VM",
      "GET",
      "/v1/vms/9d2e7b10-1c3a-4f5e-8a6b-0c1d2e3f4a5b",
      undefined,
      404,
      "vm_not_found",
    ],
    ["a path that is not a UUID", "GET", "/v1/vms/web-1", undefined, 400, "request_invalid"],
    ["a taken UUID", "POST", "/v1/vms", { uuid: VM_A, name: "again" }, 409, "vm_exists"],
    [
      "a VM with an unknown field",
      "POST",
      "/v1/vms",
      { uuid: VM_A, name: "a", owner: "x" },
      400,
      "request_invalid",
    ],
    [
      "a VM in no known state",
      "POST",
      "/v1/vms",
      { uuid: VM_A, name: "a", state: "dancing" },
      400,
      "request_invalid",
    ],
    [
      "release of a VM not in quarantine",
      "POST",
      `/v1/vms/${VM_A}/release`,
      undefined,
      409,
      "transition_invalid",
    ],
    [
      "an audit query with an unknown parameter",
      "GET",
      "/v1/audit?since=1",
      undefined,
      400,
      "request_invalid",
    ],
    [
      "an audit query with a bad time",
      "GET",
      "/v1/audit?from=yesterday",
      undefined,
      400,
      "request_invalid",
    ],
    ["an audit page too large", "GET", "/v1/audit?limit=5000", undefined, 400, "request_invalid"],
    [
      "a dry run of a bad event",
      "POST",
      "/v1/policies/evaluate",
      event("fly"),
      400,
      "event_invalid",
    ],
  ];
  for (const [what, method, path, body, status, code] of cases) {
    await t.step(`${what} is ${status} ${code}`, async () => {
      const res = await app.call(method, path, { body });
      assert.equal(res.status, status, res.text);
      assert.equal(res.headers.get("content-type"), "application/json");
      assert.deepEqual(Object.keys(res.json).filter((k) => k !== "decision_id"), [
        "code",
        "message",
      ]);
      assert.equal(res.json.code, code);
      assert.ok(res.json.message.length > 0);
    });
  }
  await t.step("the server still answers after all of them", async () => {
    const res = await app.call("POST", "/v1/decide", { body: event("pause") });
    assert.equal(res.status, 200);
    const { records } = await app.store.queryAudit({ result: "error" });
    const verify = await app.store.verifyAudit();
    assert.ok(records.length >= 9, "each bad decide or event left an error record");
    assert.equal(verify.ok, true);
  });
});

Deno.test("a body over the limit is refused with 413 while it is read, announced or chunked", async (t) => {
  await using app = await openTestApp({ bodyLimit: 1024 });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => app.app.fetch(req, { transport: "unix" }),
  );
  const url = `http://127.0.0.1:${server.addr.port}/v1/decide`;
  try {
    await t.step("by Content-Length", async () => {
      const res = await fetch(url, { method: "POST", body: "x".repeat(2048) });
      assert.equal(res.status, 413);
      const body = await res.json();
      assert.equal(body.code, "body_too_large");
      assert.ok(body.decision_id);
    });
    await t.step("chunked, without waiting for a body that never ends", async () => {
      let sent = 0;
      const endless = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent < 4096) {
            controller.enqueue(new Uint8Array(512).fill(0x20));
            sent += 512;
          }
          // After that it stays open: the server must answer without reading to the end.
        },
      });
      const res = await fetch(url, {
        method: "POST",
        body: endless,
        signal: AbortSignal.timeout(5000),
      });
      assert.equal(res.status, 413);
      assert.equal((await res.json()).code, "body_too_large");
    });
    await t.step("a body at the limit is read", async () => {
      const body = JSON.stringify(event("pause", { details: { pad: "" } }));
      const padded = body.replace('"pad":""', `"pad":"${"p".repeat(1024 - body.length)}"`);
      assert.equal(padded.length, 1024);
      const res = await fetch(url, { method: "POST", body: padded });
      assert.equal(res.status, 200, await res.clone().text());
      await res.body?.cancel();
    });
    const { records } = await app.store.queryAudit({ result: "error" });
    assert.deepEqual(records.map((r) => r.reasons[0].rule), ["body_too_large", "body_too_large"]);
  } finally {
    await server.shutdown();
  }
});

Deno.test("hostile bodies (deep nesting, huge numbers, odd Unicode) never crash the server", async () => {
  await using app = await openTestApp();
  const deep = "[".repeat(20000) + "]".repeat(20000);
  const bodies = [
    deep,
    JSON.stringify(event("start", { details: { n: 1e308, m: -0, s: "\u0000\ud800" } })),
    JSON.stringify(event("start", { details: JSON.parse("[".repeat(3000) + "]".repeat(3000)) })),
    JSON.stringify(event("start", { vm: { uuid: VM_A, name: "x".repeat(300) } })),
    '{"__proto__": {"allow": true}, "operation": "start"}',
  ];
  for (const body of bodies) {
    const res = await app.call("POST", "/v1/decide", { body });
    assert.ok([200, 400, 500].includes(res.status), `${res.status} ${res.text.slice(0, 200)}`);
    assert.ok(res.json.decision_id, "every answer carries the decision ID");
    assert.notEqual(res.json.allow, true);
  }
  assert.equal((await app.store.verifyAudit()).ok, true);
  assert.equal((await app.call("GET", "/healthz")).status, 200);
});
