import assert from "node:assert/strict";
import { join } from "node:path";
import { SqliteStore } from "../store/mod.ts";
import { watchVmWrites } from "./monitor.ts";

Deno.test("watchVmWrites() tells the UUID of each VM registered, updated or removed, and nothing else", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vasp-watch-" });
  try {
    const told: string[] = [];
    await using store = watchVmWrites(
      SqliteStore.open(join(dir, "vasp.db")),
      (uuid) => told.push(uuid),
    );
    const uuid = "0b6c2a4e-1f3d-4c5b-8a9e-7d6f5e4c3b2a";
    await store.registerVm({ uuid, name: "web-1", tenant: "t", state: "defined" });
    await store.updateVm(uuid, { state: "running" });
    assert.equal((await store.getVm(uuid))?.state, "running");
    assert.equal((await store.listVms()).length, 1);
    await store.recordMeasurements(uuid, []);
    await assert.rejects(store.updateVm("nope", { state: "running" }));
    await store.removeVm(uuid);
    assert.deepEqual(told, [uuid, uuid, uuid], "a failed write tells nothing");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
