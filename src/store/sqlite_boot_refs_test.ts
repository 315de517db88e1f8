import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { SqliteStore } from "./sqlite_store.ts";
import { SCHEMA_VERSION } from "./_sqlite_schema.ts";
import { tamper, tempDir } from "./testing.ts";

const UUID = "4f1c2a9e-8d5b-4c3e-9f7a-1b2c3d4e5f60";
const kernel = { name: "kernel", path: "/boot/vmlinuz", digest: "ab".repeat(32) };
const disk = { name: "disk:vda", path: "/img/a.img", digest: "cd".repeat(32) };

Deno.test("a VM's boot references are replaced as a whole and go with the VM", async () => {
  using dir = tempDir();
  await using store = SqliteStore.openIn(dir.path);
  await store.registerVm({ uuid: UUID, name: "web-1", tenant: "t", state: "defined" });
  assert.deepEqual(await store.getBootReferences(UUID), []);
  assert.deepEqual(await store.setBootReferences(UUID, [kernel, disk]), [disk, kernel]);
  assert.deepEqual(await store.setBootReferences(UUID, [kernel]), [kernel]);
  await assert.rejects(() => store.setBootReferences(UUID, [kernel, kernel]), TypeError);
  await assert.rejects(
    () => store.setBootReferences(UUID, [{ ...kernel, digest: "sha256:ab" }]),
    TypeError,
  );
  await assert.rejects(
    () => store.setBootReferences(UUID, [{ ...kernel, name: "bios" }]),
    TypeError,
  );
  assert.deepEqual(await store.getBootReferences(UUID), [kernel], "a refused set changes nothing");
  await assert.rejects(
    () => store.setBootReferences("0e4a1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b", [kernel]),
    { code: "vm_not_found" },
  );
  await store.removeVm(UUID);
  assert.deepEqual(await store.getBootReferences(UUID), []);
});

Deno.test("a store without the boot references table is migrated: its VMs have none", async () => {
  using dir = tempDir();
  {
    await using store = SqliteStore.openIn(dir.path);
    await store.registerVm({ uuid: UUID, name: "web-1", tenant: "t", state: "running" });
  }
  tamper(dir.db, "DROP TABLE boot_references; DELETE FROM schema_version WHERE version > 4");
  {
    await using store = SqliteStore.openIn(dir.path);
    assert.deepEqual(await store.getBootReferences(UUID), []);
    await store.setBootReferences(UUID, [kernel]);
  }
  const check = new DatabaseSync(dir.db, { readOnly: true });
  const version = check.prepare("SELECT max(version) AS v FROM schema_version").get();
  check.close();
  assert.equal(Number(version?.v), SCHEMA_VERSION);
});
