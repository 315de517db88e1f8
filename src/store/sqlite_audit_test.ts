import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { SqliteStore } from "./sqlite_store.ts";
import { entry, keyPair, storeWith, tamper, tempDir } from "./testing.ts";

Deno.test("appended decisions get seqs 1, 2, 3 … and read back whole", async () => {
  using dir = tempDir();
  await using store = await storeWith(dir.path, 5);
  const { records, nextCursor } = await store.queryAudit();
  assert.deepEqual(records.map((r) => r.seq), [1, 2, 3, 4, 5]);
  assert.equal(nextCursor, null);
  const fifth = records[4];
  assert.deepEqual(
    { ...fifth, seq: undefined, prevHash: undefined, hash: undefined },
    { ...entry(5), seq: undefined, prevHash: undefined, hash: undefined },
  );
  assert.equal(fifth.prevHash, records[3].hash);
});

Deno.test("queryAudit() pages by cursor in both directions", async () => {
  using dir = tempDir();
  await using store = await storeWith(dir.path, 7);
  const seen: number[] = [];
  let cursor: number | undefined;
  do {
    const page = await store.queryAudit({ limit: 3, cursor });
    seen.push(...page.records.map((r) => r.seq));
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7]);
  const newest = await store.queryAudit({ limit: 2, order: "desc" });
  assert.deepEqual(newest.records.map((r) => r.seq), [7, 6]);
  const older = await store.queryAudit({ limit: 2, order: "desc", cursor: newest.nextCursor! });
  assert.deepEqual(older.records.map((r) => r.seq), [5, 4]);
});

Deno.test("queryAudit() filters by VM, time range and result", async () => {
  using dir = tempDir();
  await using store = await storeWith(dir.path, 12);
  const byVm = await store.queryAudit({ vmUuid: "vm-1" });
  assert.deepEqual(byVm.records.map((r) => r.seq), [1, 4, 7, 10]);
  const window = await store.queryAudit({
    from: new Date(Date.UTC(2025, 0, 1, 0, 0, 4)),
    to: new Date(Date.UTC(2025, 0, 1, 0, 0, 8)),
  });
  assert.deepEqual(window.records.map((r) => r.seq), [4, 5, 6, 7]);
  const denied = await store.queryAudit({ result: "deny", vmUuid: "vm-1" });
  assert.deepEqual(denied.records.map((r) => r.seq), [10]);
  await assert.rejects(store.queryAudit({ limit: 0 }), RangeError);
});

Deno.test("the chain continues across close and reopen", async () => {
  using dir = tempDir();
  await (await storeWith(dir.path, 3)).close();
  await using store = SqliteStore.openIn(dir.path);
  const fourth = await store.appendAudit(entry(4));
  assert.equal(fourth.seq, 4);
  const third = (await store.queryAudit({ cursor: 2, limit: 1 })).records[0];
  assert.equal(fourth.prevHash, third.hash);
  assert.equal((await store.verifyAudit()).ok, true);
});

Deno.test("concurrent appends share commits, get gapless seqs, and resolve once durable", async () => {
  using dir = tempDir();
  let flushes = 0;
  await using store = SqliteStore.openIn(dir.path, {
    groupCommit: { schedule: (flush) => queueMicrotask(() => (flushes++, flush())) },
  });
  const reader = new DatabaseSync(dir.db, { readOnly: true });
  try {
    const visibleAtResolve: boolean[] = [];
    const records = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        store.appendAudit(entry(i + 1)).then((record) => {
          // Another connection sees only committed data.
          const row = reader.prepare("SELECT seq FROM audit WHERE decision_id = ?")
            .get(record.decisionId);
          visibleAtResolve.push(row?.seq === record.seq);
          return record;
        })),
    );
    assert.deepEqual(records.map((r) => r.seq), Array.from({ length: 100 }, (_, i) => i + 1));
    assert.equal(visibleAtResolve.every(Boolean), true);
    assert.equal(flushes, 1, "100 appends made in one task share one commit");
  } finally {
    reader.close();
  }
  assert.equal((await store.verifyAudit()).recordsChecked, 100);
});

Deno.test("a failed batch rejects every append in it and leaves the chain whole", async () => {
  using dir = tempDir();
  await using store = await storeWith(dir.path, 2);
  const batch = [
    store.appendAudit(entry(3)),
    store.appendAudit(entry(2)), // its decision ID is taken: the batch's INSERT fails
    store.appendAudit(entry(4)),
  ];
  for (const append of batch) {
    await assert.rejects(append, {
      code: "audit_write_failed",
      message: /Cannot record 3 decision\(s\) \(dec-3, dec-2, dec-4\): UNIQUE constraint/,
    });
  }
  const after = await store.appendAudit(entry(3));
  assert.equal(after.seq, 3);
  const { records } = await store.queryAudit();
  assert.deepEqual(records.map((r) => r.decisionId), ["dec-1", "dec-2", "dec-3"]);
  assert.equal((await store.verifyAudit()).ok, true);
});

Deno.test("a malformed entry is refused alone, before it can join a batch", async () => {
  using dir = tempDir();
  await using store = SqliteStore.openIn(dir.path);
  const good = store.appendAudit(entry(1));
  const bad = store.appendAudit(entry(2, { result: "perhaps" as "allow" }));
  await assert.rejects(bad, TypeError);
  assert.equal((await good).seq, 1);
});

Deno.test("a record with a malformed JSON column is named by its seq", async () => {
  using dir = tempDir();
  await (await storeWith(dir.path, 3)).close();
  tamper(dir.db, "UPDATE audit SET reasons = '[{' WHERE seq = 2");
  await using store = SqliteStore.openIn(dir.path);
  await assert.rejects(store.queryAudit(), {
    code: "audit_record_malformed",
    message: /Cannot read audit record 2: reasons is not valid JSON/,
  });
});

Deno.test("the log refuses UPDATE and DELETE through SQL", async () => {
  using dir = tempDir();
  await (await storeWith(dir.path, 1)).close();
  const db = new DatabaseSync(dir.db);
  try {
    assert.throws(() => db.exec("UPDATE audit SET result = 'deny'"), /append-only/);
    assert.throws(() => db.exec("DELETE FROM audit"), /append-only/);
  } finally {
    db.close();
  }
});

Deno.test("a checkpoint is signed every N records and at close", async () => {
  using dir = tempDir();
  const { signer } = await keyPair();
  const store = await storeWith(dir.path, 7, { signer, checkpointEvery: 3 });
  await store.close();
  const db = new DatabaseSync(dir.db, { readOnly: true });
  try {
    const seqs = db.prepare("SELECT seq FROM audit_checkpoints ORDER BY seq").all();
    assert.deepEqual(seqs.map((r) => r.seq), [3, 6, 7]);
  } finally {
    db.close();
  }
  await using reopened = SqliteStore.openIn(dir.path, { signer, checkpointEvery: 3 });
  const result = await reopened.verifyAudit();
  assert.equal(result.checkpointsChecked, 3);
  assert.equal(result.recordsAfterLastCheckpoint, 0);
  assert.equal(await reopened.checkpoint(), undefined, "the head already has one");
});

Deno.test("a failing signer is reported and does not fail the appends", async () => {
  using dir = tempDir();
  const { signer } = await keyPair();
  const errors: unknown[] = [];
  const broken = { ...signer, sign: () => Promise.reject(new Error("ASP unreachable")) };
  await using store = SqliteStore.openIn(dir.path, {
    signer: broken,
    checkpointEvery: 2,
    onCheckpointError: (error) => errors.push(error),
  });
  const records = await Promise.all([1, 2, 3].map((i) => store.appendAudit(entry(i))));
  assert.deepEqual(records.map((r) => r.seq), [1, 2, 3]);
  await assert.rejects(store.checkpoint(), /ASP unreachable/);
  assert.match(String(errors[0]), /ASP unreachable/);
  assert.equal((await store.verifyAudit()).lastCheckpointSeq, null);
});

Deno.test("close() commits appends still queued before it closes", async () => {
  using dir = tempDir();
  const store = SqliteStore.openIn(dir.path);
  const pending = [store.appendAudit(entry(1)), store.appendAudit(entry(2))];
  await store.close();
  assert.deepEqual((await Promise.all(pending)).map((r) => r.seq), [1, 2]);
  await assert.rejects(store.appendAudit(entry(3)), { code: "store_closed" });
  await using reopened = SqliteStore.openIn(dir.path, { readOnly: true });
  assert.equal((await reopened.verifyAudit()).recordsChecked, 2);
});

Deno.test("disposing synchronously rejects queued appends instead of losing them silently", async () => {
  using dir = tempDir();
  const store = SqliteStore.openIn(dir.path);
  const queued = store.appendAudit(entry(1));
  store[Symbol.dispose]();
  await assert.rejects(queued, { code: "store_closed" });
  await using reopened = SqliteStore.openIn(dir.path, { readOnly: true });
  assert.equal((await reopened.verifyAudit()).recordsChecked, 0);
});
