import assert from "node:assert/strict";
import {
  type KernelMeasurement,
  type RegionMeasurement,
  unslidMeasurement,
} from "./measurement.ts";
import type { ReferenceSet } from "./reference.ts";
import { failedVerdicts, judge, verdictDigest } from "./verdict.ts";
import { testReferenceSet } from "./testing.ts";

const D = (c: string) => c.repeat(64);

function region(name: string, kind: RegionMeasurement["kind"], digest: string | null) {
  return {
    name,
    kind,
    linkedVa: 0n,
    va: 0n,
    phys: 0n,
    len: 8,
    digest,
    error: digest === null ? "page_walk_failed: no mapping" : null,
  };
}

function measurement(
  overrides: Parameters<typeof unslidMeasurement>[1] = {},
): KernelMeasurement {
  const regions = [
    region("kernel_text", "text", D("a")),
    region("sys_call_table", "syscall_table", D("b")),
    region("idt_table", "idt", D("c")),
    region("rodata.1", "rodata", null),
  ];
  return unslidMeasurement(regions, { banner: "Linux", elapsedMs: 1, ...overrides });
}

const REFERENCE = testReferenceSet([
  { name: "kernel_text", linkedVa: "0x0", len: 8, digest: D("a") },
  { name: "sys_call_table", linkedVa: "0x0", len: 8, digest: D("f") },
  { name: "idt_table", linkedVa: "0x0", len: 8, digest: D("c") },
  { name: "rodata.1", linkedVa: "0x0", len: 8, digest: D("d") },
  { name: "ia32_sys_call_table", linkedVa: "0x0", len: 8, digest: D("e") },
]);

const summary = (m: KernelMeasurement, ref: ReferenceSet | undefined) =>
  judge(ref, m, { profileId: "p1" }).map((v) => `${v.region}:${v.status}`);

Deno.test("judge() names each region ok, differs, missing or error in the engine's words", () => {
  const verdicts = judge(REFERENCE, measurement(), { profileId: "p1" });
  assert.deepEqual(verdicts.map((v) => [v.region, v.status, v.digest, v.reference]), [
    ["ia32_sys_call_table", "missing", "", D("e")],
    ["idt_table", "ok", D("c"), D("c")],
    ["kernel_text", "ok", D("a"), D("a")],
    ["rodata.1", "error", "", D("d")],
    ["sys_call_table", "differs", D("b"), D("f")],
  ]);
  assert.equal(verdicts[3]!.detail, "page_walk_failed: no mapping");
  assert.match(verdicts[4]!.detail, /differs from its reference f+/);
});

Deno.test("judge() marks a table with a violated check as differing even when its digest matches", () => {
  const m = measurement({
    findings: [{ region: "idt_table", code: "idtr_mismatch", violation: true, message: "IDTR" }],
  });
  const idt = judge(REFERENCE, m, { profileId: "p1" }).find((v) => v.region === "idt_table");
  assert.deepEqual([idt?.status, idt?.detail], ["differs", "IDTR"]);
});

Deno.test("judge() without a reference set, or with raw KASLR text, reports missing and error, never ok", () => {
  assert.deepEqual(summary(measurement(), undefined), [
    "idt_table:missing",
    "kernel_text:missing",
    "rodata.1:error",
    "sys_call_table:missing",
  ]);
  const missing = judge(undefined, measurement(), { profileId: "p1" })[0]!;
  assert.match(missing.detail, /no reference set for profile p1/);
  assert.deepEqual(summary(measurement({ normalised: false }), REFERENCE).slice(1, 3), [
    "idt_table:ok",
    "kernel_text:error",
  ]);
  assert.ok(summary(measurement({ alg: "sm3" }), REFERENCE).every((s) => !s.endsWith(":ok")));
});

Deno.test("verdictDigest() changes with a status or digest, not with the order or the detail", () => {
  const a = failedVerdicts(["b", "a"], "x");
  assert.deepEqual(a.map((v) => [v.region, v.status, v.detail]), [["a", "error", "x"], [
    "b",
    "error",
    "x",
  ]]);
  const same = verdictDigest([...failedVerdicts(["a", "b"], "other text")].reverse());
  assert.equal(verdictDigest(a).digest, same.digest);
  assert.equal(verdictDigest(a).text, "a error -\nb error -\n");
  const ok = judge(REFERENCE, measurement(), { profileId: "p" });
  const changed = ok.map((v) => v.region === "kernel_text" ? { ...v, digest: D("9") } : v);
  assert.notEqual(verdictDigest(ok).digest, verdictDigest(changed).digest);
});

Deno.test("judge() takes the kernel image's digests as references when no set was learned", () => {
  const m = unslidMeasurement([
    { ...region("kernel_text", "text", D("a")), expected: D("a") },
    { ...region("sys_call_table", "syscall_table", D("b")), expected: D("f") },
    region("idt_table", "idt", D("c")),
  ]);
  const byRegion = Object.fromEntries(
    judge(undefined, m, { profileId: "p" }).map((v) => [v.region, [v.status, v.reference]]),
  );
  assert.deepEqual(byRegion, {
    kernel_text: ["ok", D("a")],
    sys_call_table: ["differs", D("f")],
    idt_table: ["missing", null],
  });
  // A learned set wins over the image: it was learned on purpose.
  const learned = testReferenceSet([{
    name: "sys_call_table",
    linkedVa: "0x0",
    len: 8,
    digest: D("b"),
  }]);
  const status = judge(learned, m, { profileId: "p" }).find((v) => v.region === "sys_call_table");
  assert.equal(status?.status, "ok");
});
