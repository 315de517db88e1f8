import assert from "node:assert/strict";
import { chainRecord, checkEntry, GENESIS_HASH, recordBody } from "./audit.ts";
import { canonicalJson } from "./canonical_json.ts";
import { entry } from "./testing.ts";
import { fromHex, toHex } from "../codec/mod.ts";

async function webCryptoHash(prevHex: string, body: string): Promise<string> {
  const prev = fromHex(prevHex);
  const data = new Uint8Array([...prev, ...new TextEncoder().encode(body)]);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return toHex(digest);
}

Deno.test("chainRecord() hashes the previous hash's bytes, then the canonical body", async () => {
  const first = chainRecord(1, GENESIS_HASH, checkEntry(entry(1)));
  assert.equal(first.prevHash, GENESIS_HASH);
  assert.equal(first.hash, await webCryptoHash(GENESIS_HASH, recordBody(1, first)));
  const second = chainRecord(2, first.hash, checkEntry(entry(2)));
  assert.equal(second.hash, await webCryptoHash(first.hash, recordBody(2, second)));
});

Deno.test("recordBody() covers the seq and every field of the entry, in snake_case", () => {
  const body = JSON.parse(recordBody(9, checkEntry(entry(5))));
  assert.deepEqual(Object.keys(body), [
    "actions",
    "decision_id",
    "engine_latency_us",
    "input_digest",
    "operation",
    "policy_revision",
    "reasons",
    "result",
    "seq",
    "source",
    "time",
    "vm_name",
    "vm_uuid",
  ]);
  assert.equal(body.seq, 9);
  assert.equal(body.time, "2025-01-01T00:00:05.000Z");
  assert.notEqual(recordBody(9, entry(5)), recordBody(10, entry(5)));
});

Deno.test("recordBody() is exactly the canonical JSON of the record's fields", () => {
  for (let i = 0; i < 20; i++) {
    const e = checkEntry(entry(i, { vm: { uuid: `"q\u2028${i}`, name: "é\n" } }));
    assert.equal(
      recordBody(i * 1e6, e),
      canonicalJson({
        seq: i * 1e6,
        decision_id: e.decisionId,
        time: e.time.toISOString(),
        vm_uuid: e.vm.uuid,
        vm_name: e.vm.name,
        operation: e.operation,
        source: e.source,
        input_digest: e.inputDigest,
        policy_revision: e.policyRevision,
        result: e.result,
        reasons: e.reasons,
        actions: e.actions,
        engine_latency_us: e.engineLatencyUs,
      }),
    );
  }
});

Deno.test("checkEntry() rounds the latency and copies the arrays", () => {
  const original = entry(5, { engineLatencyUs: 12.6 });
  const checked = checkEntry(original);
  assert.equal(checked.engineLatencyUs, 13);
  assert.notEqual(checked.reasons, original.reasons);
  assert.deepEqual(checked.reasons, original.reasons);
});

Deno.test("checkEntry() names the first bad field", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ decisionId: "" }, /decisionId must be a non-empty string/],
    [{ time: new Date(NaN) }, /time must be a valid Date, got an invalid Date/],
    [{ vm: { uuid: 1, name: "x" } }, /vm\.uuid must be a string, got 1/],
    [{ inputDigest: "ABC" }, /inputDigest must be 64 lowercase hex digits, got "ABC"/],
    [{ result: "maybe" }, /result must be allow, deny, error or event, got "maybe"/],
    [{ reasons: [{ policy: "p", rule: "r" }] }, /reasons\[0\]\.message must be a string/],
    [{ actions: ["alert", 3] }, /actions must be an array of strings/],
    [{ engineLatencyUs: -1 }, /engineLatencyUs must be a finite number ≥ 0, got -1/],
    [{ reasons: [{ policy: "p", rule: "r", message: "m", n: 1n }] }, /bigint/],
  ];
  for (const [override, message] of cases) {
    assert.throws(() => checkEntry({ ...entry(1), ...override }), message);
  }
});
