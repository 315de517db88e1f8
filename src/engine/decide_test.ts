import assert from "node:assert/strict";
import { compilePolicy, createPolicyEnv, type PolicySource } from "./compile.ts";
import type { DecisionContext } from "./context.ts";
import { decide } from "./decide.ts";
import { VaspError } from "./error.ts";
import type { LifecycleEvent } from "./event.ts";
import type { Operation } from "./lifecycle.ts";
import { createPolicySet } from "./policy_set.ts";

const UUID = "4c1f6a4e-8f0b-4d8e-9a77-2a3e5f1c0b9d";
const NOW = new Date("2025-01-01T12:00:00Z");

function event(operation: Operation, details: Record<string, unknown> = {}): LifecycleEvent {
  return { operation, vm: { uuid: UUID, name: "web-1" }, source: "api", details };
}

function context(over: Partial<DecisionContext> = {}): DecisionContext {
  return {
    now: NOW,
    vm: { uuid: UUID, name: "web-1", state: "running", createdAt: new Date("2025-01-01Z") },
    vasp: { instanceId: "v-1", configDigest: "sha256:00", certified: true, sealedExport: false },
    measurements: {
      kernel_text: {
        status: "ok",
        digest: "sha256:aa",
        reference: "sha256:aa",
        at: new Date(NOW.getTime() - 30_000),
      },
    },
    host: null,
    ...over,
  };
}

function policy(over: Partial<PolicySource>, env = createPolicyEnv({})) {
  const source: PolicySource = {
    id: "p",
    description: "",
    on: ["pause", "start"],
    rules: [],
    effect: "deny",
    actions: [],
    ...over,
  };
  const { policy, issues } = compilePolicy(source, env);
  assert.deepEqual(issues, []);
  return policy!;
}

const rule = (name: string, expr: string, message = `"${name} violated"`) => ({
  name,
  expr,
  message,
});

Deno.test("decide() allows when every matching policy holds", () => {
  const set = createPolicySet([policy({ rules: [rule("bound", "vasp.present")] })], {
    revision: "rev-1",
  });
  const d = decide(set, event("pause"), context());
  assert.equal(d.allow, true);
  assert.deepEqual(d.reasons, []);
  assert.deepEqual(d.transition, { from: "running", to: "paused" });
  assert.equal(d.policyRevision, "rev-1");
  assert.deepEqual(d.evaluated, ["p"]);
});

Deno.test("decide() denies when any policy denies, even if another allows (deny overrides)", () => {
  const set = createPolicySet([
    policy({ id: "ok", rules: [rule("holds", "true")] }),
    policy({ id: "no", rules: [rule("fresh", "measurements.age_seconds < 10")] }),
  ], { revision: "r" });
  const d = decide(set, event("pause"), context());
  assert.equal(d.allow, false);
  assert.deepEqual(d.reasons, [
    { policy: "no", rule: "fresh", message: "fresh violated", effect: "deny" },
  ]);
  assert.deepEqual(d.transition, { from: "running", to: null });
});

Deno.test("decide() reports every violated rule and the union of actions", () => {
  const set = createPolicySet([
    policy({
      id: "a",
      rules: [rule("one", "false"), rule("two", "vm.name == 'x'", '"name is " + vm.name')],
      actions: ["quarantine", "alert"],
    }),
    policy({ id: "b", rules: [rule("three", "false")], actions: ["alert", "pause"] }),
  ], { revision: "r" });
  const d = decide(set, event("pause"), context());
  assert.deepEqual(d.reasons.map((r) => [r.policy, r.rule, r.message]), [
    ["a", "one", "one violated"],
    ["a", "two", "name is web-1"],
    ["b", "three", "three violated"],
  ]);
  assert.deepEqual(d.actions, ["alert", "pause", "quarantine"]);
});

Deno.test("decide() lets a warn policy report without denying", () => {
  const set = createPolicySet([
    policy({ effect: "warn", rules: [rule("old", "false")], actions: ["alert"] }),
  ], { revision: "r" });
  const d = decide(set, event("pause"), context());
  assert.equal(d.allow, true);
  assert.deepEqual(d.reasons, [{
    policy: "p",
    rule: "old",
    message: "old violated",
    effect: "warn",
  }]);
  assert.deepEqual(d.actions, ["alert"]);
});

Deno.test("decide() counts an evaluation error as a violation and names the error", () => {
  const set = createPolicySet([
    policy({ rules: [rule("count", "int(event.details.count) > 0")] }),
  ], { revision: "r" });
  const d = decide(set, event("pause"), context());
  assert.equal(d.allow, false);
  assert.equal(d.reasons.length, 1);
  assert.match(
    d.reasons[0].message,
    /^Cannot pause VM "web-1": rule "count" of "p": evaluation error: .*count/,
  );
  assert.equal(decide(set, event("pause", { count: 2 }), context()).allow, true);
});

Deno.test("decide() counts a non-bool dyn result as a violation", () => {
  const set = createPolicySet([policy({ rules: [rule("flag", "event.details.flag")] })], {
    revision: "r",
  });
  const d = decide(set, event("pause", { flag: "yes" }), context());
  assert.equal(d.allow, false);
  assert.match(d.reasons[0].message, /expected bool, got string/);
  assert.equal(decide(set, event("pause", { flag: true }), context()).allow, true);
});

Deno.test("decide() applies a policy whose match condition fails, as a violation", () => {
  const set = createPolicySet([
    policy({ match: "event.details.kind == 'x'", rules: [rule("r", "true")], actions: ["alert"] }),
  ], { revision: "r" });
  const d = decide(set, event("pause"), context());
  assert.equal(d.allow, false);
  assert.equal(d.reasons[0].rule, "match");
  assert.match(d.reasons[0].message, /match condition of "p": evaluation error/);
  assert.deepEqual(d.actions, ["alert"]);
});

Deno.test("decide() skips a policy whose match condition is false", () => {
  const set = createPolicySet([
    policy({ match: "vm.tenant != ''", rules: [rule("never", "false")] }),
  ], { revision: "r" });
  const d = decide(set, event("pause"), context());
  assert.equal(d.allow, true);
  assert.deepEqual(d.evaluated, []);
});

Deno.test("decide() falls back to a plain message when the message expression fails", () => {
  const set = createPolicySet([
    policy({ rules: [rule("r", "false", "string(event.details.missing)")] }),
  ], { revision: "r" });
  const d = decide(set, event("pause"), context());
  assert.match(d.reasons[0].message, /^rule "r" of policy "p" does not hold \(message error: /);
});

Deno.test("decide() denies a transition that does not exist before any policy runs", () => {
  const set = createPolicySet([
    policy({ on: ["resume"], rules: [rule("boom", "int(event.details.x) > 0")] }),
  ], { revision: "r" });
  const d = decide(
    set,
    event("resume"),
    context({ vm: { ...context().vm!, state: "quarantined" } }),
  );
  assert.deepEqual(d.reasons, [{
    policy: "vasp.lifecycle",
    rule: "transition",
    message: 'Cannot resume VM "web-1": no resume from state quarantined',
    effect: "deny",
  }]);
  assert.deepEqual(d.evaluated, []);
  assert.deepEqual(d.transition, { from: "quarantined", to: null });
});

Deno.test("decide() denies an unregistered VM that no policy applies to, and not a known one", () => {
  const set = createPolicySet([policy({ on: ["define"], rules: [rule("r", "true")] })], {
    revision: "r",
  });
  const unknown = decide(set, event("start"), context({ vm: null }));
  assert.equal(unknown.allow, false);
  assert.deepEqual(unknown.reasons.map((r) => [r.policy, r.rule]), [[
    "vasp.default",
    "unregistered-vm",
  ]]);
  assert.match(unknown.reasons[0].message, /^Cannot start VM "web-1": vASP does not know/);
  const known = decide(
    set,
    event("start"),
    context({ vm: { ...context().vm!, state: "defined" } }),
  );
  assert.equal(known.allow, true);
  const defined = decide(set, event("define"), context({ vm: null }));
  assert.equal(defined.allow, true);
  assert.deepEqual(defined.transition, { from: null, to: "defined" });
});

Deno.test("decide() gives policies the derived inputs: age, failing regions, params", () => {
  const env = createPolicyEnv({ max_age: 60n, zones: ["a"] });
  const set = createPolicySet([
    policy({
      rules: [
        rule(
          "age",
          "measurements.age_seconds == 30 && measurements.regions.kernel_text.age_seconds == 30",
        ),
        rule(
          "failing",
          "measurements.failing == ['idt'] && measurements.any_differs && !measurements.all_match",
        ),
        rule("params", "params.max_age == 60 && params.zones == ['a']"),
        rule(
          "vm",
          "vm.state == 'running' && event.next_state == 'paused' && now - vm.created_at == duration('12h')",
        ),
        rule("host", "!host.present && !host.all_ok && host.age_seconds > 1000000"),
      ],
    }, env),
  ], { revision: "r", env });
  const measurements = {
    ...context().measurements,
    idt: { status: "differs" as const, digest: "sha256:bb", reference: "sha256:cc", at: NOW },
  };
  const d = decide(set, event("pause"), context({ measurements }));
  assert.deepEqual(d.reasons, []);
});

Deno.test("decide() refuses a context that holds another VM", () => {
  const set = createPolicySet([], { revision: "r" });
  const other = { ...context().vm!, uuid: "00000000-0000-0000-0000-000000000000" };
  assert.throws(
    () => decide(set, event("pause"), context({ vm: other })),
    (e) => e instanceof VaspError && e.code === "context_invalid",
  );
});

Deno.test("createPolicySet() refuses two policies with the same id", () => {
  const p = policy({ rules: [rule("r", "true")] });
  assert.throws(
    () => createPolicySet([p, p], { revision: "r" }),
    (e) => e instanceof VaspError && e.code === "policy_invalid" && /"p"/.test(e.message),
  );
});
