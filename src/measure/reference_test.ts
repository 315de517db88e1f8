import assert from "node:assert/strict";
import {
  type KernelMeasurement,
  type RegionMeasurement,
  unslidMeasurement,
} from "./measurement.ts";
import { TEST_PROFILE } from "./testing.ts";
import { compareToReference, parseReferenceSet, referenceFromMeasurement } from "./reference.ts";

const profile = TEST_PROFILE;
const d = (c: string) => c.repeat(64);

function region(
  name: string,
  digest: string | null,
  error: string | null = null,
): RegionMeasurement {
  return {
    name,
    kind: "rodata",
    linkedVa: 0xffffffff82000000n,
    va: 0n,
    phys: 0n,
    len: 8,
    digest,
    error,
  };
}

function measurement(
  regions: RegionMeasurement[],
  extra: Parameters<typeof unslidMeasurement>[1] = {},
): KernelMeasurement {
  return unslidMeasurement(regions, { banner: "Linux version x", elapsedMs: 1, ...extra });
}

const good = measurement([region("kernel_text", d("a")), region("sys_call_table", d("b"))]);
const ref = referenceFromMeasurement(good, { profile, learnedAt: "2025-01-01T00:00:00Z" });

Deno.test("compareToReference() matches the measurement it was learned from", () => {
  const c = compareToReference(ref, good);
  assert.equal(c.matches, true);
  assert.deepEqual(c.differences, []);
});

Deno.test("compareToReference() names changed, failed, missing and unexpected regions", () => {
  const c = compareToReference(
    ref,
    measurement([region("kernel_text", null, "page_walk_failed: …"), region("idt_table", d("c"))]),
  );
  assert.equal(c.matches, false);
  assert.deepEqual(c.differences.map((x) => [x.region, x.status]), [
    ["kernel_text", "failed"],
    ["sys_call_table", "missing"],
    ["idt_table", "unexpected"],
  ]);
  const changed = compareToReference(
    ref,
    measurement([region("kernel_text", d("a")), region("sys_call_table", d("e"))]),
  );
  assert.deepEqual(changed.differences.map((x) => [x.region, x.status, x.expected, x.actual]), [
    ["sys_call_table", "changed", d("b"), d("e")],
  ]);
});

Deno.test("compareToReference() fails on a check violation even when digests match", () => {
  const finding = {
    region: "idt_table",
    code: "handler_outside_text",
    violation: true,
    message: "m",
  };
  const c = compareToReference(
    ref,
    measurement(good.regions as RegionMeasurement[], { findings: [finding] }),
  );
  assert.equal(c.matches, false);
  assert.deepEqual(c.differences, []);
  assert.equal(c.violations.length, 1);
});

Deno.test("compareToReference() refuses a measurement in another algorithm", () => {
  assert.throws(
    () => compareToReference(ref, measurement(good.regions as RegionMeasurement[], { alg: "sm3" })),
    {
      code: "reference_mismatch",
    },
  );
});

Deno.test("referenceFromMeasurement() refuses failed regions, violations and raw KASLR text", () => {
  const learn = (m: KernelMeasurement) => referenceFromMeasurement(m, { profile, learnedAt: "t" });
  assert.throws(() => learn(measurement([region("kernel_text", null, "value_out_of_range: x")])), {
    code: "reference_refused",
    message: /"kernel_text" \(value_out_of_range: x\) failed/,
  });
  const finding = { region: "idt_table", code: "c", violation: true, message: "vector 3 hooked" };
  assert.throws(() => learn(measurement([region("a", d("a"))], { findings: [finding] })), {
    message: /vector 3 hooked/,
  });
  assert.throws(() => learn(measurement([region("a", d("a"))], { normalised: false })), {
    message: /relocations were not undone/,
  });
});

Deno.test("parseReferenceSet() accepts its own output and refuses a tampered profile", () => {
  const round = parseReferenceSet(JSON.parse(JSON.stringify(ref)), "r.json");
  assert.deepEqual(round, ref);
  const tampered = { ...JSON.parse(JSON.stringify(ref)), profile: { ...profile, smp: 2 } };
  assert.throws(() => parseReferenceSet(tampered, "r.json"), {
    code: "reference_invalid",
    message: /"r.json".*does not match its profile/,
  });
  assert.throws(() => parseReferenceSet({ format: "other" }, "r.json"), {
    code: "reference_invalid",
  });
  const badDigest = { ...JSON.parse(JSON.stringify(ref)), regions: [{ name: "x", digest: "zz" }] };
  assert.throws(() => parseReferenceSet(badDigest, "r.json"), { message: /"x" has no 64-digit/ });
});
