/**
 * The decision service behind `/v1/decide` and `/v1/events`: load the context, decide with
 * the policy set in force, apply what the server can (quarantine), and append one audit
 * record per ID before anything is answered. It knows nothing of HTTP.
 *
 * @module
 */
import {
  type CompiledPolicySet,
  decide,
  type Decision,
  enterQuarantine,
  type HostState,
  isLifecycleState,
  type LifecycleEvent,
  type LifecycleState,
  parseEvent,
  releaseQuarantine,
  VaspError,
} from "../engine/mod.ts";
import type { AuditEntry, Store, VmRecord } from "../store/mod.ts";
import { loadContext } from "./_context.ts";
import { nextState, parseReport, UNKNOWN } from "./_observe.ts";
import { eventEntry, failureEntry, inputDigest, operatorEntry } from "./_records.ts";
import { type DecisionAnswer, decisionAnswer, type EventAnswer } from "./answers.ts";
import type { PolicyProvider } from "./policy_provider.ts";
import type { Metrics } from "./metrics.ts";
import { refuseDecision, type VaspPort, type VaspStep } from "./vasp_port.ts";

/** What the decider needs. */
export interface DeciderDeps {
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
}

const CAS_ATTEMPTS = 3;

/**
 * The decision service.
 *
 * @example
 * ```ts ignore
 * const decider = new Decider({ store, policies });
 * const answer = await decider.decide(ids.next(), JSON.parse(body));
 * ```
 */
export class Decider {
  readonly #store: Store;
  readonly #policies: PolicyProvider;
  readonly #now: () => Date;
  readonly #host: () => HostState | null;
  readonly #metrics?: Metrics;
  readonly #vasp?: VaspPort;
  #lastWriteOk = true;

  /**
   * @param deps store, policies, clock, host state, metrics
   */
  constructor(deps: DeciderDeps) {
    this.#store = deps.store;
    this.#policies = deps.policies;
    this.#now = deps.now ?? (() => new Date());
    this.#host = deps.host ?? (() => null);
    this.#metrics = deps.metrics;
    this.#vasp = deps.vasp;
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
    const step: VaspStep | undefined = this.#vasp?.prepare(event, stored);
    const seen = step?.binding === undefined ? context : { ...context, vasp: step.binding };
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
   * Decides a request, applies quarantine, and appends its record; resolves once the record
   * is durable.
   *
   * @param id the decision ID, assigned before anything else
   * @param body the request body as decoded
   * @param options `text`: the body exactly as received, which the record's input digest
   *   covers (without it, the canonical JSON of `body` does)
   * @returns the answer
   * @throws {VaspError} `invalid_event`, `policies_unavailable`, the store's failures; the
   *   caller records the failure with {@link recordFailure}
   */
  async decide(
    id: string,
    body: unknown,
    options: { text?: string } = {},
  ): Promise<DecisionAnswer> {
    const event = parseEvent(body);
    const now = this.#now();
    const { decision: decided, stored, engineUs, step } = await this.#decide(event, now);
    // An allowed decision whose vASP side cannot be carried out is a deny (fail closed).
    const vasp = step ? await step.settle(decided) : {};
    const decision = vasp.refusal ? refuseDecision(decided, vasp.refusal) : decided;
    let state = stored?.state ?? null;
    if (decision.actions.includes("quarantine") && stored) {
      state = (await this.#quarantine(stored)).state;
    }
    await this.#append({
      decisionId: id,
      time: now,
      vm: event.vm,
      operation: event.operation,
      source: event.source,
      inputDigest: inputDigest({ body, text: options.text }),
      policyRevision: decision.policyRevision,
      result: decision.allow ? "allow" : "deny",
      reasons: decision.reasons,
      actions: decision.actions,
      engineLatencyUs: engineUs,
    });
    const answer = decisionAnswer(id, decision, state);
    return vasp.details ? { ...answer, vasp: vasp.details } : answer;
  }

  /**
   * Decides without recording or applying anything: a dry run.
   *
   * @param body an event, as for {@link decide}
   * @returns the engine's decision
   * @throws {VaspError} `invalid_event`, `policies_unavailable`, the store's failures
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
        if ((error as VaspError).code === "invalid_transition") return current; // destroyed
        throw error;
      }
      try {
        return await this.#store.updateVm(current.uuid, { state: to }, { ifState: current.state });
      } catch (error) {
        if ((error as VaspError).code !== "vm_state_conflict") throw error;
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
   * @param body `{ operation, vm, source, phase?, details, outcome }`
   * @param options `text`: the body exactly as received (see {@link decide})
   * @returns the state after the event
   * @throws {VaspError} `invalid_event`, `vm_state_conflict`, the store's failures
   */
  async observe(id: string, body: unknown, options: { text?: string } = {}): Promise<EventAnswer> {
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
          const code = (error as VaspError).code;
          const raced = code === "vm_state_conflict" || code === "vm_exists";
          if (raced && attempt + 1 < CAS_ATTEMPTS) continue;
          throw error;
        }
      }
      const from = stored?.state ?? UNKNOWN;
      this.#metrics?.event(event.operation, step.to !== null);
      await this.#append(
        eventEntry(id, {
          event,
          input: { body, text: options.text },
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
   * An operator's release of a quarantined VM: it stays stopped (`paused`). Audited.
   *
   * @param id the event ID
   * @param uuid the VM
   * @returns the VM after the release
   * @throws {VaspError} `vm_not_found`, `invalid_transition` (not quarantined),
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
   * @param options `message` for the record
   * @returns once durable
   * @throws {VaspError} the store's failures
   */
  async recordOperatorAction(
    id: string,
    operation: string,
    vm: { uuid: string; name: string; state: string },
    options: { message: string },
  ): Promise<void> {
    await this.#append(operatorEntry(id, operation, vm, {
      message: options.message,
      time: this.#now(),
      revision: this.#revision(),
    }));
  }

  /**
   * Appends the error record of a decision or event that failed, with what could be read of
   * its input.
   *
   * @param id the ID the request was given
   * @param input the decoded body, and the raw text when it did not decode
   * @param error what failed
   * @returns once durable
   * @throws {VaspError} the store's failures (answer 503: fail closed)
   */
  async recordFailure(
    id: string,
    input: { body?: unknown; text?: string },
    error: unknown,
  ): Promise<void> {
    await this.#append(failureEntry(id, input, error, {
      time: this.#now(),
      revision: this.#revision(),
    }));
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
