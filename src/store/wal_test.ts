import assert from "node:assert/strict";
import { join } from "node:path";
import { WalSync } from "./_wal_sync.ts";
import { SqliteStore } from "./sqlite_store.ts";
import type { AuditEntry } from "./audit.ts";

function entry(i: number): AuditEntry {
  return {
    decisionId: `d-${i}`,
    time: new Date(),
    vm: { uuid: "4f1c2a9e-8d5b-4c3e-9f7a-1b2c3d4e5f60", name: "web-1" },
    operation: "pause",
    source: "api",
    inputDigest: "0".repeat(64),
    policyRevision: "r",
    result: "allow",
    reasons: [],
    actions: [],
    engineLatencyUs: 1,
  };
}

Deno.test("WalSync covers every request made before a sync with one fsync, and fails for good once the file is gone", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const db = join(dir, "x.db");
    await Deno.writeTextFile(`${db}-wal`, "frames");
    const wal = new WalSync(db);
    await Promise.all([wal.sync(), wal.sync(), wal.sync()]);
    wal.closeNow();
    await Deno.remove(`${db}-wal`);
    await assert.rejects(wal.sync(), /Cannot sync ".*x\.db-wal"/);
    // Sticky: a disk that refused a write once is not trusted again.
    await Deno.writeTextFile(`${db}-wal`, "frames");
    await assert.rejects(wal.sync(), /Cannot sync/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("WalSync of an in-memory database does nothing", async () => {
  await new WalSync(":memory:").sync();
});

Deno.test("the worker's checkpoints keep the log small while the server appends", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = SqliteStore.openIn(dir);
    let peak = 0;
    for (let round = 0; round < 40; round++) {
      await Promise.all(
        Array.from({ length: 50 }, (_, i) => store.appendAudit(entry(round * 50 + i))),
      );
      peak = Math.max(peak, (await Deno.stat(join(dir, "vasp.db-wal"))).size);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Without checkpoints the log would hold all 2000 records (several MB); the worker copies
    // them into the database file and the writer restarts the log in place.
    const db = await Deno.stat(join(dir, "vasp.db"));
    assert.ok(db.size > 500_000, `records reached the database file (${db.size} bytes)`);
    assert.ok(peak < 4 * 1024 * 1024, `log peaked at ${peak} bytes`);
    await store.close();
    const reopened = SqliteStore.openIn(dir, { readOnly: true });
    assert.equal((await reopened.verifyAudit()).recordsChecked, 2000);
    await reopened.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
