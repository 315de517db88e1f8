/**
 * The pure core of vASP: life-cycle events, the life-cycle state machine, CEL policy
 * compilation and the decision. No I/O, no clock, no `Deno.*`: values in, values out.
 *
 * How an adapter (HTTP API, QMP gate, libvirt hook, monitor) uses it:
 *
 * 1. Validate the request body with {@link parseEvent} (throws `event_invalid`).
 * 2. Assign the decision ID (the engine never does), load the {@link DecisionContext}: the VM
 *    record (`null` if unknown), its vASP binding, latest measurements per region, host ASP
 *    state, and `now`.
 * 3. Take the set in force from `PolicyStore.current()` (src/policy) and call
 *    {@link decide}. It throws only `context_invalid` (a context for another VM): a CEL
 *    evaluation error is a violation (fail closed), reported in the reasons.
 * 4. Record and answer. `Decision.allow`, `reasons` (`{ policy, rule, message, effect }`),
 *    `actions` (union, in {@link ACTIONS} order), `policyRevision`, and
 *    `transition: { from, to }`: `to` is the state to record once the operation is done
 *    (`null` when denied). For a `measurement` event, a deny means the measurement violates a
 *    policy, and the actions say what to do about it (`quarantine`, `alert`).
 *
 * State bookkeeping: a decision does not move the recorded state; what the hypervisor is
 * observed to do does. For a reported outcome (`POST /v1/events`: a QMP event, libvirt's
 * `started`/`stopped`, a command's reply) {@link observeTransition} gives the state to record
 * and whether the step was expected (an unexpected one deserves an alert). `migrate-out` is
 * the one operation with a pending state: `migrating` until its outcome, `shut-off` when it
 * completed, `running` when it failed. {@link enterQuarantine} after the `quarantine` action
 * is enforced; {@link releaseQuarantine} for an operator's release (the VM stays `paused`).
 * Phases the hooks use for sub-steps (`start`/`reset`, `resume`/`wakeup`,
 * `migrate-out`/`continue`, `shutdown`/`request`, a `save` with `details.exposes_memory`)
 * keep the state; see {@link checkTransition}.
 *
 * Policies are compiled by src/policy (files, git, reload) through {@link createPolicyEnv},
 * {@link compilePolicy} and {@link createPolicySet}; a set built in code works the same way.
 *
 * @example
 * ```ts
 * import { compilePolicy, createPolicyEnv, createPolicySet, decide } from "./mod.ts";
 * const env = createPolicyEnv({});
 * const { policy } = compilePolicy({
 *   id: "no-unbound-start",
 *   description: "a VM starts only with a vASP bound to it",
 *   on: ["start"],
 *   rules: [{ name: "bound", expr: "vasp.present", message: '"no vASP for " + vm.name' }],
 *   effect: "deny",
 *   actions: ["alert"],
 * }, env);
 * const set = createPolicySet([policy!], { revision: "sha256:example" });
 * const decision = decide(set, {
 *   operation: "start",
 *   vm: { uuid: "4c1f6a4e-8f0b-4d8e-9a77-2a3e5f1c0b9d", name: "web-1" },
 *   source: "libvirt-hook",
 *   details: {},
 * }, { now: new Date(), vm: null, vasp: null, measurements: {}, host: null });
 * decision.allow; // false, reason "no vASP for web-1", actions ["alert"]
 * ```
 *
 * @module
 */
export {
  asError,
  describeError,
  ERROR_CODES,
  type ErrorCode,
  type ErrorCodeInfo,
  errorMessage,
  errorStatus,
  isClientVisible,
  isErrorCode,
  isVaspError,
  VaspError,
} from "./error.ts";
export { type LogFields, type Logger, type LogLevel, SILENT } from "./log.ts";
export {
  checkTransition,
  enterQuarantine,
  isLifecycleState,
  isOperation,
  LIFECYCLE_STATES,
  type LifecycleState,
  type ObservedTransition,
  observeTransition,
  type Operation,
  OPERATIONS,
  operationsFrom,
  type Outcome,
  OUTCOMES,
  releaseQuarantine,
  type TransitionCheck,
} from "./lifecycle.ts";
export {
  EVENT_SOURCES,
  type EventSource,
  type LifecycleEvent,
  parseEvent,
  type VmRef,
} from "./event.ts";
export type {
  BootComponent,
  BootState,
  DecisionContext,
  DestinationState,
  HostFile,
  HostState,
  MeasurementStatus,
  RegionMeasurement,
  VaspBinding,
  VmRecord,
} from "./context.ts";
export { sha256Digest } from "./context.ts";
export {
  type Action,
  ACTIONS,
  type Decision,
  DEFAULT_POLICY,
  type Effect,
  LIFECYCLE_POLICY,
  type Reason,
} from "./decision.ts";
export { type InputField, type InputType, typeName } from "./input_types.ts";
export { type ParamValue, POLICY_INPUTS } from "./inputs.ts";
export {
  type CompiledExpr,
  type CompiledPolicy,
  type CompiledRule,
  compilePolicy,
  createPolicyEnv,
  type ExprIssue,
  type ExprResult,
  type PolicyEnv,
  type PolicyIssue,
  type PolicySource,
} from "./compile.ts";
export { type CompiledPolicySet, createPolicySet } from "./policy_set.ts";
export { decide } from "./decide.ts";
