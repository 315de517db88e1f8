/**
 * The decision service: builds a decision's context, asks the engine, runs the vASP side,
 * records every outcome in the audit log, counts and logs it. HTTP, the measurement monitor
 * and the gate all go through {@link DecisionService}.
 *
 * @module
 */
export {
  type AnsweredReason,
  type DecisionAnswer,
  decisionAnswer,
  ERROR_POLICY,
  EVENT_POLICY,
  type EventAnswer,
} from "./answers.ts";
export { type IdSource, uuidV7Source } from "./ids.ts";
export { type DecisionOutcome, Metrics } from "./metrics.ts";
export {
  createMonitor,
  type GuestPort,
  type MonitorDeps,
  QEMU_GUESTS,
  RUNTIME_REGISTER,
  watchVmWrites,
} from "./monitor.ts";
export {
  type PolicyProblem,
  type PolicyProvider,
  policyProvider,
  type PolicyReloadResult,
} from "./policy_provider.ts";
export { type DecisionInput, DecisionService, type DecisionServiceDeps } from "./service.ts";
