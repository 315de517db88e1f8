/**
 * Fuzzing the audit log's decoding and verification: one column of one record of a real store
 * gets a hostile value (mutated JSON text, an integer out of range, a wrong type, a blob), as
 * someone with the file could write it. Verification never throws: it names a problem (or the
 * log is still sound when the value means the same); a query refuses with
 * `audit_record_malformed` only. Then the value is put back and the log verifies again.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { VaspError } from "../src/engine/mod.ts";
import { SqliteStore } from "../src/store/mod.ts";
import { storeWith, tempDir } from "../src/store/testing.ts";
import { corpus, iterations, mutate, rng } from "./fixtures/fuzz.ts";

const RECORDS = 12;
const COLUMNS = [
  "seq",
  "decision_id",
  "time_ms",
  "vm_uuid",
  "vm_name",
  "operation",
  "source",
  "input_digest",
  "policy_revision",
  "result",
  "reasons",
  "actions",
  "engine_latency_us",
  "prev_hash",
  "hash",
] as const;
const KINDS = new Set([
  "gap",
  "hash_mismatch",
  "prev_mismatch",
  "out_of_place",
  "malformed",
  "checkpoint_signature",
  "checkpoint_head",
  "checkpoint_beyond_end",
  "anchor_behind",
]);
const INTEGERS = [0, -1, 1, 2 ** 31, 2 ** 53, -(2 ** 53), 9223372036854775807n, 1.5, -0.5];

/** A hostile value for a column, derived from its current one. */
function hostile(r: ReturnType<typeof rng>, current: SQLInputValue): SQLInputValue {
  switch (r(6)) {
    case 0:
      return null;
    case 1:
      return INTEGERS[r(INTEGERS.length)]!;
    case 2:
      return Uint8Array.from({ length: r(40) }, () => r(256));
    case 3:
      return "x".repeat(r(3) === 0 ? 100_000 : r(10));
    default: {
      const text = typeof current === "string" ? current : String(current);
      const bytes = mutate(r, new TextEncoder().encode(text));
      return new TextDecoder().decode(bytes);
    }
  }
}

Deno.test("verification and queries of an audit log with one hostile column never fail other than by naming it", async () => {
  using dir = tempDir();
  await (await storeWith(dir.path, RECORDS)).close();
  const writer = new DatabaseSync(dir.db);
  writer.exec("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete");
  await using store = SqliteStore.openIn(dir.path, { readOnly: true });
  assert.equal((await store.verifyAudit()).ok, true);
  const r = rng(21);
  const cases: { seq: number; column: string; value: SQLInputValue }[] = [];
  for (const file of corpus("audit")) {
    for (const c of JSON.parse(new TextDecoder().decode(file.bytes))) {
      const value = c.value?.blob ? new Uint8Array(Buffer.from(c.value.blob, "base64")) : c.value;
      cases.push({ seq: 1 + cases.length % RECORDS, column: c.column, value });
    }
  }
  const n = iterations(1500);
  let problems = 0;
  for (let i = 0; i < cases.length + n; i++) {
    const c = cases[i] ?? (() => {
      const seq = 1 + r(RECORDS);
      const column = COLUMNS[r(COLUMNS.length)]!;
      const current = writer.prepare(`SELECT ${column} AS v FROM audit WHERE seq = ?`).get(seq)!
        .v as SQLInputValue;
      return { seq, column, value: hostile(r, current) };
    })();
    const original = writer.prepare(`SELECT ${c.column} AS v FROM audit WHERE seq = ?`).get(
      c.seq,
    )!.v as SQLInputValue;
    const where = `seq = ${c.seq}`;
    try {
      writer.prepare(`UPDATE audit SET ${c.column} = ? WHERE ${where}`).run(c.value);
    } catch {
      continue; // the schema refused it (NOT NULL, a duplicate seq or ID): nothing to read
    }
    const at = `seed ${r.seed} iteration ${i} (record ${c.seq}, ${c.column})`;
    try {
      const result = await store.verifyAudit();
      if (!result.ok) problems++;
      assert.ok(result.ok || KINDS.has(result.problem!.kind), at);
      assert.ok(result.recordsChecked <= RECORDS, at);
      await store.queryAudit({ limit: 1000 }).catch((error) => {
        if (!(error instanceof VaspError && error.code === "audit_record_malformed")) throw error;
      });
    } catch (error) {
      assert.fail(`${at}: ${(error as Error).stack}`);
    } finally {
      const seqNow = c.column === "seq" ? c.value : c.seq;
      writer.prepare(`UPDATE audit SET ${c.column} = ? WHERE seq = ?`).run(
        original,
        seqNow as SQLInputValue,
      );
    }
  }
  writer.close();
  assert.ok(problems > 0, "the hostile values were seen");
  const after = await store.verifyAudit();
  assert.equal(after.ok, true, after.problem?.message);
});
