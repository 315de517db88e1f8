/**
 * Faults of the files a server keeps: a corrupt database (refused at start, left as it was), a
 * database another process holds locked (decisions fail closed with 503 until it lets go), and
 * an ASP state file that cannot be written (a seal fails after its decision was recorded and
 * says so; a checkpoint's anchor waits; both recover once the file can be written again).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { Asp } from "../ffi/mod.ts";
import { AUDIT_ANCHOR_COUNTER } from "../src/server/checkpoint_key.ts";
import { auditVerifyJson } from "./fixtures/fault.ts";
import { event } from "./fixtures/http_app.ts";
import { startServe } from "./fixtures/serve_process.ts";
import { tempStateDir } from "./fixtures/state_dir.ts";
import { startVaspServer } from "./fixtures/vasp_server.ts";

async function decideOverSocket(socket: string, operation = "start") {
  using client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
  const response = await fetch("http://localhost/v1/decide", {
    method: "POST",
    body: JSON.stringify(event(operation)),
    client,
  });
  return { status: response.status, json: await response.json() };
}

Deno.test("a corrupt database is refused at start and by audit verify, and left as it was", async () => {
  await using dir = await tempStateDir();
  {
    await using s = await startVaspServer(dir.path);
    assert.equal((await s.call("POST", "/v1/decide", { body: event("start") })).status, 200);
  }
  const db = join(dir.path, "vasp.db");
  const file = await Deno.open(db, { write: true });
  await file.write(new TextEncoder().encode("not a database, overwritten by a fault".repeat(3)));
  file.close();
  const before = await Deno.readFile(db);

  const serve = await startServe(["--state-dir", dir.path, "--no-tcp"]);
  if (serve.output.includes("ready;")) {
    await serve.stop();
    assert.fail("vasp serve started on a corrupt database");
  }
  const exit = await serve.failed();
  assert.notEqual(exit.status.code, 0);
  assert.match(exit.stderr + exit.output, /store_corrupt|is not a sound|not a database/);
  assert.deepEqual(await Deno.readFile(db), before, "the corrupt file is left for forensics");
  const verified = await auditVerifyJson(dir.path);
  assert.equal(verified.code, 1);
  assert.match(verified.output, /not a database|store_corrupt/);
});

Deno.test("while another process holds the database locked, decisions fail closed with 503, and come back when it lets go", async () => {
  await using dir = await tempStateDir();
  const serve = await startServe(["--state-dir", dir.path, "--no-tcp"]);
  const socket = join(dir.path, "vasp.sock");
  let lockedId = "";
  try {
    assert.equal((await decideOverSocket(socket)).status, 200);
    // Another process would do the same; SQLite's locks hold between connections of a process.
    const holder = new DatabaseSync(join(dir.path, "vasp.db"));
    holder.exec("PRAGMA busy_timeout = 0; BEGIN EXCLUSIVE");
    let locked;
    try {
      // The server waits out its busy_timeout (5 s), then refuses.
      locked = await decideOverSocket(socket);
    } finally {
      holder.exec("ROLLBACK");
      holder.close();
    }
    assert.equal(locked.status, 503, JSON.stringify(locked.json));
    assert.equal(locked.json.code, "audit_write_failed");
    lockedId = locked.json.decision_id;
    assert.match(lockedId, /^[0-9a-f-]{36}$/);
    const back = await decideOverSocket(socket);
    assert.equal(back.status, 200, JSON.stringify(back.json));
  } finally {
    const done = await serve.stop();
    assert.equal(done.status.code, 0, done.stderr);
  }
  const verified = await auditVerifyJson(dir.path);
  assert.equal(verified.code, 0, verified.output);
  // The refused decision left no record, or an error record: never an allow.
  const db = new DatabaseSync(join(dir.path, "vasp.db"), { readOnly: true });
  const row = db.prepare("SELECT result FROM audit WHERE decision_id = ?").get(lockedId);
  db.close();
  assert.ok(row === undefined || row.result === "error", JSON.stringify(row));
});

Deno.test("when the ASP state cannot be written, a save fails after its record and says so, the anchor waits, and both recover", async () => {
  await using dir = await tempStateDir();
  const vm = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b";
  const boot = join(dir.path, "boot");
  await Deno.mkdir(boot);
  await Deno.writeFile(join(boot, "vmlinuz"), crypto.getRandomValues(new Uint8Array(2048)));
  const xml = `<domain type='kvm'><name>web-9</name><uuid>${vm}</uuid>` +
    `<os><type arch='x86_64'>hvm</type><kernel>${boot}/vmlinuz</kernel></os></domain>`;
  await using s = await startVaspServer(dir.path);
  const store = s.server.store;
  const call = (operation: string, extra: Record<string, unknown> = {}) =>
    s.call("POST", "/v1/decide", {
      body: { operation, vm: { uuid: vm, name: "web-9" }, source: "api", details: {}, ...extra },
    });
  assert.equal(
    (await s.call("POST", "/v1/vms", {
      body: { uuid: vm, name: "web-9", tenant: "acme", domain_xml: xml },
    })).status,
    201,
  );
  const start = await call("start", {
    phase: "prepare",
    details: { domain_xml_b64: Buffer.from(xml).toString("base64") },
  });
  assert.equal(start.json.allow, true, JSON.stringify(start.json));
  const started = await s.call("POST", "/v1/events", {
    body: {
      operation: "start",
      vm: { uuid: vm, name: "web-9" },
      source: "api",
      phase: "started",
      details: {},
      outcome: "completed",
    },
  });
  assert.equal(started.json.state, "running", JSON.stringify(started.json));
  await store.recordMeasurements(
    vm,
    ["kernel_text", "sys_call_table"].map((region) => ({
      region,
      digest: "11".repeat(32),
      reference: "11".repeat(32),
      status: "ok",
      time: new Date(),
    })),
  );
  await store.checkpoint();
  const counterBefore = s.server.asp.counter(AUDIT_ANCHOR_COUNTER);
  const sealedBefore = (await store.getVm(vm))!.binding!.sealedCounter;

  // A directory with an entry where the state file was: its rename fails, also for root.
  const state = join(dir.path, "asp.state");
  await Deno.rename(state, `${state}.kept`);
  await Deno.mkdir(join(state, "x"), { recursive: true });
  try {
    const save = await call("save");
    assert.equal(save.status >= 500, true, JSON.stringify(save.json));
    const records = (await store.queryAudit({ order: "desc", limit: 2 })).records.reverse();
    assert.deepEqual(records.map((r) => [r.decisionId, r.result]), [
      [save.json.decision_id, "allow"],
      [`${save.json.decision_id}.effect`, "error"],
    ]);
    assert.equal((await store.getVm(vm))!.binding!.sealedCounter, sealedBefore);
    // A checkpoint is written; its anchor cannot advance: the log is ahead, which verifies.
    await assert.rejects(store.checkpoint(), { code: "audit_checkpoint_failed" });
    const ahead = await store.verifyAudit();
    assert.equal(ahead.ok, true, ahead.problem?.message);
    assert.equal(ahead.anchor?.status, "ahead");
  } finally {
    await Deno.remove(state, { recursive: true });
    await Deno.rename(`${state}.kept`, state);
  }
  const saved = await call("save");
  assert.equal(saved.json.allow, true, JSON.stringify(saved.json));
  assert.ok(saved.json.vasp.counter > sealedBefore);
  await store.checkpoint();
  const settled = await store.verifyAudit();
  assert.equal(settled.anchor?.status, "matches");
  assert.equal(s.server.asp.counter(AUDIT_ANCHOR_COUNTER), counterBefore + 2n);
  await s.stop();
  assert.equal(Asp.peekCounter(dir.path, AUDIT_ANCHOR_COUNTER), counterBefore + 2n);
});
