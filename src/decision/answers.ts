/**
 * What `/v1/decide` and `/v1/events` answer (the types are src/wire's), and the names of the
 * built-in reasons their audit records carry.
 *
 * @module
 */
import type { Decision } from "../engine/mod.ts";
import type { DecisionAnswer, EventAnswer, Reason } from "../wire/mod.ts";

export type { DecisionAnswer, EventAnswer };

/** A reason as answered: the engine's, with its effect. */
export type AnsweredReason = Reason;

/** Policy name of the reason every event record carries. */
export const EVENT_POLICY = "vasp.event";
/** Policy name of the reason an error record carries. */
export const ERROR_POLICY = "vasp.error";

/**
 * The answer of a decision.
 *
 * @param id the decision ID
 * @param decision the engine's decision
 * @param state the VM's recorded state after it (`null`: unregistered)
 * @returns the JSON answer
 */
export function decisionAnswer(
  id: string,
  decision: Decision,
  state: string | null,
): DecisionAnswer {
  return {
    decision_id: id,
    allow: decision.allow,
    reasons: decision.reasons.map((r) => ({
      policy: r.policy,
      rule: r.rule,
      message: r.message,
      effect: r.effect,
    })),
    actions: [...decision.actions],
    policy_revision: decision.policyRevision,
    state,
    transition: decision.transition,
  };
}
