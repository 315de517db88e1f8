/**
 * The VM life cycle as vASP tracks it: the operations, the states, and which operation
 * exists from which state. An operation that does not exist from the current state is denied
 * before any policy runs.
 *
 * @module
 */
import { VaspError } from "./error.ts";

/** Every life-cycle operation a hook or client can ask about, in life-cycle order. */
export const OPERATIONS = [
  "define",
  "start",
  "pause",
  "resume",
  "save",
  "restore",
  "snapshot",
  "migrate-out",
  "migrate-in",
  "shutdown",
  "destroy",
  "measurement",
] as const;

/** A life-cycle operation; `measurement` is a runtime measurement result, not a transition. */
export type Operation = typeof OPERATIONS[number];

/**
 * Every state vASP records for a VM.
 *
 * No `crashed` state: a guest panic is reported by QEMU as `GUEST_PANICKED` and then, per the
 * domain's `on_crash`, as a stop (recorded `paused`), a shutdown or a destroy; vASP's decision
 * is the same as for those. `shut-off` differs from `defined` in that the VM has run: its
 * measurements and vASP state exist.
 */
export const LIFECYCLE_STATES = [
  "defined",
  "running",
  "paused",
  "saved",
  "migrating",
  "shut-off",
  "quarantined",
  "destroyed",
] as const;

/** A recorded life-cycle state. A VM vASP does not know has no state (`null`). */
export type LifecycleState = typeof LIFECYCLE_STATES[number];

/**
 * Phases that report how a pending transition ended rather than ask for one. Only operations
 * with a pending state (`migrate-out` → `migrating`) have them.
 */
export const OUTCOME_PHASES = ["completed", "failed", "cancelled"] as const;

/** How a pending transition ended. */
export type OutcomePhase = typeof OUTCOME_PHASES[number];

/** The state an operation leads to; `same` keeps the current state. */
type Target = LifecycleState | "same";

interface Row {
  readonly from: readonly (LifecycleState | null)[];
  readonly to: Target;
}

const ALIVE: readonly LifecycleState[] = ["running", "paused"];
const INACTIVE: readonly LifecycleState[] = ["defined", "shut-off"];

/**
 * Requests. `null` is a VM vASP does not know: it may be defined, created transient
 * (`virsh create` starts without a define), restored from a save image or migrated in; the
 * default deny for an unknown VM without a matching policy still applies.
 */
const REQUESTS: Readonly<Record<Operation, readonly Row[]>> = {
  define: [{ from: [null, ...INACTIVE, "destroyed"], to: "defined" }],
  start: [{ from: [null, ...INACTIVE], to: "running" }],
  pause: [{ from: ["running"], to: "paused" }],
  resume: [{ from: ["paused"], to: "running" }],
  save: [{ from: ALIVE, to: "saved" }],
  // Reverting a live VM to an internal snapshot (loadvm, snapshot-load) keeps it running or
  // paused, as QEMU does.
  restore: [{ from: [null, "saved"], to: "running" }, { from: ALIVE, to: "same" }],
  // Disk-only snapshots of an inactive VM exist too.
  snapshot: [{ from: [...ALIVE, ...INACTIVE], to: "same" }],
  "migrate-out": [{ from: ALIVE, to: "migrating" }],
  "migrate-in": [{ from: [null, ...INACTIVE], to: "running" }],
  shutdown: [{ from: ALIVE, to: "shut-off" }],
  destroy: [{
    from: [null, ...LIFECYCLE_STATES.filter((s) => s !== "destroyed")],
    to: "destroyed",
  }],
  // The guest still executes while migrating, and a quarantined VM is kept under watch for
  // evidence; a measurement never changes the state.
  measurement: [{ from: [...ALIVE, "migrating", "quarantined"], to: "same" }],
};

/**
 * Outcomes of pending transitions. A failed or cancelled outgoing migration leaves the source
 * running (QEMU restarts the vCPUs it stopped for the switch-over); a source that was paused
 * before stays stopped, and the QMP gate reports that as a `pause` it observes.
 */
const OUTCOMES: Partial<Record<Operation, Readonly<Record<OutcomePhase, Row>>>> = {
  "migrate-out": {
    completed: { from: ["migrating"], to: "shut-off" },
    failed: { from: ["migrating"], to: "running" },
    cancelled: { from: ["migrating"], to: "running" },
  },
};

/** Whether an operation exists from a state and, if so, where it leads. */
export type TransitionCheck =
  | { readonly exists: true; readonly from: LifecycleState | null; readonly to: LifecycleState }
  | { readonly exists: false; readonly from: LifecycleState | null; readonly reason: string };

/**
 * Tests whether `operation` exists from state `from` and gives the state it leads to.
 *
 * @param from the recorded state, or `null` for a VM vASP does not know
 * @param operation the operation asked for
 * @param options `phase`: an outcome phase (`completed`, `failed`, `cancelled`) checks the end
 *   of a pending transition; any other phase is a request
 * @returns `{ exists: true, to }`, or `{ exists: false, reason }` with a reason such as
 *   `no resume from state quarantined`
 * @example
 * ```ts
 * import { checkTransition } from "./lifecycle.ts";
 * checkTransition("paused", "resume"); // { exists: true, from: "paused", to: "running" }
 * checkTransition("quarantined", "resume").exists; // false
 * ```
 */
export function checkTransition(
  from: LifecycleState | null,
  operation: Operation,
  options: { phase?: string } = {},
): TransitionCheck {
  const outcome = OUTCOMES[operation];
  const phase = options.phase as OutcomePhase | undefined;
  const rows = outcome && phase !== undefined && phase in outcome
    ? [outcome[phase]]
    : REQUESTS[operation];
  const row = rows.find((r) => r.from.includes(from));
  if (row && from !== null) return { exists: true, from, to: row.to === "same" ? from : row.to };
  if (row && row.to !== "same") return { exists: true, from, to: row.to };
  const what = outcome && phase !== undefined && phase in outcome
    ? `${operation} ${phase}`
    : operation;
  return {
    exists: false,
    from,
    reason: from === null ? `no ${what} for an unregistered VM` : `no ${what} from state ${from}`,
  };
}

/**
 * The operations that exist from a state, in {@link OPERATIONS} order (requests only).
 *
 * @param from a recorded state, or `null` for a VM vASP does not know
 * @returns the operations a request may ask for
 */
export function operationsFrom(from: LifecycleState | null): Operation[] {
  return OPERATIONS.filter((op) => checkTransition(from, op).exists);
}

/**
 * The state after the `quarantine` action has been enforced (the VM stopped through QMP).
 *
 * @param from the recorded state
 * @returns `quarantined`
 * @throws {VaspError} `invalid_transition` for a destroyed VM
 */
export function enterQuarantine(from: LifecycleState): LifecycleState {
  if (from === "destroyed") {
    throw new VaspError("invalid_transition", "Cannot quarantine a destroyed VM", {
      details: { from },
    });
  }
  return "quarantined";
}

/**
 * The state after an operator releases a quarantined VM: it stays stopped (`paused`), and
 * resuming it is a `resume` that the policies decide like any other.
 *
 * @param from the recorded state
 * @returns `paused`
 * @throws {VaspError} `invalid_transition` when the VM is not quarantined
 */
export function releaseQuarantine(from: LifecycleState): LifecycleState {
  if (from !== "quarantined") {
    throw new VaspError(
      "invalid_transition",
      `Cannot release a VM from quarantine: it is ${from}, not quarantined`,
      { details: { from } },
    );
  }
  return "paused";
}

/**
 * Type guard for {@link Operation}.
 *
 * @param value any value
 * @returns whether `value` names an operation
 */
export function isOperation(value: unknown): value is Operation {
  return (OPERATIONS as readonly unknown[]).includes(value);
}

/**
 * Type guard for {@link LifecycleState}.
 *
 * @param value any value
 * @returns whether `value` names a state
 */
export function isLifecycleState(value: unknown): value is LifecycleState {
  return (LIFECYCLE_STATES as readonly unknown[]).includes(value);
}
