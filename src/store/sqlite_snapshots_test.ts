import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { SqliteStore } from "./sqlite_store.ts";
import { SCHEMA_VERSION } from "./_sqlite_schema.ts";
import { tamper, tempDir } from "./testing.ts";

const UUID = "4f1c2a9e-8d5b-4c3e-9f7a-1b2c3d4e5f60";
const OTHER = "0e4a1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b";
const snap = (name: string, counter: number) => ({
  name,
  instanceId: "inst-1",
  sealedState: new Uint8Array([counter, 1, 2]),
  sealedCounter: counter,
});

Deno.test("a snapshot's sealed state is kept by name, replaced under the same name and dropped", async () => {
  using dir = tempDir();
  let ms = Date.UTC(2025, 0, 1);
  await using store = SqliteStore.openIn(dir.path, { now: () => new Date(ms) });
  await store.registerVm({ uuid: UUID, name: "web-1", tenant: "t", state: "running" });
  await store.registerVm({ uuid: OTHER, name: "web-2", tenant: "t", state: "running" });
  assert.deepEqual(await store.keepSnapshot(UUID, snap("b", 3)), {
    kept: { ...snap("b", 3), createdAt: new Date(ms) },
  });
  assert.equal((await store.keepSnapshot(UUID, snap("a", 2))).replaced, undefined);
  await store.keepSnapshot(OTHER, snap("a", 9));
  assert.deepEqual(await store.listSnapshots(UUID), [
    { ...snap("a", 2), createdAt: new Date(ms) },
    { ...snap("b", 3), createdAt: new Date(ms) },
  ]);
  ms += 1000;
  const { replaced } = await store.keepSnapshot(UUID, snap("a", 5));
  assert.deepEqual(replaced, { ...snap("a", 2), createdAt: new Date(ms - 1000) });
  const [a] = await store.listSnapshots(UUID);
  assert.deepEqual(a, { ...snap("a", 5), createdAt: new Date(ms) });
  assert.equal((await store.dropSnapshot(UUID, "a"))?.sealedCounter, 5);
  assert.equal(await store.dropSnapshot(UUID, "a"), undefined);
  assert.deepEqual((await store.listSnapshots(UUID)).map((s) => s.name), ["b"]);
  assert.deepEqual((await store.listSnapshots(OTHER)).map((s) => s.sealedCounter), [9]);
  assert.deepEqual(await store.listSnapshots("no-such-vm"), []);
});

Deno.test("snapshots go with their VM, and one is kept only for a registered VM", async () => {
  using dir = tempDir();
  await using store = SqliteStore.openIn(dir.path);
  await assert.rejects(store.keepSnapshot(UUID, snap("a", 1)), {
    code: "vm_not_found",
    message: `No VM with UUID ${UUID}`,
  });
  await store.registerVm({ uuid: UUID, name: "web-1", tenant: "t", state: "running" });
  await store.keepSnapshot(UUID, snap("a", 1));
  await store.removeVm(UUID);
  await store.registerVm({ uuid: UUID, name: "web-1", tenant: "t", state: "running" });
  assert.deepEqual(await store.listSnapshots(UUID), []);
});

Deno.test("keepSnapshot() rejects a malformed snapshot with TypeError", async () => {
  using dir = tempDir();
  await using store = SqliteStore.openIn(dir.path);
  await store.registerVm({ uuid: UUID, name: "web-1", tenant: "t", state: "running" });
  await assert.rejects(store.keepSnapshot(UUID, snap("", 1)), /name must be a non-empty/);
  await assert.rejects(
    store.keepSnapshot(UUID, { ...snap("a", 1), sealedState: new Uint8Array() }),
    /sealedState must be non-empty bytes/,
  );
  await assert.rejects(
    store.keepSnapshot(UUID, snap("a", -1)),
    /sealedCounter must be an integer ≥ 0, got -1/,
  );
  assert.deepEqual(await store.listSnapshots(UUID), []);
});

Deno.test("a snapshot row edited to hold no blob reads as store_record_malformed", async () => {
  using dir = tempDir();
  {
    await using store = SqliteStore.openIn(dir.path);
    await store.registerVm({ uuid: UUID, name: "web-1", tenant: "t", state: "running" });
    await store.keepSnapshot(UUID, snap("a", 1));
  }
  tamper(dir.db, "UPDATE snapshots SET sealed_state = 'text'");
  await using store = SqliteStore.openIn(dir.path);
  await assert.rejects(store.listSnapshots(UUID), {
    code: "store_record_malformed",
    message: `Cannot read snapshot "a" of VM ${UUID}: sealed_state is not a blob`,
  });
});

Deno.test("a store of schema version 2 is migrated: its VMs have no snapshots", async () => {
  using dir = tempDir();
  {
    await using store = SqliteStore.openIn(dir.path);
    await store.registerVm({ uuid: UUID, name: "web-1", tenant: "t", state: "running" });
  }
  // Back to version 2, as a store written before this migration.
  tamper(
    dir.db,
    "DROP TABLE boot_references; DROP TABLE snapshots; " +
      "ALTER TABLE audit_checkpoints DROP COLUMN counter; " +
      "DELETE FROM schema_version WHERE version > 2",
  );
  {
    await using store = SqliteStore.openIn(dir.path);
    assert.deepEqual(await store.listSnapshots(UUID), []);
    await store.keepSnapshot(UUID, snap("a", 1));
    assert.equal((await store.listSnapshots(UUID)).length, 1);
  }
  const check = new DatabaseSync(dir.db, { readOnly: true });
  const version = check.prepare("SELECT max(version) AS v FROM schema_version").get();
  check.close();
  assert.equal(Number(version?.v), SCHEMA_VERSION);
  assert.equal(SCHEMA_VERSION, 5);
});
