/**
 * The decision: the life-cycle state machine first, then every matching policy; deny overrides
 * allow, every violated rule is a reason, the actions are the union. Pure: the same event,
 * context and policy set always give the same decision.
 *
 * @module
 */
import { isCelError } from "@bufbuild/cel";
import { bindings } from "./_bindings.ts";
import type { CompiledExpr, CompiledPolicy } from "./compile.ts";
import type { DecisionContext } from "./context.ts";
import {
  type Action,
  ACTIONS,
  type Decision,
  DEFAULT_POLICY,
  LIFECYCLE_POLICY,
  type Reason,
} from "./decision.ts";
import { VaspError } from "./error.ts";
import type { LifecycleEvent } from "./event.ts";
import { checkTransition, type Operation } from "./lifecycle.ts";
import type { CompiledPolicySet } from "./policy_set.ts";

const VERBS: Partial<Record<Operation, string>> = {
  "migrate-out": "migrate out",
  "migrate-in": "migrate in",
  measurement: "accept a measurement of",
  "disk-export": "export a disk of",
  "device-attach": "attach a device to",
  "guest-input": "send input to",
  unknown: "run an unknown monitor command on",
};

/** The sentence head of a reason: `Cannot resume VM "web-1"`. */
function cannot(event: LifecycleEvent): string {
  return `Cannot ${VERBS[event.operation] ?? event.operation} VM "${event.vm.name}"`;
}

type Outcome = { ok: true } | { ok: false; why?: string };

/** Evaluates a bool expression; an error or a non-bool is a violation (fail closed). */
function holds(expr: CompiledExpr, values: Record<string, unknown>): Outcome {
  const result = expr.evaluate(values);
  if (result === true) return { ok: true };
  if (result === false) return { ok: false };
  return {
    ok: false,
    why: isCelError(result)
      ? `evaluation error: ${result.message}`
      : `evaluation error: expected bool, got ${typeof result}`,
  };
}

function message(
  policy: CompiledPolicy,
  rule: { name: string; message: CompiledExpr },
  values: Record<string, unknown>,
): string {
  const result = rule.message.evaluate(values);
  if (typeof result === "string") return result;
  const why = isCelError(result) ? result.message : `expected string, got ${typeof result}`;
  return `rule "${rule.name}" of policy "${policy.id}" does not hold (message error: ${why})`;
}

/**
 * Decides one event.
 *
 * @param set the compiled policy set in force
 * @param event the event (validated, e.g. by `parseEvent`)
 * @param context the VM record, vASP binding, measurements, host state and time
 * @returns the decision, without an ID (the caller that records it assigns one)
 * @throws {VaspError} `context_invalid` when `context.vm` is another VM than `event.vm`
 * @example
 * ```ts
 * import { createPolicySet, decide } from "./mod.ts";
 * const set = createPolicySet([], { revision: "sha256:0" });
 * const d = decide(set, {
 *   operation: "resume",
 *   vm: { uuid: "4c1f6a4e-8f0b-4d8e-9a77-2a3e5f1c0b9d", name: "web-1" },
 *   source: "qmp-gate",
 *   details: {},
 * }, { now: new Date(0), vm: null, vasp: null, measurements: {}, host: null });
 * d.allow; // false: no resume for an unregistered VM
 * ```
 */
export function decide(
  set: CompiledPolicySet,
  event: LifecycleEvent,
  context: DecisionContext,
): Decision {
  if (context.vm !== null && context.vm.uuid !== event.vm.uuid) {
    throw new VaspError(
      "context_invalid",
      `Cannot decide for VM ${event.vm.uuid}: the context holds VM ${context.vm.uuid}`,
      { details: { event: event.vm.uuid, context: context.vm.uuid } },
    );
  }
  const from = context.vm?.state ?? null;
  const base = { operation: event.operation, vm: event.vm, policyRevision: set.revision };
  const transition = checkTransition(from, event.operation, {
    phase: event.phase,
    details: event.details,
  });
  if (!transition.exists) {
    return {
      ...base,
      allow: false,
      reasons: [{
        policy: LIFECYCLE_POLICY,
        rule: "transition",
        message: `${cannot(event)}: ${transition.reason}`,
        effect: "deny",
      }],
      actions: [],
      transition: { from, to: null },
      evaluated: [],
    };
  }
  const values = bindings(event, context, transition.to);
  values.params = set.paramsValue;
  const reasons: Reason[] = [];
  const actions = new Set<Action>();
  const evaluated: string[] = [];
  for (const policy of set.byOperation.get(event.operation) ?? []) {
    const violate = (rule: string, text: string) => {
      reasons.push({ policy: policy.id, rule, message: text, effect: policy.effect });
      for (const a of policy.actions) actions.add(a);
    };
    if (policy.match) {
      const applies = holds(policy.match, values);
      if (!applies.ok && applies.why === undefined) continue;
      evaluated.push(policy.id);
      if (!applies.ok) {
        violate("match", `${cannot(event)}: match condition of "${policy.id}": ${applies.why}`);
        continue;
      }
    } else {
      evaluated.push(policy.id);
    }
    for (const rule of policy.rules) {
      const result = holds(rule.expr, values);
      if (result.ok) continue;
      violate(
        rule.name,
        result.why === undefined
          ? message(policy, rule, values)
          : `${cannot(event)}: rule "${rule.name}" of "${policy.id}": ${result.why}`,
      );
    }
  }
  if (context.vm === null && evaluated.length === 0) {
    reasons.push({
      policy: DEFAULT_POLICY,
      rule: "unregistered-vm",
      message: `${cannot(event)}: vASP does not know this VM and no policy applies to it`,
      effect: "deny",
    });
  }
  const allow = !reasons.some((r) => r.effect === "deny");
  return {
    ...base,
    allow,
    reasons,
    actions: ACTIONS.filter((a) => actions.has(a)),
    transition: { from, to: allow ? transition.to : null },
    evaluated,
  };
}
