/**
 * `kill -9` of a real `vasp serve` in the middle of a decision load: every decision a client
 * saw answered is in the log after the restart, and the chain (with its checkpoints and their
 * anchor) verifies. No timing: the kill comes once a count of answers was reached.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SqliteStore } from "../src/store/mod.ts";
import { auditVerifyJson, decisionLoad } from "./fixtures/fault.ts";
import { event } from "./fixtures/http_app.ts";
import { startServe } from "./fixtures/serve_process.ts";
import { tempStateDir } from "./fixtures/state_dir.ts";

Deno.test("every decision answered before a kill -9 is in the log after the restart, and the log verifies", async () => {
  await using dir = await tempStateDir();
  const socket = join(dir.path, "vasp.sock");
  const serve = await startServe(["--state-dir", dir.path, "--no-tcp"]);
  const load = decisionLoad(socket, { clients: 16 });
  // Past a checkpoint (every 1000 records), so that the kill may fall in any part of it.
  await load.reached(1200);
  serve.child.kill("SIGKILL");
  const exit = await serve.failed();
  await load.stop();
  assert.equal(exit.status.signal, "SIGKILL");
  const answered = [...load.answered];
  assert.ok(answered.length >= 1200);

  const verified = await auditVerifyJson(dir.path);
  assert.equal(verified.code, 0, verified.output);
  {
    await using store = SqliteStore.openIn(dir.path, { readOnly: true });
    const logged = new Set<string>();
    for (let cursor: number | null | undefined = undefined;;) {
      const page = await store.queryAudit({ limit: 1000, cursor: cursor ?? undefined });
      for (const record of page.records) logged.add(record.decisionId);
      if ((cursor = page.nextCursor) === null) break;
    }
    const lost = answered.filter((id) => !logged.has(id));
    assert.deepEqual(lost, [], `${lost.length} of ${answered.length} answered decisions lost`);
  }

  // The server starts again on what the kill left, decides, and signs a checkpoint over it.
  const again = await startServe(["--state-dir", dir.path, "--no-tcp"]);
  try {
    using client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
    const answer = await fetch("http://localhost/v1/decide", {
      method: "POST",
      body: JSON.stringify(event("start")),
      client,
    });
    assert.equal(answer.status, 200);
    await answer.body?.cancel();
  } finally {
    const done = await again.stop();
    assert.equal(done.status.code, 0, done.stderr);
  }
  const after = await auditVerifyJson(dir.path);
  assert.equal(after.code, 0, after.output);
  assert.equal(after.result?.records_after_last_checkpoint, 0);
  assert.equal((after.result?.anchor as { status: string }).status, "matches");
});
