/**
 * The per-VM measurement scheduler (DESIGN "Guest introspection"): each VM with
 * introspection settings is measured at its interval, one measurement in flight per VM; the
 * verdicts are recorded, their digest extended into the VM's vASP instance when it changes,
 * and a `measurement` decision asked for when the outcome changes, whose actions are then
 * enforced. Everything outside (the store, the guest, the decision, QMP) comes in as ports,
 * so the loop itself is tested without a guest.
 *
 * It wakes only when a VM is due: the VMs wait in a heap ordered by due time and one timer
 * is armed for the earliest. The list of VMs is read in full rarely (`pollMs`, 10 s by
 * default, to catch up); a change to one VM comes in through {@link MeasurementMonitor.changed}.
 * Each next due time is the start of the last measurement plus the interval plus a random
 * jitter in [0, `jitterMs`], so VMs started together drift apart instead of waking as one.
 * A host CPU budget (`budgetMs` of measurement per second, a token bucket) bounds what all
 * the measurements together may take; a due VM over budget waits until the bucket refills,
 * and that is counted and told (`delayed`).
 *
 * @module
 */
import type { KernelMeasurement } from "./measurement.ts";
import type { ReferenceSet } from "./reference.ts";
import { failedVerdicts, judge, type RegionVerdict, verdictDigest } from "./verdict.ts";
import { describeError, errorMessage } from "../engine/error.ts";
import { DueHeap } from "./_due_heap.ts";

/** A VM to measure. */
export interface MonitorTarget {
  /** The VM's UUID. */
  readonly uuid: string;
  /** Its name. */
  readonly name: string;
  /** Milliseconds between measurements. */
  readonly intervalMs: number;
  /** Identifies the settings: when it changes, the guest is opened again. */
  readonly key: string;
}

/** An opened guest, measured repeatedly until it fails or its settings change. */
export interface GuestSession {
  /** The measurement profile's ID (the reference set to compare with). */
  readonly profileId: string;
  /** Measures every region once. */
  measure(): Promise<KernelMeasurement>;
  /** Closes the guest's RAM. */
  close(): void;
}

/** What a decision asked the monitor to do. */
export interface MonitorDecision {
  /** The decision's ID. */
  readonly decisionId: string;
  /** Whether it allowed. */
  readonly allow: boolean;
  /** The actions asked for. */
  readonly actions: readonly string[];
}

/** Everything the scheduler uses. */
export interface MonitorPorts {
  /** The VMs to measure now. */
  targets(): Promise<MonitorTarget[]>;
  /**
   * One VM as a target now, `undefined` when it is not to be measured. Without it, a change
   * to one VM reads the whole list again.
   */
  target?(uuid: string): Promise<MonitorTarget | undefined>;
  /** Opens a VM's guest (RAM, symbols, KASLR, profile). */
  open(target: MonitorTarget): Promise<GuestSession>;
  /** The reference set of a profile, `undefined` when none was learned. */
  reference(profileId: string): Promise<ReferenceSet | undefined>;
  /** The regions last recorded for a VM, or planned for it (for an error record). */
  regions(target: MonitorTarget): Promise<string[]>;
  /** Records the verdicts as the VM's latest measurements. */
  record(target: MonitorTarget, verdicts: readonly RegionVerdict[], at: Date): Promise<void>;
  /** Extends the VM's vASP instance with a changed measurement. */
  extend(target: MonitorTarget, text: string, description: string): Promise<void>;
  /** Asks for a `measurement` decision (source `monitor`). */
  decide(target: MonitorTarget, details: Record<string, unknown>): Promise<MonitorDecision>;
  /** Stops (`pause`) or ends (`kill`) the VM through QMP. */
  enforce(target: MonitorTarget, action: "pause" | "kill"): Promise<void>;
  /** Tells of an alert or of something the monitor could not do. */
  alert(target: MonitorTarget, message: string, kind: string): void;
  /** Tells that a measurement starts `waitMs` after it was due because the CPU budget was spent. */
  delayed?(target: MonitorTarget, waitMs: number): void;
}

/** Timers, injectable so that tests run on a fake clock. */
export interface MonitorTimers {
  /** Calls `fn` once after `ms` milliseconds; returns a handle for `clear`. */
  set(fn: () => void, ms: number): unknown;
  /** Cancels a timer set with `set`. */
  clear(handle: unknown): void;
}

/** Options of {@link MeasurementMonitor}. */
export interface MonitorOptions {
  /** How often the whole list of VMs is read to catch up (default 10,000 ms). */
  readonly pollMs?: number;
  /** The clock, in milliseconds (default `Date.now`). */
  readonly now?: () => number;
  /** Timers (default `setTimeout`/`clearTimeout`). */
  readonly timers?: MonitorTimers;
  /** Uniform in [0, 1) (default `Math.random`): draws the jitter. */
  readonly random?: () => number;
  /** The most jitter added to a VM's next due time (default 20 ms). */
  readonly jitterMs?: number;
  /**
   * Milliseconds of measurement (opening the guest and measuring it, as the clock sees it)
   * all VMs together may take per second of time (default 500: half a core).
   */
  readonly budgetMs?: number;
  /** Measurements in flight at once, across VMs (default 4). */
  readonly maxConcurrent?: number;
}

/** What the monitor did since it was built. */
export interface MonitorStats {
  /** Measurements started. */
  readonly measurements: number;
  /** Measurements started late because the CPU budget was spent when they were due. */
  readonly delayed: number;
  /** Full reads of the list of VMs. */
  readonly listings: number;
  /** Timer wake-ups for due VMs. */
  readonly wakeups: number;
}

/** Per VM: its session, schedule, and what was last extended and decided. */
interface VmState {
  target: MonitorTarget;
  session?: GuestSession;
  due: number;
  /** Bumped whenever `due` changes: heap entries of older generations are stale. */
  gen: number;
  /** Measured next regardless of the budget (measureNow). */
  forced?: boolean;
  /** No longer a target: dropped once its measurement in flight settles. */
  removed?: boolean;
  inFlight?: Promise<void>;
  extended?: string;
  decided?: string;
}

const STATUS_ORDER = ["ok", "missing", "error", "differs"] as const;

const REAL_TIMERS: MonitorTimers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * The scheduler.
 *
 * @example
 * ```ts ignore
 * // Needs its ports: guests to open, references, the decision service (scheduler_test.ts).
 * const monitor = new MeasurementMonitor(ports, { budgetMs: 300 });
 * monitor.start();
 * await monitor.stop();
 * ```
 */
export class MeasurementMonitor {
  readonly #ports: MonitorPorts;
  readonly #pollMs: number;
  readonly #now: () => number;
  readonly #timers: MonitorTimers;
  readonly #random: () => number;
  readonly #jitterMs: number;
  readonly #budgetMs: number;
  readonly #maxConcurrent: number;
  readonly #vms = new Map<string, VmState>();
  readonly #heap = new DueHeap<VmState>();
  #running = 0;
  /** Milliseconds of measurement that may still start now (a token bucket). */
  #tokens: number;
  #refilledAt: number;
  /** When the budget last held a due measurement back. */
  #blockedAt: number | undefined;
  #wake: { handle: unknown; at: number } | undefined;
  #poll: unknown;
  #started = false;
  #ticking: Promise<void> | undefined;
  #stopped = false;
  #stats = { measurements: 0, delayed: 0, listings: 0, wakeups: 0 };

  /**
   * @param ports the store, guests, decisions and QMP
   * @param options the listing period, clock, timers, jitter, CPU budget, concurrency
   * @throws {RangeError} for a budget, jitter, period or concurrency out of range
   */
  constructor(ports: MonitorPorts, options: MonitorOptions = {}) {
    this.#ports = ports;
    this.#pollMs = options.pollMs ?? 10_000;
    this.#now = options.now ?? (() => Date.now());
    this.#timers = options.timers ?? REAL_TIMERS;
    this.#random = options.random ?? Math.random;
    this.#jitterMs = options.jitterMs ?? 20;
    this.#budgetMs = options.budgetMs ?? 500;
    this.#maxConcurrent = options.maxConcurrent ?? 4;
    if (!(this.#pollMs > 0)) throw new RangeError(`pollMs ${this.#pollMs} is not positive`);
    if (!(this.#jitterMs >= 0)) throw new RangeError(`jitterMs ${this.#jitterMs} is negative`);
    if (!(this.#budgetMs > 0 && this.#budgetMs <= 1000 * 64)) {
      throw new RangeError(`budgetMs ${this.#budgetMs} is not within (0, 64000]`);
    }
    if (!(Number.isInteger(this.#maxConcurrent) && this.#maxConcurrent >= 1)) {
      throw new RangeError(`maxConcurrent ${this.#maxConcurrent} is not a positive integer`);
    }
    this.#tokens = this.#budgetMs;
    this.#refilledAt = this.#now();
  }

  /** What the monitor did so far. */
  get stats(): MonitorStats {
    return { ...this.#stats };
  }

  /** Reads the VMs, measures those due, and reads the whole list again every `pollMs`. */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    const poll = () => {
      this.#poll = this.#timers.set(poll, this.#pollMs);
      this.#ticking ??= this.tick().finally(() => this.#ticking = undefined);
    };
    poll();
  }

  /**
   * Reads the whole list of VMs: forgets those no longer targets, adds new ones (due now),
   * and starts the measurements that are due.
   *
   * @returns once the targets were read (measurements go on in the background)
   */
  async tick(): Promise<void> {
    let targets: MonitorTarget[];
    try {
      targets = await this.#ports.targets();
    } catch (error) {
      console.error(`vasp: monitor: cannot list VMs: ${errorMessage(error)}`);
      return;
    }
    this.#stats.listings++;
    const seen = new Set(targets.map((t) => t.uuid));
    for (const [uuid, state] of this.#vms) if (!seen.has(uuid)) this.#drop(state);
    for (const target of targets) this.#upsert(target);
    this.#run();
  }

  /**
   * Tells the monitor that one VM changed (registered, started, stopped, its settings): it
   * reads that VM alone (or the whole list when the ports cannot read one) and schedules it.
   *
   * @param uuid the VM
   * @returns once it was read
   */
  async changed(uuid: string): Promise<void> {
    if (this.#stopped) return;
    if (!this.#ports.target) return await this.tick();
    let target: MonitorTarget | undefined;
    try {
      target = await this.#ports.target(uuid);
    } catch (error) {
      console.error(`vasp: monitor: cannot read VM ${uuid}: ${errorMessage(error)}`);
      return;
    }
    const state = this.#vms.get(uuid);
    if (target) this.#upsert(target);
    else if (state) this.#drop(state);
    this.#run();
  }

  /**
   * Measures one VM now (also when not due, and regardless of the budget), waiting for a
   * measurement in flight first.
   *
   * @param uuid the VM
   * @returns once measured, recorded and decided
   */
  /**
   * The kernel profile a VM's guest is measured with: the one its reference set is kept under.
   *
   * @param uuid the VM
   * @returns the profile ID, `undefined` while the guest is not open
   */
  profileOf(uuid: string): string | undefined {
    return this.#vms.get(uuid)?.session?.profileId;
  }

  async measureNow(uuid: string): Promise<void> {
    const state = this.#vms.get(uuid);
    if (state) {
      await state.inFlight;
      state.forced = true;
      this.#schedule(state, -Infinity);
    }
    await this.tick();
    await this.#vms.get(uuid)?.inFlight;
  }

  #upsert(target: MonitorTarget): void {
    const now = this.#now();
    const state = this.#vms.get(target.uuid);
    if (!state) {
      const vm: VmState = { target, due: now, gen: 0 };
      this.#vms.set(target.uuid, vm);
      this.#heap.push(vm);
      return;
    }
    // Dropped while measured, back before it settled: kept, and rescheduled when it settles.
    state.removed = false;
    const { key, intervalMs } = state.target;
    state.target = target;
    if (key !== target.key) {
      state.session?.close();
      state.session = undefined;
      this.#schedule(state, now);
    } else if (intervalMs !== target.intervalMs && !state.inFlight) {
      this.#schedule(state, Math.min(state.due, now + target.intervalMs));
    }
  }

  #drop(state: VmState): void {
    state.removed = true;
    if (state.inFlight) return; // dropped when it settles
    if (this.#vms.get(state.target.uuid) === state) this.#vms.delete(state.target.uuid);
    state.session?.close();
    state.session = undefined;
  }

  #schedule(state: VmState, due: number): void {
    state.due = due;
    state.gen++;
    this.#heap.push(state);
  }

  /**
   * Starts what is due, earliest first, within the budget and the concurrency, then arms
   * the next wake-up. Over budget, the due VMs keep their order and wait for the bucket.
   */
  #run(): void {
    if (this.#stopped) return;
    const now = this.#now();
    this.#tokens = Math.min(
      this.#budgetMs,
      this.#tokens + (now - this.#refilledAt) * this.#budgetMs / 1000,
    );
    this.#refilledAt = now;
    let notBefore = now;
    for (;;) {
      const vm = this.#heap.peek();
      if (!vm || vm.due > now || (this.#running >= this.#maxConcurrent && !vm.forced)) break;
      if (vm.inFlight) {
        this.#heap.take(); // rescheduled when it settles
        continue;
      }
      if (this.#tokens <= 0 && !vm.forced) {
        this.#blockedAt = now;
        notBefore = now + Math.ceil(-this.#tokens * 1000 / this.#budgetMs) + 1;
        break;
      }
      this.#heap.take();
      this.#start(vm, now);
    }
    this.#arm(now, notBefore);
  }

  #start(vm: VmState, now: number): void {
    if (this.#blockedAt !== undefined && this.#blockedAt >= vm.due && !vm.forced) {
      // It was due while the budget held measurements back.
      this.#stats.delayed++;
      this.#ports.delayed?.(vm.target, now - vm.due);
    }
    vm.forced = false;
    this.#running++;
    this.#stats.measurements++;
    vm.inFlight = this.#measure(vm).catch((error) => {
      this.#ports.alert(vm.target, `monitor failure: ${errorMessage(error)}`, "failure");
    }).finally(() => {
      this.#running--;
      vm.inFlight = undefined;
      if (vm.removed) this.#drop(vm);
      else {
        const jitter = this.#random() * this.#jitterMs;
        this.#schedule(vm, Math.max(now + vm.target.intervalMs + jitter, this.#now()));
      }
      this.#run();
    });
  }

  /**
   * One timer, for the earliest due VM but not before `notBefore` (the budget); none while
   * every slot is busy, since a measurement settling runs the loop again.
   */
  #arm(now: number, notBefore: number): void {
    const next = this.#heap.peek();
    const at = next && this.#running < this.#maxConcurrent
      ? Math.max(next.due, notBefore)
      : undefined;
    if (this.#wake && this.#wake.at === at) return;
    if (this.#wake) this.#timers.clear(this.#wake.handle);
    this.#wake = undefined;
    if (at === undefined) return;
    const handle = this.#timers.set(() => {
      this.#wake = undefined;
      this.#stats.wakeups++;
      this.#run();
    }, at - now);
    this.#wake = { handle, at };
  }

  async #measure(vm: VmState): Promise<void> {
    const { target } = vm;
    let verdicts: RegionVerdict[];
    let profileId: string | undefined;
    const started = performance.now();
    const clockStart = this.#now();
    let measurement: KernelMeasurement | undefined;
    try {
      vm.session ??= await this.#ports.open(target);
      profileId = vm.session.profileId;
      measurement = await vm.session.measure();
      this.#charge(clockStart);
      verdicts = judge(await this.#ports.reference(profileId), measurement, { profileId });
    } catch (error) {
      if (!measurement) this.#charge(clockStart);
      // The guest rebooted, its RAM went away, the symbols do not fit: open it again next time.
      vm.session?.close();
      vm.session = undefined;
      const why = describeError(error);
      verdicts = failedVerdicts(await this.#ports.regions(target), why);
    }
    await this.#ports.record(target, verdicts, new Date(this.#now()));
    const { text, digest } = verdictDigest(verdicts);
    const worst = STATUS_ORDER[Math.max(0, ...verdicts.map((v) => STATUS_ORDER.indexOf(v.status)))];
    if (vm.extended !== digest) {
      // Once per outcome: the extension is evidence for tenants, not what decides.
      vm.extended = digest;
      try {
        await this.#ports.extend(target, text, `runtime measurement ${worst} sha256:${digest}`);
      } catch (error) {
        this.#ports.alert(
          target,
          `cannot extend the vASP instance: ${errorMessage(error)}`,
          "failure",
        );
      }
    }
    const facts = textFacts(measurement);
    const outcome = `${digest} ${JSON.stringify(facts)}`;
    if (vm.decided === outcome) return;
    const byStatus = (s: string) => verdicts.filter((v) => v.status === s).map((v) => v.region);
    const decision = await this.#ports.decide(target, {
      measurement_digest: `sha256:${digest}`,
      ...(profileId ? { profile_id: profileId } : {}),
      outcome: worst,
      differs: byStatus("differs"),
      missing: byStatus("missing"),
      errors: byStatus("error"),
      ...facts,
      elapsed_ms: Math.round(performance.now() - started),
    });
    await this.#enforce(target, decision);
    vm.decided = outcome;
  }

  /** Takes what opening and measuring the guest took since `from` out of the budget. */
  #charge(from: number): void {
    this.#tokens -= Math.max(0, this.#now() - from);
  }

  /** Carries out a decision's actions; a failure leaves the outcome undecided (tried again). */
  async #enforce(target: MonitorTarget, decision: MonitorDecision): Promise<void> {
    const actions = new Set(decision.actions);
    if (actions.has("alert")) {
      this.#ports.alert(
        target,
        `measurement decision ${decision.decisionId}: ${decision.allow ? "allowed" : "denied"}`,
        "alert",
      );
    }
    // A quarantined VM is a stopped one (the engine's enterQuarantine); kill ends it instead.
    if (actions.has("kill")) await this.#ports.enforce(target, "kill");
    else if (actions.has("pause") || actions.has("quarantine")) {
      await this.#ports.enforce(target, "pause");
    }
  }

  /**
   * Stops polling, waits for measurements in flight and closes every guest. Idempotent.
   *
   * @returns once stopped
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#poll !== undefined) this.#timers.clear(this.#poll);
    if (this.#wake) this.#timers.clear(this.#wake.handle);
    this.#poll = this.#wake = undefined;
    await this.#ticking;
    await Promise.all([...this.#vms.values()].map((vm) => vm.inFlight));
    for (const vm of this.#vms.values()) vm.session?.close();
    this.#vms.clear();
  }
}

/** Text violations given to the policies by message; the rest are counted. */
const MAX_TEXT_VIOLATIONS = 32;

/**
 * What the text's patch sites say, for the policies: the text violations (sites holding what
 * the kernel cannot write, bytes changed from the image), and the sites' state — facts that
 * a policy may judge per tenant (ftrace on is fine for one, an alert for another). Empty
 * without a measurement or without the kernel image.
 */
function textFacts(measurement: KernelMeasurement | undefined): Record<string, unknown> {
  const sites = measurement?.sites;
  if (!measurement || !sites) return {};
  const violations = measurement.findings
    .filter((f) => f.violation && f.region === "kernel_text").map((f) => f.message);
  return {
    // A guest that trashes its text must not make the decision's input unbounded.
    text_violations: violations.slice(0, MAX_TEXT_VIOLATIONS),
    text_violation_count: violations.length,
    jump_labels_on: sites.state.jumpLabelsOn,
    ftrace_enabled_sites: sites.state.ftraceEnabledSites,
    ftrace_tracer: sites.state.ftraceTracer ?? "",
    static_calls_retargeted: sites.state.staticCallsRetargeted,
    static_calls_into_modules: sites.state.staticCallsIntoModules,
  };
}
