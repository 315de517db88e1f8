import assert from "node:assert/strict";
import { loadReferenceSet, referencePath, saveReferenceSet } from "./reference_store.ts";
import { testReferenceSet } from "./testing.ts";

const set = testReferenceSet([{
  name: "kernel_text",
  linkedVa: "0xffffffff81000000",
  len: 1,
  digest: "a".repeat(64),
}]);

Deno.test("saveReferenceSet() writes <profile id>.json that loadReferenceSet() reads back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = await saveReferenceSet(`${dir}/refs`, set);
    assert.equal(path, `${dir}/refs/${set.profileId}.json`);
    assert.deepEqual(await loadReferenceSet(`${dir}/refs`, set.profileId), set);
    await saveReferenceSet(`${dir}/refs`, { ...set, learnedAt: "2025-02-02T00:00:00Z" });
    const names = [...Deno.readDirSync(`${dir}/refs`)].map((e) => e.name);
    assert.deepEqual(names, [`${set.profileId}.json`], "no temporary file is left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadReferenceSet() returns undefined for an unknown profile and refuses a corrupt file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(await loadReferenceSet(dir, "0".repeat(32)), undefined);
    await Deno.writeTextFile(referencePath(dir, set.profileId), "{not json");
    await assert.rejects(() => loadReferenceSet(dir, set.profileId), { code: "reference_invalid" });
    await Deno.writeTextFile(referencePath(dir, "1".repeat(32)), JSON.stringify(set));
    await assert.rejects(() => loadReferenceSet(dir, "1".repeat(32)), {
      message: /belongs to profile/,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("referencePath() refuses an ID that could leave the folder", () => {
  assert.throws(() => referencePath("/refs", "../../etc/passwd"), RangeError);
});
