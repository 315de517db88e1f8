/**
 * What the engine answers: allow or deny, every reason, the actions asked for.
 *
 * @module
 */
import type { VmRef } from "./event.ts";
import type { LifecycleState, Operation } from "./lifecycle.ts";

/** What a violated policy may ask the enforcer to do, in escalating order. */
export const ACTIONS = ["alert", "pause", "kill", "quarantine"] as const;

/** An action a policy violation asks for. */
export type Action = typeof ACTIONS[number];

/** What a violated rule does to the decision: `deny` denies, `warn` only reports. */
export type Effect = "deny" | "warn";

/** Policy name of reasons the life-cycle state machine gives (before any policy runs). */
export const LIFECYCLE_POLICY = "vasp.lifecycle";
/** Policy name of the deny for a VM vASP does not know that no policy matched. */
export const DEFAULT_POLICY = "vasp.default";

/** One violated rule. */
export interface Reason {
  /** Policy id (or {@link LIFECYCLE_POLICY}, {@link DEFAULT_POLICY}). */
  readonly policy: string;
  /** Rule name within the policy (`match` when the match condition itself failed). */
  readonly rule: string;
  /** Human-readable, from the rule's message expression. */
  readonly message: string;
  /** `deny` if this reason denies, `warn` if it only reports. */
  readonly effect: Effect;
}

/**
 * The engine's answer to one event. It carries no ID: the caller that records the decision
 * assigns `decision_id` (first, so that every exit path, errors included, is logged with it).
 */
export interface Decision {
  /** True when no reason has effect `deny`. */
  readonly allow: boolean;
  /** The operation decided. */
  readonly operation: Operation;
  /** The VM concerned. */
  readonly vm: VmRef;
  /** Every violated rule, deny and warn, in policy order. */
  readonly reasons: readonly Reason[];
  /** The union of the actions of every violated policy, in {@link ACTIONS} order. */
  readonly actions: readonly Action[];
  /** The revision of the policy set: a git commit id or `sha256:<hex>`. */
  readonly policyRevision: string;
  /** The recorded state before, and the state an allowed operation leads to (`null`: none). */
  readonly transition: {
    readonly from: LifecycleState | null;
    readonly to: LifecycleState | null;
  };
  /** Ids of the policies that matched the event and were evaluated. */
  readonly evaluated: readonly string[];
}
