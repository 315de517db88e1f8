/**
 * Where a reported event moves a VM's recorded state, by the engine's `observeTransition`,
 * and the sentence its audit record carries.
 *
 * @module
 */
import {
  isLifecycleState,
  type LifecycleEvent,
  type LifecycleState,
  observeTransition,
  type Outcome,
  OUTCOMES,
  parseEvent,
  VaspError,
} from "../engine/mod.ts";
import type { VmRecord } from "../store/mod.ts";

/** The state shown for a VM vASP does not know. */
export const UNKNOWN = "unknown";

/**
 * Where an observed event moves the recorded state.
 *
 * @param stored the VM's record, `undefined` when unregistered
 * @param event the event
 * @param outcome how the operation ended
 * @returns the state to record (`null`: none, the state stays), whether the step was expected,
 *   and the record's message
 */
export function nextState(
  stored: VmRecord | undefined,
  event: LifecycleEvent,
  outcome: Outcome,
): { to: LifecycleState | null; expected: boolean; message: string } {
  const what = `${event.operation} ${outcome}`;
  if (stored && !isLifecycleState(stored.state)) {
    return {
      to: null,
      expected: false,
      message: `${what}: recorded state "${stored.state}" is not a life-cycle state; kept`,
    };
  }
  const from = (stored?.state ?? null) as LifecycleState | null;
  const seen = observeTransition(from, event.operation, {
    outcome,
    phase: event.phase,
    details: event.details,
  });
  const shown = from ?? UNKNOWN;
  // A VM first seen being destroyed is not worth a record of its own.
  const moves = seen.to !== null && seen.to !== from && !(from === null && seen.to === "destroyed");
  const change = moves ? `${shown} → ${seen.to}` : `state ${shown} kept`;
  return {
    to: moves ? seen.to : null,
    expected: seen.expected,
    message: `${what}: ${change}${seen.expected ? "" : " (unexpected from this state)"}`,
  };
}

/**
 * Checks the body of `POST /v1/events`: an event plus its `outcome`.
 *
 * @param body the decoded body
 * @returns the event and its outcome
 * @throws {VaspError} `event_invalid` naming the field and the offending value
 */
export function parseReport(body: unknown): { event: LifecycleEvent; outcome: Outcome } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) parseEvent(body);
  const { outcome, ...rest } = body as Record<string, unknown>;
  if (!(OUTCOMES as readonly unknown[]).includes(outcome)) {
    throw new VaspError(
      "event_invalid",
      `Invalid event outcome ${JSON.stringify(outcome) ?? "undefined"}; expected ${
        OUTCOMES.join(" or ")
      }`,
      { details: { field: "outcome", value: outcome } },
    );
  }
  return { event: parseEvent(rest), outcome: outcome as Outcome };
}
