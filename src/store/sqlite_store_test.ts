import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { SqliteStore } from "./sqlite_store.ts";
import { SCHEMA_VERSION } from "./_sqlite_schema.ts";
import { tamper, tempDir } from "./testing.ts";

const UUID = "4f1c2a9e-8d5b-4c3e-9f7a-1b2c3d4e5f60";
const binding = {
  instanceId: "inst-1",
  configDigest: "cd".repeat(32),
  sealedState: new Uint8Array([1, 2, 3]),
  sealedCounter: 4,
};

function clock(start = Date.UTC(2025, 0, 1)) {
  let ms = start;
  return { now: () => new Date(ms), advance: (by: number) => ms += by };
}

Deno.test("a registered VM reads back with its binding, labels and times", async () => {
  using dir = tempDir();
  const { now } = clock();
  await using store = SqliteStore.openIn(dir.path, { now });
  const vm = await store.registerVm({
    uuid: UUID,
    name: "web-1",
    tenant: "acme",
    labels: { tier: "web" },
    state: "defined",
    binding,
  });
  assert.deepEqual(await store.getVm(UUID), vm);
  assert.deepEqual(vm.labels, { tier: "web" });
  assert.deepEqual(vm.binding, binding);
  assert.equal(vm.createdAt.getTime(), Date.UTC(2025, 0, 1));
  assert.equal(await store.getVm("no-such-vm"), undefined);
});

Deno.test("registering a taken UUID fails with vm_exists", async () => {
  using dir = tempDir();
  await using store = SqliteStore.openIn(dir.path);
  await store.registerVm({ uuid: UUID, name: "a", tenant: "t", state: "defined" });
  await assert.rejects(
    store.registerVm({ uuid: UUID, name: "b", tenant: "t", state: "defined" }),
    { code: "vm_exists", message: `Cannot register VM "b": UUID ${UUID} is already registered` },
  );
});

Deno.test("registerVm() rejects malformed records with TypeError", async () => {
  using dir = tempDir();
  await using store = SqliteStore.openIn(dir.path);
  const vm = { uuid: UUID, name: "a", tenant: "t", state: "defined" };
  await assert.rejects(store.registerVm({ ...vm, uuid: "" }), /VM uuid must be a non-empty/);
  await assert.rejects(
    store.registerVm({ ...vm, labels: { a: 1 as unknown as string } }),
    TypeError,
  );
  await assert.rejects(
    store.registerVm({ ...vm, binding: { ...binding, sealedCounter: -1 } }),
    /sealedCounter must be an integer ≥ 0, got -1/,
  );
});

Deno.test("listVms() filters by tenant and state and sorts by name", async () => {
  using dir = tempDir();
  await using store = SqliteStore.openIn(dir.path);
  for (
    const [uuid, name, tenant, state] of [
      ["u3", "c", "acme", "running"],
      ["u1", "a", "acme", "paused"],
      ["u2", "b", "other", "running"],
    ]
  ) await store.registerVm({ uuid, name, tenant, state });
  assert.deepEqual((await store.listVms()).map((v) => v.name), ["a", "b", "c"]);
  assert.deepEqual((await store.listVms({ tenant: "acme" })).map((v) => v.name), ["a", "c"]);
  assert.deepEqual((await store.listVms({ state: "running" })).map((v) => v.name), ["b", "c"]);
});

Deno.test("updateVm() changes state with compare-and-set and stamps the time", async () => {
  using dir = tempDir();
  const { now, advance } = clock();
  await using store = SqliteStore.openIn(dir.path, { now });
  await store.registerVm({ uuid: UUID, name: "web-1", tenant: "t", state: "defined", binding });
  advance(5000);
  const running = await store.updateVm(UUID, { state: "running" }, { ifState: "defined" });
  assert.equal(running.state, "running");
  assert.equal(running.updatedAt.getTime() - running.createdAt.getTime(), 5000);
  assert.deepEqual(running.binding, binding, "fields not in the patch stay");
  await assert.rejects(store.updateVm(UUID, { state: "paused" }, { ifState: "defined" }), {
    code: "vm_state_conflict",
    message: 'Cannot update VM "web-1": its state is "running", not "defined"',
  });
  assert.equal((await store.getVm(UUID))?.state, "running");
  const unbound = await store.updateVm(UUID, { binding: null, labels: { x: "y" } });
  assert.equal(unbound.binding, null);
  assert.deepEqual(unbound.labels, { x: "y" });
  await assert.rejects(store.updateVm("nope", { state: "x" }), { code: "vm_not_found" });
});

Deno.test("measurements keep the latest per region and go with their VM", async () => {
  using dir = tempDir();
  await using store = SqliteStore.openIn(dir.path);
  await store.registerVm({ uuid: UUID, name: "web-1", tenant: "t", state: "running" });
  const at = (s: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, s));
  await store.recordMeasurements(UUID, [
    { region: "kernel_text", digest: "aa", reference: "aa", status: "ok", time: at(10) },
    { region: "idt", digest: "bb", reference: null, status: "missing", time: at(10) },
  ]);
  await store.recordMeasurements(UUID, [
    { region: "kernel_text", digest: "cc", reference: "aa", status: "differs", time: at(20) },
    { region: "idt", digest: "old", reference: null, status: "missing", time: at(5) },
  ]);
  const latest = await store.latestMeasurements(UUID);
  assert.deepEqual(latest.map((m) => [m.region, m.digest, m.status]), [
    ["idt", "bb", "missing"],
    ["kernel_text", "cc", "differs"],
  ]);
  await assert.rejects(store.recordMeasurements("nope", []), { code: "vm_not_found" });
  await store.removeVm(UUID);
  assert.deepEqual(await store.latestMeasurements(UUID), []);
  await assert.rejects(store.removeVm(UUID), { code: "vm_not_found" });
});

Deno.test("a VM whose labels column was corrupted reads as store_record_malformed", async () => {
  using dir = tempDir();
  const store = SqliteStore.openIn(dir.path);
  await store.registerVm({ uuid: UUID, name: "web-1", tenant: "t", state: "running" });
  await store.close();
  tamper(dir.db, `UPDATE vms SET labels = '{bad' WHERE uuid = '${UUID}'`);
  await using reopened = SqliteStore.openIn(dir.path);
  await assert.rejects(reopened.getVm(UUID), {
    code: "store_record_malformed",
    message: new RegExp(`Cannot read VM ${UUID}: labels is not valid JSON`),
  });
});

Deno.test("a store from a newer schema version is refused with a clear error", async () => {
  using dir = tempDir();
  await SqliteStore.openIn(dir.path).close();
  tamper(dir.db, `INSERT INTO schema_version VALUES (${SCHEMA_VERSION + 1}, 0)`);
  assert.throws(() => SqliteStore.openIn(dir.path), {
    code: "store_schema_too_new",
    message: new RegExp(`schema version ${SCHEMA_VERSION + 1} is newer than this vASP`),
  });
  assert.throws(() => SqliteStore.openIn(dir.path, { readOnly: true }), {
    code: "store_schema_too_new",
  });
});

Deno.test("a file that is not a database is refused as store_corrupt", () => {
  using dir = tempDir();
  Deno.writeTextFileSync(dir.db, "this is not SQLite ".repeat(300));
  assert.throws(() => SqliteStore.openIn(dir.path), {
    code: "store_corrupt",
    message: `Cannot open the store "${dir.db}": file is not a database`,
  });
});

Deno.test("a store file is left in WAL journal mode", () => {
  using dir = tempDir();
  using _store = SqliteStore.openIn(dir.path);
  const db = new DatabaseSync(dir.db);
  try {
    assert.equal(db.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
  } finally {
    db.close();
  }
});

Deno.test("read-only opening needs an existing store and writes nothing", async () => {
  using dir = tempDir();
  assert.throws(() => SqliteStore.openIn(dir.path, { readOnly: true }), {
    code: "store_not_found",
  });
  await SqliteStore.openIn(dir.path).close();
  await using store = SqliteStore.openIn(dir.path, { readOnly: true });
  await assert.rejects(
    store.registerVm({ uuid: UUID, name: "a", tenant: "t", state: "defined" }),
    /readonly/,
  );
});

Deno.test("close() is idempotent and later calls fail with store_closed", async () => {
  using dir = tempDir();
  const store = SqliteStore.openIn(dir.path);
  await Promise.all([store.close(), store.close()]);
  await store.close();
  await assert.rejects(store.listVms(), { code: "store_closed" });
  store[Symbol.dispose]();
});
