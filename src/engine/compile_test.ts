import assert from "node:assert/strict";
import { compilePolicy, createPolicyEnv, type PolicySource } from "./compile.ts";
import { VaspError } from "./error.ts";

const env = createPolicyEnv({ max_age: 300n, ratio: 0.5, zones: ["a", "b"], nested: { on: true } });

function issue(text: string, expect: "bool" | "string" = "bool") {
  const result = env.compile(text, expect);
  assert.equal(result.ok, false, `"${text}" must not compile`);
  return !result.ok ? result.issue : { offset: -1, message: "" };
}

Deno.test("createPolicyEnv().compile() accepts well-typed expressions over every input", () => {
  for (
    const text of [
      'event.operation == "start" && event.details.command == "stop"',
      'vm.registered && vm.labels["tier"] == "prod" && vm.tenant != ""',
      "has(vm.labels.tier) || vm.labels.size() == 0",
      "vasp.present && vasp.certified && vasp.sealed_export",
      "measurements.all_match && measurements.age_seconds <= params.max_age",
      'measurements.regions.all(r, measurements.regions[r].status == "ok")',
      'measurements.failing.exists(n, n.startsWith("kernel"))',
      'host.all_ok && host.files.exists(f, host.files[f].ok) && host.asp in ["soft", "hardware"]',
      "now - vm.created_at > duration('1h') && params.ratio < 1.0",
      'params.nested.on && "a" in params.zones && size(params.zones) == 2',
      "[1, 2, 3].map(x, x * 2)[0] == 2 && [1].exists_one(x, x == 1)",
    ]
  ) {
    const result = env.compile(text, "bool");
    assert.ok(result.ok, `${text}: ${!result.ok && result.issue.message}`);
  }
  assert.ok(env.compile('"VM " + vm.name + ": " + measurements.failing.join(", ")', "string").ok);
});

Deno.test("compile() rejects an undeclared input at its offset", () => {
  assert.deepEqual(issue("vm.registered && mesurements.all_match"), {
    offset: 17,
    message:
      'undeclared reference to "mesurements" (inputs: event, vm, vasp, measurements, host, boot, destination, now, params)',
  });
});

Deno.test("compile() rejects an unknown field of a record at the field", () => {
  const got = issue("vm.registered && vm.nmae == 'x'");
  assert.equal(got.offset, 20);
  assert.match(got.message, /^undefined field "nmae" of vm \(fields: uuid, name,/);
  assert.match(issue("params.max_agee > 1").message, /undefined field "max_agee" of params/);
  assert.match(
    issue("measurements.regions.x.stat == 'ok'").message,
    /"stat" of measurements\.region/,
  );
});

Deno.test("compile() rejects type errors", () => {
  assert.match(issue("vm.name + 1 == 'x'").message, /no matching overload for _\+_\(string, int\)/);
  assert.match(issue("measurements.count == 1.0").message, /cannot compare int with double.*1\.0/);
  assert.match(issue("vm.name && true").message, /expected bool, found string/);
  assert.match(issue("vm.labels[1] == 'x'").message, /key of map\(string, string\) cannot be int/);
  assert.match(
    issue("vm.name.startsWith(1)").message,
    /no matching overload for string\.startsWith/,
  );
  assert.match(
    issue("vm.name.frobnicate()").message,
    /no matching overload for string\.frobnicate/,
  );
  assert.match(issue("1 in ['a']").message, /cannot look up int in list\(string\)/);
  assert.match(
    issue("vm.registered ? 'a' : 'b'").message,
    /expected a bool expression, found string/,
  );
  assert.match(issue("vm.registered", "string").message, /expected a string expression/);
});

Deno.test("compile() reports a syntax error at its offset", () => {
  const got = issue("vm.registered &&");
  // The parser points where the longest valid prefix ends: the dangling operator.
  assert.deepEqual(got, {
    offset: 14,
    message: "syntax error: found & but expecting end of input",
  });
});

Deno.test("createPolicyEnv() refuses a parameter it cannot type", () => {
  assert.throws(
    () => createPolicyEnv({ bad: null as never }),
    (e) => e instanceof VaspError && e.code === "policy_invalid" && /params\.bad/.test(e.message),
  );
});

const GOOD: PolicySource = {
  id: "bound",
  description: "",
  on: ["start"],
  rules: [{ name: "bound", expr: "vasp.present", message: "'no vASP'" }],
  effect: "deny",
  actions: ["alert"],
};

Deno.test("compilePolicy() compiles a valid policy with its actions in canonical order", () => {
  const { policy, issues } = compilePolicy({ ...GOOD, actions: ["quarantine", "alert"] }, env);
  assert.deepEqual(issues, []);
  assert.deepEqual(policy?.actions, ["alert", "quarantine"]);
  assert.deepEqual(policy?.on, ["start"]);
});

Deno.test("compilePolicy() reports every problem with its path", () => {
  const { issues } = compilePolicy({
    id: "Bad Id",
    description: "",
    on: ["start", "reboot"],
    match: "vm.",
    rules: [
      { name: "a", expr: "vasp.nope", message: "'x'" },
      { name: "a", expr: "true", message: "1" },
    ],
    effect: "block",
    actions: ["page"],
  }, env);
  assert.deepEqual(
    issues.map((i) => [i.path.join("."), i.offset]),
    [
      ["id", undefined],
      ["on.1", undefined],
      ["effect", undefined],
      ["actions.0", undefined],
      ["match", 2],
      ["rules.0.expr", 5],
      ["rules.1.name", undefined],
      ["rules.1.message", 0],
    ],
  );
});
