import assert from "node:assert/strict";
import { OPERATIONS } from "../engine/mod.ts";
import { formatCaseFailure, runPolicyCases } from "./cases.ts";
import { loadPolicySet } from "./load.ts";

const DEFAULT_SET = new URL("../../policies", import.meta.url).pathname;

Deno.test("every case of the default policy set passes", async () => {
  const report = runPolicyCases(await loadPolicySet({ dir: DEFAULT_SET }));
  assert.deepEqual(report.errors, []);
  assert.deepEqual(report.results.filter((r) => r.problems.length > 0).map(formatCaseFailure), []);
  assert.ok(report.results.length >= 40, `only ${report.results.length} cases`);
});

Deno.test("the default policy set covers every operation, with cases for each policy", async () => {
  const loaded = await loadPolicySet({ dir: DEFAULT_SET });
  const report = runPolicyCases(loaded);
  assert.deepEqual(report.uncovered, []);
  for (const op of OPERATIONS) {
    assert.ok(loaded.set.byOperation.get(op)!.length > 0, `no policy applies to ${op}`);
    const cases = report.results.filter((r) => r.got.operation === op);
    // A monitor command of unknown effect is refused for every VM (monitor-commands.yaml).
    if (op === "unknown") assert.ok(cases.length > 0 && cases.every((r) => !r.got.allow));
    else assert.ok(cases.some((r) => r.got.allow), `no case allows ${op}`);
    assert.ok(
      cases.some((r) => !r.got.allow || r.got.reasons.length > 0),
      `no case objects to ${op}`,
    );
  }
});

const POLICY = `id: fresh
description: test
on: [pause]
rules:
  - name: fresh
    expr: measurements.age_seconds < 60
    message: '"stale " + vm.name'
`;

const SET = `params: {}
test:
  context:
    now: "2025-01-01T00:10:00Z"
    vm: { uuid: 4c1f6a4e-8f0b-4d8e-9a77-2a3e5f1c0b9d, name: db, state: running, created_at: "2025-01-01T00:00:00Z" }
    vasp: null
    measurements:
      idt: { status: ok, digest: "sha256:1", reference: "sha256:1", at: "2025-01-01T00:09:30Z" }
    host: null
`;

async function run(cases: string) {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/set.yaml`, SET);
    await Deno.writeTextFile(`${dir}/fresh.yaml`, POLICY);
    await Deno.writeTextFile(`${dir}/fresh.cases.yaml`, cases);
    return runPolicyCases(await loadPolicySet({ dir }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("runPolicyCases() merges each case's context over the baseline and checks the result", async () => {
  const report = await run(`policy: fresh
cases:
  - name: fresh enough
    event: { operation: pause }
    expect: { allow: true, reasons: [], next_state: paused }
  - name: stale
    event: { operation: pause }
    context: { measurements: { idt: { at: "2025-01-01T00:00:00Z" } } }
    expect: { allow: false, reasons: [{ policy: fresh, rule: fresh, message: stale db }] }
`);
  assert.deepEqual(report.errors, []);
  assert.deepEqual(report.results.map((r) => [r.name, r.problems]), [["fresh enough", []], [
    "stale",
    [],
  ]]);
});

Deno.test("runPolicyCases() reports a wrong expectation with expected and got", async () => {
  const report = await run(`policy: fresh
cases:
  - name: expects the wrong thing
    event: { operation: pause, details: { command: stop } }
    context: { measurements: { idt: { at: "2025-01-01T00:00:00Z" } } }
    expect: { allow: true, reasons: [{ policy: fresh, rule: other }], actions: [alert], next_state: paused }
`);
  const [result] = report.results;
  assert.deepEqual(result.problems, [
    "expected allow, got deny",
    "missing reason fresh/other",
    "unexpected reason fresh/fresh: stale db",
    "expected actions [alert], got []",
    "expected next state paused, got null",
  ]);
  const lines = formatCaseFailure(result).split("\n");
  assert.match(lines[0], /^FAIL .*fresh\.cases\.yaml:3 \[fresh\] expects the wrong thing$/);
  assert.deepEqual(lines.slice(1, 4), [
    "  expected: allow; reasons fresh/other; actions [alert]",
    "  got:      deny; reasons fresh/fresh; actions []",
    "    - [deny] fresh/fresh: stale db",
  ]);
});

Deno.test("runPolicyCases() locates mistakes in a case file and does not run that case", async () => {
  const report = await run(`policy: fresh
cases:
  - name: bad operation
    event: { operation: reboot }
    expect: { allow: true }
  - name: bad context
    event: { operation: pause }
    context: { vm: { state: asleep } }
    expect: { allow: true, colour: red }
`);
  assert.deepEqual(report.results, []);
  assert.deepEqual(report.errors.map((e) => [e.line, e.column, e.message.slice(0, 30)]), [
    [4, 25, 'Unknown operation "reboot"; ex'],
    [8, 29, 'unknown life-cycle state "asle'],
    [9, 28, 'unknown key "colour" in cases['],
  ]);
});

Deno.test("runPolicyCases() names policies that have no cases", async () => {
  const report = await run(`policy: fresh\ncases: []\n`);
  assert.deepEqual(report.uncovered, []);
  const other = await run(`policy: nothing\ncases: []\n`);
  assert.deepEqual(other.uncovered, ["fresh"]);
  assert.match(other.errors[0].message, /no policy "nothing" in the set/);
});
