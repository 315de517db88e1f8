import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { SCHEMA_VERSION } from "./_sqlite_schema.ts";
import { tempDir } from "./testing.ts";
import { SqliteStore } from "./sqlite_store.ts";
import type { IntrospectionSettings } from "./store.ts";

const UUID = "7a1c2a9e-8d5b-4c3e-9f7a-1b2c3d4e5f60";
const SETTINGS: IntrospectionSettings = {
  memory: "/dev/shm/web-1",
  symbols: "/srv/System.map",
  qmp: "/run/web-1.qmp",
  intervalMs: 1000,
  below4g: 3 << 29,
};

Deno.test("a VM's introspection settings are kept, replaced and dropped with the VM record", async () => {
  using dir = tempDir();
  {
    await using store = SqliteStore.openIn(dir.path);
    const vm = await store.registerVm({
      uuid: UUID,
      name: "web-1",
      tenant: "",
      state: "running",
      introspection: SETTINGS,
    });
    assert.deepEqual(vm.introspection, SETTINGS);
    const moved = await store.updateVm(UUID, { state: "paused" });
    assert.deepEqual(moved.introspection, SETTINGS, "a patch without settings keeps them");
  }
  await using store = SqliteStore.openIn(dir.path);
  assert.deepEqual((await store.getVm(UUID))?.introspection, SETTINGS);
  const faster = await store.updateVm(UUID, { introspection: { ...SETTINGS, intervalMs: 250 } });
  assert.equal(faster.introspection?.intervalMs, 250);
  assert.equal((await store.updateVm(UUID, { introspection: null })).introspection, null);
});

Deno.test("settings with a missing, unknown or mistyped field are refused, naming it", async () => {
  using dir = tempDir();
  await using store = SqliteStore.openIn(dir.path);
  const bad: [unknown, RegExp][] = [
    [{ symbols: "/m", intervalMs: 1 }, /"memory" is required/],
    [{ ...SETTINGS, intervalMs: 0 }, /"intervalMs" must be a positive integer/],
    [{ ...SETTINGS, qmp: "" }, /"qmp" must be a non-empty string/],
    [{ ...SETTINGS, ramFile: "/x" }, /"ramFile" is not known/],
  ];
  for (const [introspection, message] of bad) {
    await assert.rejects(
      store.registerVm({
        uuid: UUID,
        name: "web-1",
        tenant: "",
        state: "defined",
        introspection: introspection as IntrospectionSettings,
      }),
      { name: "TypeError", message },
    );
  }
  assert.equal(await store.getVm(UUID), undefined);
});

Deno.test("a measurement keeps its detail, and a region that could not be measured has an empty digest", async () => {
  using dir = tempDir();
  await using store = SqliteStore.openIn(dir.path);
  await store.registerVm({ uuid: UUID, name: "web-1", tenant: "", state: "running" });
  const time = new Date(Date.UTC(2025, 0, 1));
  await store.recordMeasurements(UUID, [
    { region: "idt_table", digest: "", reference: "aa", status: "error", time, detail: "walk" },
    { region: "kernel_text", digest: "aa", reference: "aa", status: "ok", time },
  ]);
  assert.deepEqual(await store.latestMeasurements(UUID), [
    { region: "idt_table", digest: "", reference: "aa", status: "error", time, detail: "walk" },
    { region: "kernel_text", digest: "aa", reference: "aa", status: "ok", time },
  ]);
});

Deno.test("a store of the first schema version is migrated: its VMs have no settings and its measurements no detail", async () => {
  using dir = tempDir();
  {
    await using store = SqliteStore.openIn(dir.path);
    await store.registerVm({ uuid: UUID, name: "web-1", tenant: "", state: "running" });
    await store.recordMeasurements(UUID, [
      { region: "idt", digest: "aa", reference: null, status: "missing", time: new Date(0) },
    ]);
  }
  // Back to version 1, as a store written before this migration.
  const db = new DatabaseSync(dir.db);
  db.exec(
    "DROP TABLE boot_references; DROP TABLE snapshots; " +
      "ALTER TABLE vms DROP COLUMN introspection; ALTER TABLE measurements DROP COLUMN detail; " +
      "ALTER TABLE audit_checkpoints DROP COLUMN counter; " +
      "DELETE FROM schema_version WHERE version > 1",
  );
  db.close();
  await using store = SqliteStore.openIn(dir.path);
  assert.equal((await store.getVm(UUID))?.introspection, null);
  assert.equal((await store.latestMeasurements(UUID))[0]?.detail, undefined);
  const check = new DatabaseSync(dir.db, { readOnly: true });
  const version = check.prepare("SELECT max(version) AS v FROM schema_version").get();
  check.close();
  assert.equal(Number(version?.v), SCHEMA_VERSION);
});
