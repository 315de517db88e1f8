/**
 * What `/v1/decide` and `/v1/events` answer, and the names of the built-in reasons their audit
 * records carry.
 *
 * @module
 */
import type { Decision } from "../engine/mod.ts";

/** A reason as answered: the engine's, with its effect. */
export interface AnsweredReason {
  /** Policy id. */
  readonly policy: string;
  /** Rule name. */
  readonly rule: string;
  /** Why, for a human. */
  readonly message: string;
  /** `deny` or `warn`. */
  readonly effect: string;
}

/** The answer of `POST /v1/decide`. */
export interface DecisionAnswer {
  /** The decision's ID; the audit record carries it. */
  readonly decision_id: string;
  /** Whether the operation may go ahead. */
  readonly allow: boolean;
  /** Every violated rule, deny and warn. */
  readonly reasons: readonly AnsweredReason[];
  /** Actions asked for, in escalating order; the hook or gate enforces pause and kill. */
  readonly actions: readonly string[];
  /** The policy revision decided under. */
  readonly policy_revision: string;
  /** The VM's recorded state after the decision (`null`: unregistered). */
  readonly state: string | null;
  /** The state before, and the state an allowed operation leads to once done. */
  readonly transition: { readonly from: string | null; readonly to: string | null };
  /** What the vASP side did (instance ID, export counter …), when it did something. */
  readonly vasp?: Readonly<Record<string, unknown>>;
}

/** The answer of `POST /v1/events`. */
export interface EventAnswer {
  /** The event's ID; the audit record carries it. */
  readonly event_id: string;
  /** The VM's recorded state after the event (`unknown`: still unregistered). */
  readonly state: string;
  /** The state before (`unknown`: unregistered). */
  readonly from: string;
  /** Whether the recorded state moved. */
  readonly applied: boolean;
  /**
   * False when the life cycle has no such step from the state before (a resume of a
   * quarantined VM: the gate was bypassed), worth an alert.
   */
  readonly expected: boolean;
}

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
    actions: decision.actions,
    policy_revision: decision.policyRevision,
    state,
    transition: decision.transition,
  };
}
