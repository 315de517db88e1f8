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
  "disk-export",
  "device-attach",
  "guest-input",
  "unknown",
] as const;

/**
 * A life-cycle operation. `measurement` is a runtime measurement result; `disk-export`,
 * `device-attach`, `guest-input` and `unknown` are monitor commands the QMP gate asks about
 * that reach into or out of a running VM without moving its state.
 */
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

/** How an observed operation ended (QMP events, libvirt's `started`/`stopped`, replies). */
export const OUTCOMES = ["completed", "failed"] as const;

/** How an observed operation ended. */
export type Outcome = typeof OUTCOMES[number];

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
  // Monitor commands on a running QEMU: never a transition.
  "disk-export": [{ from: ALIVE, to: "same" }],
  "device-attach": [{ from: ALIVE, to: "same" }],
  "guest-input": [{ from: ALIVE, to: "same" }],
  // A command of unknown effect is the policies' to refuse, in any state QEMU runs in.
  unknown: [{ from: [...ALIVE, "migrating", "quarantined"], to: "same" }],
};

/**
 * Sub-steps that the hooks name by phase and that do not move the VM the way the operation
 * itself does (the QMP gate's classification, docs/hooks.md). Any other phase (libvirt's
 * `prepare`, `start`, `begin` …) is the operation itself.
 */
const STEPS: Partial<Record<Operation, Readonly<Record<string, readonly Row[]>>>> = {
  start: { reset: [{ from: ALIVE, to: "same" }] },
  // libvirt starts QEMU with its vCPUs stopped (`-S`) and sends the first `cont` before its
  // `started` hook: the gate asks it as phase `launch` of the start (restore, migration,
  // snapshot revert) already decided, and the VM moves when `started` is reported.
  resume: {
    wakeup: [{ from: ["running"], to: "same" }],
    launch: [{ from: [...INACTIVE, "saved", ...ALIVE], to: "same" }],
    // `virsh dump` saves the VM's state with a `migrate` to a pipe, as `virsh save` does, and
    // then lets it run on (the gate names that `cont`): the VM is running again.
    "after-save": [{ from: ["saved", ...ALIVE], to: "running" }],
  },
  // A memory dump (dump-guest-memory, pmemsave …) is asked about as a save but moves nothing;
  // of a quarantined VM it is the forensic evidence, so the policies decide, not the table.
  save: { dump: [{ from: [...ALIVE, "quarantined"], to: "same" }] },
  "migrate-out": {
    // libvirt pauses the guest before the switch-over (QEMU's pause-before-switchover) and
    // sends `migrate-continue` then: the VM is recorded paused by then.
    continue: [{ from: ["migrating", ...ALIVE], to: "same" }],
    // The destination's vASP fetches the VM's state before libvirt starts the migration:
    // the VM runs on, here, until QEMU's `migrate` (docs/lifecycle.md, "Migration").
    transfer: [{ from: ALIVE, to: "same" }],
  },
  "migrate-in": {
    // The gate's `migrate-incoming` into a QEMU libvirt started for a restore or an incoming
    // migration its hook decided; the `started` report moves the VM.
    launch: [{ from: [...INACTIVE, "saved"], to: "same" }],
    recover: [{ from: [null, ...INACTIVE, ...ALIVE], to: "running" }],
    failover: [{ from: [null, ...INACTIVE, ...ALIVE], to: "running" }],
  },
  // An ACPI power-button press: the guest decides whether to shut down. libvirt's `stopped`
  // and `release` say that QEMU is gone: they end a VM that ran, and come too after a start,
  // restore or migration that was denied or failed before it ran, and after a save.
  shutdown: {
    request: [{ from: ALIVE, to: "same" }],
    stopped: [{ from: ALIVE, to: "shut-off" }],
    release: [{ from: ALIVE, to: "shut-off" }],
  },
};

/**
 * Observed steps that only say a VM that ran has ended: from any other state (one that never
 * ran after a denial, a saved one, one already shut off or unknown) the state stays.
 */
const ENDS_ONLY_ALIVE: Partial<Record<Operation, readonly string[]>> = {
  // A forced power-off (QEMU killed: `virsh destroy`, and after `virsh save`) or `quit` too.
  shutdown: ["stopped", "release", "forced", "quit"],
};

const STOPPING: ReadonlySet<Operation> = new Set(["pause", "shutdown", "destroy", "measurement"]);

/** Where an observed completion leads when the request table has no row for the state. */
const LANDING: Readonly<Record<Operation, Target>> = {
  define: "defined",
  start: "running",
  pause: "paused",
  resume: "running",
  save: "saved",
  restore: "running",
  snapshot: "same",
  "migrate-out": "shut-off",
  "migrate-in": "running",
  shutdown: "shut-off",
  destroy: "destroyed",
  measurement: "same",
  "disk-export": "same",
  "device-attach": "same",
  "guest-input": "same",
  unknown: "same",
};

/** Whether an operation exists from a state and, if so, where it leads. */
export type TransitionCheck =
  | { readonly exists: true; readonly from: LifecycleState | null; readonly to: LifecycleState }
  | { readonly exists: false; readonly from: LifecycleState | null; readonly reason: string };

function rowsFor(operation: Operation, phase: string | undefined): readonly Row[] {
  const steps = STEPS[operation];
  return phase !== undefined && steps && Object.hasOwn(steps, phase)
    ? steps[phase]
    : REQUESTS[operation];
}

/**
 * The phase that selects a sub-step: the event's phase, or `dump` for a save the QMP gate
 * flags as exposing guest memory (`details.exposes_memory`).
 */
function stepPhase(
  operation: Operation,
  options: { phase?: string; details?: Readonly<Record<string, unknown>> },
): string | undefined {
  if (options.phase !== undefined && options.phase !== "") return options.phase;
  return operation === "save" && options.details?.exposes_memory === true ? "dump" : undefined;
}

/**
 * Tests whether a requested operation exists from state `from` and gives the state it leads
 * to once done.
 *
 * @param from the recorded state, or `null` for a VM vASP does not know
 * @param operation the operation asked for
 * @param options the event's `phase` (sub-steps such as `reset`, `wakeup`, `continue` have
 *   their own rows) and `details` (a save with `exposes_memory: true` is a memory dump)
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
  options: { phase?: string; details?: Readonly<Record<string, unknown>> } = {},
): TransitionCheck {
  const phase = stepPhase(operation, options);
  const row = rowsFor(operation, phase).find((r) => r.from.includes(from));
  if (row && from !== null) return { exists: true, from, to: row.to === "same" ? from : row.to };
  if (row && row.to !== "same") return { exists: true, from, to: row.to };
  const what = phase !== undefined && STEPS[operation]?.[phase]
    ? `${operation} ${phase}`
    : operation;
  return {
    exists: false,
    from,
    reason: from === null ? `no ${what} for an unregistered VM` : `no ${what} from state ${from}`,
  };
}

/** Where an observed operation left the VM. */
export interface ObservedTransition {
  /** The recorded state before. */
  readonly from: LifecycleState | null;
  /** The state to record now (`null`: still unknown to vASP). */
  readonly to: LifecycleState | null;
  /**
   * False when the life cycle has no such step from `from`: something happened that vASP did
   * not expect (a resume of a quarantined VM means the gate was bypassed) — worth an alert.
   */
  readonly expected: boolean;
}

/**
 * The state to record after an operation was observed to complete or fail (a QMP event, a
 * libvirt `started`/`stopped` report, a command's reply). The hypervisor is the truth: an
 * unexpected completion still moves the state, except out of quarantine, which only a
 * destroy (or an operator's release) leaves. libvirt's `stopped` and `release` move only a
 * VM that ran (`running`, `paused`): libvirt sends them too after a denied start or restore
 * and after a save, when the VM never ran or its state is on disk.
 *
 * @param from the recorded state, or `null` for a VM vASP does not know
 * @param operation the operation observed
 * @param options `outcome` (`completed` or `failed`), the event's `phase` and `details`
 * @returns the state to record and whether the step was expected
 * @example
 * ```ts
 * import { observeTransition } from "./lifecycle.ts";
 * observeTransition("migrating", "migrate-out", { outcome: "failed" }).to; // "running"
 * observeTransition("quarantined", "resume", { outcome: "completed" }).expected; // false
 * ```
 */
export function observeTransition(
  from: LifecycleState | null,
  operation: Operation,
  options: {
    outcome: Outcome;
    phase?: string;
    details?: Readonly<Record<string, unknown>>;
  },
): ObservedTransition {
  const check = checkTransition(from, operation, options);
  if (options.outcome === "failed") {
    // QEMU restarts the source's vCPUs after a failed outgoing migration if they ran before;
    // a source paused before stays stopped, which the gate then observes as a pause.
    const to = operation === "migrate-out" && from === "migrating" ? "running" : from;
    return { from, to, expected: check.exists || from === "migrating" };
  }
  if (operation === "migrate-out" && (from === "migrating" || check.exists)) {
    return {
      from,
      to: stepPhase(operation, options) === "continue" ? from : "shut-off",
      expected: true,
    };
  }
  const endsOnlyAlive = ENDS_ONLY_ALIVE[operation]?.includes(options.phase ?? "") ?? false;
  const landing = endsOnlyAlive ? "same" : LANDING[operation];
  const to = check.exists ? check.to : landing === "same" ? from : landing;
  if (from === "quarantined" && to !== "destroyed") {
    // The enforcer stops a quarantined VM; anything that would run it again was not allowed.
    return { from, to: from, expected: STOPPING.has(operation) };
  }
  return { from, to, expected: check.exists || to === from };
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
 * @throws {VaspError} `transition_invalid` for a destroyed VM
 */
export function enterQuarantine(from: LifecycleState): LifecycleState {
  if (from === "destroyed") {
    throw new VaspError("transition_invalid", "Cannot quarantine a destroyed VM", {
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
 * @throws {VaspError} `transition_invalid` when the VM is not quarantined
 */
export function releaseQuarantine(from: LifecycleState): LifecycleState {
  if (from !== "quarantined") {
    throw new VaspError(
      "transition_invalid",
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
