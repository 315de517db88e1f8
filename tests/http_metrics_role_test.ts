import assert from "node:assert/strict";
import { event, openTestApp, VM_A, VM_B } from "./fixtures/http_app.ts";

Deno.test("a metrics token reads /metrics, /readyz and /v1/status, and nothing else", async () => {
  await using app = await openTestApp();
  const metrics = { transport: "tcp", token: app.token("metrics") } as const;
  for (const path of ["/metrics", "/readyz", "/v1/status", "/healthz"]) {
    const res = await app.call("GET", path, metrics);
    assert.equal(res.status, 200, `${path}: ${res.text}`);
  }
  for (
    const [method, path] of [
      ["POST", "/v1/decide"],
      ["POST", "/v1/events"],
      ["GET", "/v1/vms"],
      ["POST", "/v1/vms"],
      ["GET", `/v1/vms/${VM_A}`],
      ["DELETE", `/v1/vms/${VM_A}`],
      ["GET", "/v1/audit"],
      ["GET", "/v1/audit/verify"],
      ["GET", "/v1/policies"],
      ["POST", "/v1/policies/reload"],
      ["POST", "/v1/policies/evaluate"],
      ["GET", `/v1/vms/${VM_A}/quote`],
      ["GET", "/openapi.json"],
    ]
  ) {
    const res = await app.call(method, path, {
      ...metrics,
      body: method === "POST" ? event("start") : undefined,
    });
    assert.equal(res.status, 403, `${method} ${path}`);
    assert.equal(res.json.code, "role_forbidden");
  }
});

Deno.test("GET /metrics counts VMs by state and tells the build and the process; /v1/status sums up", async () => {
  await using app = await openTestApp();
  await app.call("POST", "/v1/vms", { body: { uuid: VM_A, name: "web-1", state: "running" } });
  await app.call("POST", "/v1/vms", { body: { uuid: VM_B, name: "web-2", state: "running" } });
  const scraped = await app.call("GET", "/metrics", {
    transport: "tcp",
    token: app.token("metrics"),
  });
  assert.equal(scraped.status, 200);
  const text = scraped.text;
  assert.match(text, /^vasp_vms\{state="running"\} 2$/m);
  assert.match(text, /^vasp_vms\{state="quarantined"\} 0$/m);
  assert.match(text, /^vasp_build_info\{version="\d+\.\d+\.\d+",deno="[^"]+",abi="\d+"\} 1$/m);
  assert.match(text, /^process_resident_memory_bytes [1-9]\d*$/m);
  assert.match(text, /^process_open_fds [1-9]\d*$/m);
  assert.match(text, /^process_cpu_seconds_total \d/m);
  assert.match(text, /^process_start_time_seconds \d+/m);
  // The first load counts as the last successful one.
  assert.match(text, /^vasp_policy_last_reload_success 1$/m);
  assert.match(text, /^vasp_policy_last_reload_timestamp_seconds \d+/m);

  const status = await app.call("GET", "/v1/status");
  assert.equal(status.status, 200, status.text);
  assert.equal(status.json.asp_id, app.asp.id);
  assert.equal(status.json.vms.running, 2);
  assert.match(status.json.policy_revision, /^sha256:/);
  // The test app measures no QEMU or kernel, and nothing was recorded as expected.
  assert.equal(status.json.host.expected_recorded, false);
  assert.equal(status.json.host.all_match, false);
});
