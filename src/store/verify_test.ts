import assert from "node:assert/strict";
import { chainRecord, checkEntry } from "./audit.ts";
import { canonicalJson } from "./canonical_json.ts";
import { ecdsaP256Verifier } from "./checkpoint.ts";
import { SqliteStore } from "./sqlite_store.ts";
import { entry, keyPair, resignCheckpoints, storeWith, tamper, tempDir } from "./testing.ts";
import type { AuditRecord } from "./audit.ts";

/** Writes a log of `n` records (checkpoints every 4 with a signer), closes it, runs `sql`. */
async function tampered(
  dir: { path: string; db: string },
  sql: string | ((records: AuditRecord[]) => string),
  options: { n?: number; signer?: boolean } = {},
) {
  const signer = options.signer ? (await keyPair()).signer : undefined;
  const store = await storeWith(dir.path, options.n ?? 10, { signer, checkpointEvery: 4 });
  const { records } = await store.queryAudit({ limit: 1000 });
  await store.close();
  tamper(dir.db, typeof sql === "string" ? sql : sql(records));
  await using reopened = SqliteStore.openIn(dir.path, { readOnly: true });
  return await reopened.verifyAudit();
}

/** SQL inserting `record` as a row. */
function insertSql(r: AuditRecord): string {
  const q = (s: string) => `'${s.replaceAll("'", "''")}'`;
  return `INSERT INTO audit VALUES (${r.seq}, ${q(r.decisionId)}, ${r.time.getTime()}, ` +
    `${q(r.vm.uuid)}, ${q(r.vm.name)}, ${q(r.operation)}, ${q(r.source)}, ` +
    `${q(r.inputDigest)}, ${q(r.policyRevision)}, ${q(r.result)}, ` +
    `${q(canonicalJson(r.reasons))}, ${q(canonicalJson(r.actions))}, ${r.engineLatencyUs}, ` +
    `${q(r.prevHash)}, ${q(r.hash)});`;
}

Deno.test("a clean log verifies, with and without a trusted key", async () => {
  using dir = tempDir();
  const { pair, signer } = await keyPair();
  await using store = await storeWith(dir.path, 10, { signer, checkpointEvery: 4 });
  await store.checkpoint();
  const recorded = await store.verifyAudit();
  assert.deepEqual(recorded, {
    ok: true,
    recordsChecked: 10,
    checkpointsChecked: 3,
    lastCheckpointSeq: 10,
    recordsAfterLastCheckpoint: 0,
    signatureKey: "recorded",
    anchor: null,
    problem: null,
  });
  const given = await store.verifyAudit({ verifier: await ecdsaP256Verifier(pair.publicKey) });
  assert.equal(given.ok, true);
  assert.equal(given.signatureKey, "given");
});

Deno.test("an empty log verifies", async () => {
  using dir = tempDir();
  await using store = SqliteStore.openIn(dir.path);
  const result = await store.verifyAudit();
  assert.equal(result.ok, true);
  assert.equal(result.recordsChecked, 0);
  assert.equal(result.signatureKey, "none");
});

Deno.test("verify names a modified record", async () => {
  using dir = tempDir();
  const result = await tampered(dir, "UPDATE audit SET result = 'allow' WHERE seq = 5");
  assert.deepEqual(result.problem, {
    seq: 5,
    kind: "hash_mismatch",
    message: "record 5: hash mismatch (modified)",
  });
  assert.equal(result.ok, false);
  assert.equal(result.recordsChecked, 4);
});

Deno.test("verify names the record after one modified and re-hashed", async () => {
  using dir = tempDir();
  const result = await tampered(dir, (records) => {
    const forged = chainRecord(5, records[3].hash, checkEntry({ ...records[4], result: "allow" }));
    return `UPDATE audit SET result = 'allow', hash = '${forged.hash}' WHERE seq = 5`;
  });
  assert.equal(result.problem?.message, "record 6: prev_hash does not match record 5");
});

Deno.test("verify names a deleted record", async () => {
  using dir = tempDir();
  const middle = await tampered(dir, "DELETE FROM audit WHERE seq = 5");
  assert.deepEqual(middle.problem, {
    seq: 5,
    kind: "gap",
    message: "record 5 missing (gap after 4)",
  });
});

Deno.test("verify names deleted records at the start and in a run", async () => {
  using dir = tempDir();
  const first = await tampered(dir, "DELETE FROM audit WHERE seq = 1");
  assert.equal(first.problem?.message, "record 1 missing (the log starts at record 2)");
  using other = tempDir();
  const run = await tampered(other, "DELETE FROM audit WHERE seq IN (5, 6)");
  assert.equal(run.problem?.message, "records 5–6 missing (gap after 4)");
});

Deno.test("verify names the first record after an inserted one", async () => {
  using dir = tempDir();
  const result = await tampered(dir, (records) => {
    const forged = chainRecord(5, records[3].hash, checkEntry(entry(99)));
    return "UPDATE audit SET seq = seq + 1000 WHERE seq >= 5; " +
      "UPDATE audit SET seq = seq - 999 WHERE seq >= 1000; " + insertSql(forged);
  });
  assert.deepEqual(result.problem, {
    seq: 6,
    kind: "out_of_place",
    message: "record 6: hash mismatch and prev_hash does not match record 5 " +
      "(reordered, inserted or renumbered)",
  });
});

Deno.test("verify names a record appended behind the store's back", async () => {
  using dir = tempDir();
  const result = await tampered(dir, (records) => {
    const forged = chainRecord(11, records[9].hash, checkEntry(entry(11)));
    return insertSql({ ...forged, result: "deny" });
  });
  assert.equal(result.problem?.message, "record 11: hash mismatch (modified)");
});

Deno.test("verify names the first of two swapped records", async () => {
  using dir = tempDir();
  const result = await tampered(
    dir,
    "UPDATE audit SET seq = -5 WHERE seq = 5; UPDATE audit SET seq = 5 WHERE seq = 6; " +
      "UPDATE audit SET seq = 6 WHERE seq = -5;",
  );
  assert.equal(result.problem?.seq, 5);
  assert.equal(result.problem?.kind, "out_of_place");
});

Deno.test("verify names malformed and out-of-range columns by seq", async () => {
  using dir = tempDir();
  const json = await tampered(dir, "UPDATE audit SET actions = 'not json' WHERE seq = 3");
  assert.equal(json.problem?.kind, "malformed");
  assert.match(json.problem!.message, /^record 3: actions is not valid JSON/);
  using other = tempDir();
  const big = await tampered(other, "UPDATE audit SET time_ms = 9223372036854775807 WHERE seq = 7");
  assert.equal(
    big.problem?.message,
    "record 7: time_ms is not an integer in range (9223372036854775807)",
  );
  using third = tempDir();
  const typed = await tampered(third, "UPDATE audit SET decision_id = x'00' WHERE seq = 2");
  assert.equal(typed.problem?.message, "record 2: decision_id is not text");
});

Deno.test("a log rewritten and re-hashed in full is caught by its checkpoint", async () => {
  using dir = tempDir();
  const rewrite = (records: AuditRecord[]) => {
    let prev = records[1].hash;
    return "DELETE FROM audit WHERE seq >= 3; " + records.slice(2).map((r) => {
      const forged = chainRecord(r.seq, prev, checkEntry({ ...r, result: "error" }));
      prev = forged.hash;
      return insertSql(forged);
    }).join("\n");
  };
  const signed = await tampered(dir, rewrite, { signer: true });
  assert.equal(signed.problem?.kind, "checkpoint_head");
  assert.match(signed.problem!.message, /^checkpoint at record 4: head hash does not match/);
  // Without checkpoints nothing in the file can tell: docs/audit.md says so.
  using other = tempDir();
  assert.equal((await tampered(other, rewrite)).ok, true);
});

Deno.test("verify catches a checkpoint whose signature was altered", async () => {
  using dir = tempDir();
  const result = await tampered(
    dir,
    "UPDATE audit_checkpoints SET signature = zeroblob(64) WHERE seq = 8",
    { signer: true },
  );
  assert.deepEqual(result.problem, {
    seq: 8,
    kind: "checkpoint_signature",
    message: "checkpoint at record 8: signature invalid",
  });
  assert.equal(result.checkpointsChecked, 1);
});

Deno.test("verify reports a checkpoint row of the wrong shape as malformed, not a crash", async () => {
  using dir = tempDir();
  const result = await tampered(
    dir,
    "UPDATE audit_checkpoints SET signature = 'forged' WHERE seq = 4",
    { signer: true },
  );
  assert.deepEqual(result.problem, {
    seq: 4,
    kind: "malformed",
    message: "checkpoint at record 4: signature is not a blob",
  });
});

Deno.test("verify catches a tail deleted up to the last checkpoint, not beyond it", async () => {
  using dir = tempDir();
  const result = await tampered(dir, "DELETE FROM audit WHERE seq > 8", { signer: true });
  assert.deepEqual(result.problem, {
    seq: 10,
    kind: "checkpoint_beyond_end",
    message: "checkpoint at record 10: the log ends at record 8 (records 9–10 deleted)",
  });
  using other = tempDir();
  const both = await tampered(
    other,
    "DELETE FROM audit WHERE seq > 8; DELETE FROM audit_checkpoints WHERE seq > 8",
    { signer: true },
  );
  assert.equal(both.ok, true, "a tail deleted with its checkpoints looks like a shorter log");
  assert.equal(both.lastCheckpointSeq, 8);
});

Deno.test("a checkpoint re-signed with another key passes the recorded key, not a trusted one", async () => {
  using dir = tempDir();
  const { pair, signer } = await keyPair();
  const mallory = await keyPair();
  const store = await storeWith(dir.path, 4, { signer, checkpointEvery: 4 });
  await store.close();
  await resignCheckpoints(dir.db, mallory.signer);
  await using reopened = SqliteStore.openIn(dir.path, { readOnly: true });
  assert.equal((await reopened.verifyAudit()).ok, true);
  const trusted = await reopened.verifyAudit({
    verifier: await ecdsaP256Verifier(pair.publicKey),
  });
  assert.equal(trusted.problem?.message, "checkpoint at record 4: signature invalid");
});
