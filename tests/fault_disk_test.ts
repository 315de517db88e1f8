/**
 * A full disk under the state directory (a small tmpfs, filled): decisions fail closed with 503
 * rather than answer what was not recorded, nothing half-written is left (the chain verifies,
 * every decision answered 200 is in the log, none answered 503 is), and decisions are answered
 * again once space returns — without a restart.
 */
import assert from "node:assert/strict";
import { SqliteStore } from "../src/store/mod.ts";
import { decisionLoad, fill, mountTmpfs } from "./fixtures/fault.ts";
import { event } from "./fixtures/http_app.ts";
import { startVaspServer } from "./fixtures/vasp_server.ts";

Deno.test("with the state directory's disk full, decisions fail closed with 503, nothing is half-written, and they come back with the space", async () => {
  await using disk = await mountTmpfs("24m");
  const dir = disk.path;
  const refused: string[] = [];
  const answered: string[] = [];
  let filler: string;
  {
    await using s = await startVaspServer(dir);
    const socket = s.server.listeners.socket!;
    const warm = decisionLoad(socket, { clients: 4 });
    await warm.reached(50);
    await warm.stop();
    answered.push(...warm.answered);

    filler = fill(dir);
    // Decide until the log needs space it cannot have: bounded by a count, not a clock.
    for (let i = 0; i < 20_000 && refused.length < 20; i++) {
      const answer = await s.call("POST", "/v1/decide", { body: event(i % 2 ? "pause" : "start") });
      if (answer.status === 200) answered.push(answer.json.decision_id);
      else {
        assert.equal(answer.status, 503, JSON.stringify(answer.json));
        assert.equal(answer.json.code, "audit_write_failed");
        refused.push(answer.json.decision_id);
      }
    }
    assert.equal(refused.length, 20, "a full disk refused decisions");
    const ready = await s.call("GET", "/readyz");
    assert.equal(ready.status, 503, JSON.stringify(ready.json));
    assert.equal(ready.json.checks.store, false, "not ready while records cannot be written");

    // Space returns: the same server answers again.
    await Deno.remove(filler);
    const back = await s.call("POST", "/v1/decide", { body: event("start") });
    assert.equal(back.status, 200, JSON.stringify(back.json));
    answered.push(back.json.decision_id);
    assert.equal((await s.call("GET", "/readyz")).status, 200);
  }

  await using store = SqliteStore.openIn(dir, { readOnly: true });
  const verified = await store.verifyAudit();
  assert.equal(verified.ok, true, verified.problem?.message);
  const logged = new Map<string, string>();
  let cursor: number | null = null;
  do {
    const page = await store.queryAudit({ limit: 1000, cursor: cursor ?? undefined });
    for (const r of page.records) logged.set(r.decisionId, r.result);
    cursor = page.nextCursor;
  } while (cursor !== null);
  assert.deepEqual(answered.filter((id) => !logged.has(id)), [], "every answered decision kept");
  assert.deepEqual(refused.filter((id) => logged.get(id) === "allow"), [], "no refused one kept");
});
