import assert from "node:assert/strict";
import { copyFileSync } from "node:fs";
import { type CheckpointAnchor, checkpointMessage, ecdsaP256Verifier } from "./checkpoint.ts";
import { SqliteStore } from "./sqlite_store.ts";
import { entry, keyPair, storeWith, tamper, tempDir } from "./testing.ts";

/** An anchor held in memory (the ASP's counter in production), that can be made to fail. */
function memoryAnchor(): CheckpointAnchor & { value: number; failAdvances: number } {
  return {
    value: 0,
    failAdvances: 0,
    read() {
      return this.value;
    },
    advance() {
      if (this.failAdvances > 0) {
        this.failAdvances--;
        throw new Error("injected: the ASP state cannot be written");
      }
      return ++this.value;
    },
  };
}

/** A closed store of `n` records, checkpoints every 4 and at close, anchored. */
async function anchoredLog(dir: { path: string }, n: number) {
  const { pair, signer } = await keyPair();
  const anchor = memoryAnchor();
  await (await storeWith(dir.path, n, { signer, anchor, checkpointEvery: 4 })).close();
  return { anchor, signer, verifier: await ecdsaP256Verifier(pair.publicKey) };
}

async function verifyWith(dir: { path: string }, anchorCounter: number | undefined) {
  await using store = SqliteStore.openIn(dir.path, { readOnly: true });
  return await store.verifyAudit({ anchorCounter });
}

Deno.test("each checkpoint carries the anchor's next value under its signature, and advances it", async () => {
  using dir = tempDir();
  const { anchor, verifier } = await anchoredLog(dir, 10);
  // Checkpoints at 4, 8 and 10 (close).
  assert.equal(anchor.value, 3);
  await using store = SqliteStore.openIn(dir.path, { readOnly: true });
  const result = await store.verifyAudit({ verifier, anchorCounter: anchor.value });
  assert.equal(result.ok, true, result.problem?.message);
  assert.equal(result.checkpointsChecked, 3);
  assert.deepEqual(result.anchor, {
    counter: 3,
    checkpointCounter: 3,
    checkpointSeq: 10,
    status: "matches",
  });
  // The counter is signed: changing it breaks the signature.
  tamper(dir.db, "UPDATE audit_checkpoints SET counter = 9 WHERE seq = 10");
  const changed = await store.verifyAudit({ verifier, anchorCounter: 9 });
  assert.equal(changed.problem?.kind, "checkpoint_signature");
  assert.match(
    new TextDecoder().decode(
      checkpointMessage({ seq: 1, headHash: "ab", time: new Date(0), counter: 2 }),
    ),
    /^\{"counter":2,"head":"ab","seq":1,"time":"1970-01-01T00:00:00\.000Z","type":"vasp\.audit\.checkpoint\.v2"\}$/,
  );
});

Deno.test("a tail cut together with its checkpoints is caught by the anchor (and not without it)", async () => {
  using dir = tempDir();
  const { anchor } = await anchoredLog(dir, 10);
  tamper(dir.db, "DELETE FROM audit WHERE seq > 8; DELETE FROM audit_checkpoints WHERE seq > 8");
  assert.equal((await verifyWith(dir, undefined)).ok, true, "the chain alone cannot tell");
  const result = await verifyWith(dir, anchor.value);
  assert.equal(result.ok, false);
  assert.deepEqual(result.problem, {
    seq: 8,
    kind: "anchor_behind",
    message: "the newest checkpoint (record 8) carries counter 2, but the ASP's audit counter " +
      "is 3: 1 newer checkpoint(s) and the records they covered are gone (the tail was cut), " +
      "or the database is an older copy",
  });
  assert.equal(result.anchor?.status, "behind");
});

Deno.test("deleting only the newest checkpoint, or every checkpoint, is caught by the anchor", async () => {
  using dir = tempDir();
  const { anchor } = await anchoredLog(dir, 10);
  tamper(dir.db, "DELETE FROM audit_checkpoints WHERE seq = 10");
  assert.equal((await verifyWith(dir, anchor.value)).problem?.kind, "anchor_behind");
  tamper(dir.db, "DELETE FROM audit_checkpoints");
  const none = await verifyWith(dir, anchor.value);
  assert.equal(none.problem?.kind, "anchor_behind");
  assert.match(none.problem!.message, /^there is no checkpoint, but the ASP's audit counter is 3/);
});

Deno.test("an older copy of the database is caught by the anchor", async () => {
  using dir = tempDir();
  const { signer } = await keyPair();
  const anchor = memoryAnchor();
  const store = await storeWith(dir.path, 4, { signer, anchor, checkpointEvery: 4 });
  await store.close();
  copyFileSync(dir.db, `${dir.db}.old`);
  const again = SqliteStore.openIn(dir.path, { signer, anchor, checkpointEvery: 4 });
  for (let i = 5; i <= 9; i++) await again.appendAudit(entry(i));
  await again.close();
  copyFileSync(`${dir.db}.old`, dir.db);
  const result = await verifyWith(dir, anchor.value);
  assert.equal(result.recordsChecked, 4);
  assert.equal(result.problem?.kind, "anchor_behind");
});

Deno.test("a checkpoint whose anchor advance failed is ahead, verifies, and is settled by the next one", async () => {
  using dir = tempDir();
  const { signer } = await keyPair();
  const anchor = memoryAnchor();
  const store = await storeWith(dir.path, 4, { signer, anchor, checkpointEvery: 100 });
  anchor.failAdvances = 1;
  await assert.rejects(store.checkpoint(), {
    code: "audit_checkpoint_failed",
    message: /record 4 \(its anchor counter could not be advanced\): injected/,
  });
  // The checkpoint is durable with counter 1; the anchor is still at 0 (a crash looks alike).
  const ahead = await store.verifyAudit({ anchorCounter: anchor.value });
  assert.equal(ahead.ok, true, ahead.problem?.message);
  assert.deepEqual(ahead.anchor, {
    counter: 0,
    checkpointCounter: 1,
    checkpointSeq: 4,
    status: "ahead",
  });
  await store.appendAudit(entry(5));
  const next = await store.checkpoint();
  assert.equal(next?.counter, 2, "the pending value is settled first, never reused");
  assert.equal(anchor.value, 2);
  assert.equal((await store.verifyAudit()).anchor?.status, "matches");
  await store.close();
});

Deno.test("the store refuses to sign a checkpoint over a log that is behind its anchor", async () => {
  using dir = tempDir();
  const { signer } = await keyPair();
  const anchor = memoryAnchor();
  const errors: unknown[] = [];
  const options = {
    signer,
    anchor,
    checkpointEvery: 4,
    onCheckpointError: (e: unknown) => errors.push(e),
  };
  await (await storeWith(dir.path, 8, options)).close();
  tamper(dir.db, "DELETE FROM audit WHERE seq > 4; DELETE FROM audit_checkpoints WHERE seq > 4");
  const store = SqliteStore.openIn(dir.path, options);
  await store.appendAudit(entry(5));
  await assert.rejects(store.checkpoint(), {
    code: "audit_checkpoint_failed",
    message: /the newest checkpoint carries counter 1, but the anchor is at 2/,
  });
  await store.close();
  // Neither the explicit nor the shutdown checkpoint laundered the cut.
  const result = await verifyWith(dir, anchor.value);
  assert.equal(result.lastCheckpointSeq, 4);
  assert.equal(result.problem?.kind, "anchor_behind");
  assert.equal(anchor.value, 2);
  assert.equal(errors.length, 1, "the shutdown checkpoint reported it");
});

Deno.test("a store with an anchor reads it itself when verifying (the API's check)", async () => {
  using dir = tempDir();
  const { signer } = await keyPair();
  const anchor = memoryAnchor();
  await using store = await storeWith(dir.path, 4, { signer, anchor, checkpointEvery: 4 });
  await store.checkpoint();
  assert.equal((await store.verifyAudit()).anchor?.status, "matches");
  anchor.value = 5;
  assert.equal((await store.verifyAudit()).problem?.kind, "anchor_behind");
  anchor.value = 1;
});

Deno.test("a counter column raised by hand does not run the anchor up", async () => {
  using dir = tempDir();
  const { signer } = await keyPair();
  const anchor = memoryAnchor();
  await (await storeWith(dir.path, 4, { signer, anchor, checkpointEvery: 4 })).close();
  assert.equal(anchor.value, 1);
  tamper(dir.db, "UPDATE audit_checkpoints SET counter = 1000000 WHERE seq = 4");
  const store = SqliteStore.openIn(dir.path, { signer, anchor, onCheckpointError: () => {} });
  await store.appendAudit(entry(5));
  await assert.rejects(store.checkpoint(), {
    code: "audit_checkpoint_failed",
    message: /counter 1000000, but the anchor is at 1: more than the one checkpoint/,
  });
  await store.close();
  assert.equal(anchor.value, 1);
  assert.equal((await verifyWith(dir, anchor.value)).problem?.kind, "checkpoint_signature");
});
