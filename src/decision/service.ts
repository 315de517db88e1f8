/**
 * The decision service: load the context, decide with the policy set in force, append one audit
 * record per ID, then apply what the server can (quarantine, the vASP side) — never an effect
 * before its record — and answer; count it and log it. HTTP, the monitor and the gate all go
 * through it; it knows nothing of HTTP.
 *
 * @module
 */
import {
  type CompiledPolicySet,
  decide,
  type Decision,
  describeError,
  enterQuarantine,
  type HostState,
  isLifecycleState,
  isOperation,
  isVaspError,
  type LifecycleEvent,
  type LifecycleState,
  type Logger,
  parseEvent,
  releaseQuarantine,
  SILENT,
  VaspError,
} from "../engine/mod.ts";
import type { AuditEntry, Store, VmRecord } from "../store/mod.ts";
import { loadContext } from "./_context.ts";
import { nextState, parseReport, UNKNOWN } from "./_observe.ts";
import { eventEntry, failureEntry, inputDigest, operatorEntry } from "./_records.ts";
import { type DecisionAnswer, decisionAnswer, type EventAnswer } from "./answers.ts";
import type { PolicyProvider } from "./policy_provider.ts";
import type { Metrics } from "./metrics.ts";
import {
  refuseDecision,
  VASP_POLICY,
  type VaspOutcome,
  type VaspPlan,
  type VaspPort,
  type VaspStep,
} from "../vasp/mod.ts";

/** What the decision service needs. */
export interface DecisionServiceDeps {
  /** VM records, measurements, audit. */
  readonly store: Store;
  /** The policy set in force. */
  readonly policies: PolicyProvider;
  /** The clock (default: the system's). */
  readonly now?: () => Date;
  /** The host as the ASP measured it (default: not measured). */
  readonly host?: () => HostState | null;
  /** Where timings go. */
  readonly metrics?: Metrics;
  /** The vASP side: live instances, what allowed decisions do to them (default: none). */
  readonly vasp?: VaspPort;
  /** Where each decision, event and failure is logged (default: nowhere). */
  readonly log?: Logger;
}

/** What a request carried: the decoded body, and the text exactly as received. */
export interface DecisionInput {
  /** The decoded body (absent when it did not decode). */
  readonly body?: unknown;
  /** The body exactly as received; the record's input digest covers it. */
  readonly text?: string;
}

function elapsedMs(start: number): number {
  return Math.round((performance.now() - start) * 1000) / 1000;
}

/** The VM and operation a body names, for a log line (whatever could be read of it). */
function named(body: unknown): { vm: string; vm_uuid: string; operation: string } {
  const b = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  const vm = (typeof b.vm === "object" && b.vm !== null ? b.vm : {}) as Record<string, unknown>;
  const text = (v: unknown) => typeof v === "string" ? v.slice(0, 256) : "";
  return { vm: text(vm.name), vm_uuid: text(vm.uuid), operation: text(b.operation) };
}

const CAS_ATTEMPTS = 3;

/**
 * The decision service. Every exit path of {@link decide} and {@link observe}, errors
 * included, leaves one audit record under the caller's ID, a count and a log line.
 *
 * @example
 * ```ts ignore
 * // Needs a store, a policy set and their files: createServer (src/server) builds one.
 * const decisions = new DecisionService({ store, policies, metrics, log });
 * const answer = await decisions.decide(ids.next(), { body, text });
 * ```
 */
export class DecisionService {
  readonly #store: Store;
  readonly #policies: PolicyProvider;
  readonly #now: () => Date;
  readonly #host: () => HostState | null;
  readonly #metrics?: Metrics;
  readonly #vasp?: VaspPort;
  readonly #log: Logger;
  /** Failures already recorded, so that a caller's catch-all does not record them twice. */
  readonly #recorded = new WeakSet<object>();
  #lastWriteOk = true;

  /**
   * @param deps store, policies, clock, host state, metrics, vASP side, logger
   */
  constructor(deps: DecisionServiceDeps) {
    this.#store = deps.store;
    this.#policies = deps.policies;
    this.#now = deps.now ?? (() => new Date());
    this.#host = deps.host ?? (() => null);
    this.#metrics = deps.metrics;
    this.#vasp = deps.vasp;
    this.#log = deps.log ?? SILENT;
  }

  /** The host as decisions see it now (`null`: not measured), for status reports. */
  get host(): HostState | null {
    return this.#host();
  }

  /** Whether the last audit append succeeded (readiness). */
  get lastWriteOk(): boolean {
    return this.#lastWriteOk;
  }

  /** The revision in force for a record that is not a decision; "" when none can be had. */
  #revision(): string {
    try {
      return this.#policies.current()?.revision ?? "";
    } catch {
      return ""; // the record of the failure matters more than its revision
    }
  }

  /** The set in force, or `policies_unavailable`. */
  #set(): CompiledPolicySet {
    const set = this.#policies.current();
    if (!set) {
      throw new VaspError("policies_unavailable", "No policy set is loaded: deciding nothing");
    }
    return set;
  }

  async #decide(event: LifecycleEvent, now: Date) {
    const set = this.#set();
    const { context, stored } = await loadContext(this.#store, event.vm.uuid, {
      now,
      host: this.#host(),
    });
    // The vASP side may see more than the store: whether the instance is live, whether the
    // sealed state to restore imports.
    const step: VaspStep | undefined = await this.#vasp?.prepare(event, stored);
    let seen = step?.binding === undefined ? context : { ...context, vasp: step.binding };
    if (step?.boot) seen = { ...seen, boot: step.boot };
    if (step?.destination !== undefined) seen = { ...seen, destination: step.destination };
    const start = performance.now();
    let decision: Decision;
    try {
      decision = decide(set, event, seen);
    } catch (error) {
      step?.discard();
      throw error;
    }
    const seconds = (performance.now() - start) / 1000;
    this.#metrics?.engine(seconds);
    return { decision, stored, engineUs: seconds * 1e6, step };
  }

  /**
   * Decides a request, applies quarantine and the vASP side, and appends its record; resolves
   * once the record is durable. A failure is recorded (an `error` record), counted and logged
   * before it is thrown.
   *
   * @param id the decision ID, assigned before anything else
   * @param input the body as decoded, and as received (`text`: the record's input digest
   *   covers it; without it, the canonical JSON of `body` does)
   * @returns the answer
   * @throws {VaspError} `event_invalid`, `policies_unavailable`, the store's failures (when
   *   even the error record cannot be written, that failure is thrown: answer 503)
   */
  async decide(id: string, input: DecisionInput): Promise<DecisionAnswer> {
    const start = performance.now();
    let answer: DecisionAnswer;
    try {
      answer = await this.#decideAndRecord(id, input);
    } catch (error) {
      await this.recordFailure(id, input, error, { counted: true });
      throw error;
    }
    const operation = (input.body as { operation: string }).operation;
    this.#metrics?.decision(
      operation,
      answer.allow ? "allow" : "deny",
      (performance.now() - start) / 1000,
    );
    this.#log.log(answer.allow ? "info" : "warn", answer.allow ? "allowed" : "denied", {
      decision_id: id,
      ...named(input.body),
      source: (input.body as { source?: string }).source ?? "",
      allow: answer.allow,
      reasons: answer.reasons.map((r) => `${r.policy}/${r.rule}: ${r.message}`),
      actions: answer.actions,
      ms: elapsedMs(start),
    });
    return answer;
  }

  /**
   * Record before effect: the decision (with any refusal the vASP side foresaw) is appended and
   * durable before anything it asks for is done — the vASP side (an instance created, extended,
   * sealed, adopted or destroyed) and a quarantine. If the record cannot be written, nothing
   * was done (what was prepared is released) and the failure is answered. If an effect fails
   * after its record, a second record (`<id>.effect`, result `error`) says so, and the failure
   * is answered: never an effect without a record, never a record of an effect silently lost.
   */
  async #decideAndRecord(id: string, input: DecisionInput): Promise<DecisionAnswer> {
    const body = input.body;
    const event = parseEvent(body);
    const now = this.#now();
    const { decision: decided, stored, engineUs, step } = await this.#decide(event, now);
    // An allowed decision whose vASP side cannot be carried out is a deny (fail closed).
    let plan: VaspPlan = {};
    if (step) {
      try {
        plan = await step.plan(decided);
      } catch (error) {
        step.discard();
        throw error;
      }
    }
    const decision = plan.refusal ? refuseDecision(decided, plan.refusal) : decided;
    try {
      await this.#append({
        decisionId: id,
        time: now,
        vm: event.vm,
        operation: event.operation,
        source: event.source,
        inputDigest: inputDigest(input),
        policyRevision: decision.policyRevision,
        result: decision.allow ? "allow" : "deny",
        // What the vASP side will do that the record must name (a snapshot) is an `info` reason.
        reasons: plan.note && decision.allow
          ? [...decision.reasons, { policy: VASP_POLICY, ...plan.note, effect: "info" }]
          : decision.reasons,
        actions: decision.actions,
        engineLatencyUs: engineUs,
      });
    } catch (error) {
      plan.abandon?.();
      throw error;
    }
    let state = stored?.state ?? null;
    let vasp: VaspOutcome = {};
    try {
      if (decision.allow && plan.apply) vasp = await plan.apply();
      if (decision.actions.includes("quarantine") && stored) {
        state = (await this.#quarantine(stored)).state;
      }
    } catch (error) {
      await this.#recordEffectFailure(id, input, error);
      throw error;
    }
    const answer = decisionAnswer(id, decision, state);
    return vasp.details ? { ...answer, vasp: vasp.details } : answer;
  }

  /**
   * The record of an effect that failed after its decision was recorded, under `<id>.effect`
   * (the decision's own ID is taken). Whatever is thrown next is marked recorded, so the
   * caller's catch-all does not record it again under the decision's ID.
   */
  async #recordEffectFailure(id: string, input: DecisionInput, error: unknown): Promise<void> {
    const mark = (e: unknown) => {
      if (typeof e === "object" && e !== null) this.#recorded.add(e);
    };
    mark(error);
    this.#log.log("error", "decision recorded, carrying it out failed", {
      decision_id: id,
      ...named(input.body),
      code: error instanceof VaspError ? error.code : "internal_error",
      error: error instanceof Error ? error.message : String(error),
    });
    const entry = failureEntry(`${id}.effect`, input, error, {
      time: this.#now(),
      revision: this.#revision(),
    });
    try {
      await this.#append({
        ...entry,
        reasons: entry.reasons.map((r) => ({
          ...r,
          message: `decision ${id} was recorded, but carrying it out failed: ${r.message}`,
          decision_id: id,
        })),
      });
    } catch (failed) {
      mark(failed);
      this.#metrics?.error(failed instanceof VaspError ? failed.code : "internal_error");
      this.#log.log("error", "cannot record the failure of an effect", {
        decision_id: id,
        error: failed instanceof Error ? failed.message : String(failed),
      });
      throw failed;
    }
  }

  /**
   * Decides without recording or applying anything: a dry run.
   *
   * @param body an event, as for {@link decide}
   * @returns the engine's decision
   * @throws {VaspError} `event_invalid`, `policies_unavailable`, the store's failures
   */
  async evaluate(body: unknown): Promise<Decision> {
    const { decision, step } = await this.#decide(parseEvent(body), this.#now());
    step?.discard();
    return decision;
  }

  /** Moves a VM to quarantined, compare-and-set, retrying when it moved meanwhile. */
  async #quarantine(vm: VmRecord): Promise<VmRecord> {
    let current: VmRecord | undefined = vm;
    for (let attempt = 0; current && attempt < CAS_ATTEMPTS; attempt++) {
      if (current.state === "quarantined" || !isLifecycleState(current.state)) return current;
      let to: LifecycleState;
      try {
        to = enterQuarantine(current.state);
      } catch (error) {
        if (isVaspError(error, "transition_invalid")) return current; // destroyed
        throw error;
      }
      try {
        return await this.#store.updateVm(current.uuid, { state: to }, { ifState: current.state });
      } catch (error) {
        if (!isVaspError(error, "vm_state_conflict")) throw error;
        current = await this.#store.getVm(current.uuid);
      }
    }
    if (!current) return vm;
    throw new VaspError(
      "vm_state_conflict",
      `Cannot quarantine VM "${vm.name}": its state kept changing`,
      { details: { uuid: vm.uuid } },
    );
  }

  /**
   * Records something that happened and moves the recorded state with it (compare-and-set).
   * A completed operation on a VM vASP does not know registers it (tenant `""`), so that
   * the operations after an allowed start of an unknown VM exist.
   *
   * @param id the event ID
   * @param input the body `{ operation, vm, source, phase?, details, outcome }` as decoded and
   *   as received (see {@link decide})
   * @returns the state after the event
   * @throws {VaspError} `event_invalid`, `vm_state_conflict`, the store's failures; recorded
   *   and logged before they are thrown
   */
  async observe(id: string, input: DecisionInput): Promise<EventAnswer> {
    try {
      return await this.#observe(id, input);
    } catch (error) {
      await this.recordFailure(id, input, error, { counted: false });
      throw error;
    }
  }

  async #observe(id: string, input: DecisionInput): Promise<EventAnswer> {
    const body = input.body;
    const { event, outcome } = parseReport(body);
    const now = this.#now();
    const start = performance.now();
    for (let attempt = 0;; attempt++) {
      const stored = await this.#store.getVm(event.vm.uuid);
      const step = nextState(stored, event, outcome);
      let after = stored?.state ?? UNKNOWN;
      if (step.to !== null) {
        try {
          after = (await this.#move(stored, event, step.to)).state;
        } catch (error) {
          const raced = isVaspError(error, "vm_state_conflict", "vm_exists");
          if (raced && attempt + 1 < CAS_ATTEMPTS) continue;
          throw error;
        }
      }
      const from = stored?.state ?? UNKNOWN;
      this.#metrics?.event(event.operation, step.to !== null);
      await this.#append(
        eventEntry(id, {
          event,
          input: { body, text: input.text },
          outcome,
          step,
          from,
          to: after,
        }, {
          time: now,
          revision: this.#revision(),
          latencyUs: (performance.now() - start) * 1000,
        }),
      );
      try {
        await this.#vasp?.observed(event, outcome);
      } catch (error) {
        this.#log.log("error", `the vASP side of ${event.operation} ${outcome} failed`, {
          event_id: id,
          ...named(body),
          error: describeError(error),
        });
      }
      this.#log.log(step.expected ? "info" : "warn", "event", {
        event_id: id,
        ...named(body),
        phase: event.phase ?? "",
        outcome,
        from,
        to: after,
        applied: step.to !== null,
        expected: step.expected,
        ms: elapsedMs(start),
      });
      return {
        event_id: id,
        state: after,
        from,
        applied: step.to !== null,
        expected: step.expected,
      };
    }
  }

  #move(stored: VmRecord | undefined, event: LifecycleEvent, to: LifecycleState) {
    if (!stored) {
      return this.#store.registerVm({ ...event.vm, tenant: "", state: to });
    }
    return this.#store.updateVm(stored.uuid, { state: to }, { ifState: stored.state });
  }

  /**
   * Forgets a VM: its record goes, its vASP instance is destroyed, and the removal is audited.
   * An operator's `DELETE /v1/vms/{uuid}` (`remove`) and libvirt's undefine (`undefine`) both
   * come here.
   *
   * @param id the event ID
   * @param vm the VM
   * @param options `operation` (`remove` or `undefine`) and the record's `message`
   * @returns once the record is durable
   * @throws {VaspError} the store's failures
   */
  async removeVm(
    id: string,
    vm: VmRecord,
    options: { operation: "remove" | "undefine"; message: string },
  ): Promise<void> {
    await this.#store.removeVm(vm.uuid);
    await this.#vasp?.forget(vm);
    await this.recordOperatorAction(id, options.operation, vm, {
      message: options.message,
      source: options.operation === "undefine" ? "libvirt-events" : "operator",
    });
    this.#log.log("info", options.message, {
      event_id: id,
      vm: vm.name,
      vm_uuid: vm.uuid,
      operation: options.operation,
    });
  }

  /**
   * An operator's release of a quarantined VM: it stays stopped (`paused`). Audited.
   *
   * @param id the event ID
   * @param uuid the VM
   * @returns the VM after the release
   * @throws {VaspError} `vm_not_found`, `transition_invalid` (not quarantined),
   *   `vm_state_conflict`, the store's failures
   */
  async release(id: string, uuid: string): Promise<VmRecord> {
    const vm = await this.#store.getVm(uuid);
    if (!vm) throw new VaspError("vm_not_found", `No VM with UUID ${uuid}`, { details: { uuid } });
    const to = releaseQuarantine(vm.state as LifecycleState);
    const updated = await this.#store.updateVm(uuid, { state: to }, { ifState: vm.state });
    await this.recordOperatorAction(id, "release-quarantine", updated, {
      message: `VM "${vm.name}" released from quarantine by an operator; it stays ${to}`,
    });
    return updated;
  }

  /**
   * Appends the record of an operator's change to a VM (register, remove, release).
   *
   * @param id the event ID
   * @param operation what was done (`register`, `remove`, `release-quarantine`)
   * @param vm the VM concerned
   * @param options `message` for the record; `source` (default `operator`)
   * @returns once durable
   * @throws {VaspError} the store's failures
   */
  async recordOperatorAction(
    id: string,
    operation: string,
    vm: { uuid: string; name: string; state: string },
    options: { message: string; source?: string },
  ): Promise<void> {
    await this.#append(operatorEntry(id, operation, vm, {
      message: options.message,
      source: options.source,
      time: this.#now(),
      revision: this.#revision(),
    }));
  }

  /**
   * Appends the error record of a decision or event that failed, with what could be read of
   * its input; counts and logs it. A failure already recorded is not recorded again.
   *
   * @param id the ID the request was given
   * @param input the decoded body, and the raw text when it did not decode
   * @param error what failed
   * @param options `counted`: a decision (counted by operation), not an event
   * @returns once durable
   * @throws {VaspError} the store's failures (answer 503: fail closed)
   */
  async recordFailure(
    id: string,
    input: DecisionInput,
    error: unknown,
    options: { counted: boolean },
  ): Promise<void> {
    if (typeof error === "object" && error !== null) {
      if (this.#recorded.has(error)) return;
      this.#recorded.add(error);
    }
    const code = error instanceof VaspError ? error.code : "internal_error";
    if (options.counted) {
      // Only known operations become label values: a client cannot grow the metrics.
      const asked = (input.body as { operation?: unknown } | undefined)?.operation;
      this.#metrics?.decision(isOperation(asked) ? asked : "unknown", "error", 0);
    }
    this.#log.log("error", options.counted ? "decision failed" : "event failed", {
      decision_id: id,
      ...named(input.body),
      code,
      // The log is the operator's: the full message, which a client never sees.
      error: error instanceof Error ? error.message : String(error),
    });
    try {
      await this.#append(failureEntry(id, input, error, {
        time: this.#now(),
        revision: this.#revision(),
      }));
    } catch (failed) {
      this.#metrics?.error(failed instanceof VaspError ? failed.code : "internal_error");
      this.#log.log("error", "cannot record the failure", {
        decision_id: id,
        error: failed instanceof Error ? failed.message : String(failed),
      });
      throw failed;
    }
  }

  async #append(entry: AuditEntry): Promise<void> {
    const start = performance.now();
    try {
      await this.#store.appendAudit(entry);
      this.#lastWriteOk = true;
    } catch (error) {
      this.#lastWriteOk = false;
      throw error;
    }
    this.#metrics?.auditWrite((performance.now() - start) / 1000);
  }
}
