/**
 * The per-VM measurement scheduler (DESIGN "Guest introspection"): each VM with
 * introspection settings is measured at its interval, one measurement in flight per VM; the
 * verdicts are recorded, their digest extended into the VM's vASP instance when it changes,
 * and a `measurement` decision asked for when the outcome changes, whose actions are then
 * enforced. Everything outside (the store, the guest, the decision, QMP) comes in as ports,
 * so the loop itself is tested without a guest.
 *
 * @module
 */
import type { KernelMeasurement } from "./measurement.ts";
import type { ReferenceSet } from "./reference.ts";
import { failedVerdicts, judge, type RegionVerdict, verdictDigest } from "./verdict.ts";
import { describeError, errorMessage } from "../engine/error.ts";

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
}

/** Per VM: its session, schedule, and what was last extended and decided. */
interface VmState {
  target: MonitorTarget;
  session?: GuestSession;
  due: number;
  inFlight?: Promise<void>;
  extended?: string;
  decided?: string;
}

const STATUS_ORDER = ["ok", "missing", "error", "differs"] as const;

/**
 * The scheduler.
 *
 * @example
 * ```ts ignore
 * // Needs its ports: guests to open, references, the decision service (scheduler_test.ts).
 * const monitor = new MeasurementMonitor(ports, { pollMs: 250 });
 * monitor.start();
 * await monitor.stop();
 * ```
 */
export class MeasurementMonitor {
  readonly #ports: MonitorPorts;
  readonly #pollMs: number;
  readonly #now: () => number;
  readonly #vms = new Map<string, VmState>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #ticking: Promise<void> | undefined;
  #stopped = false;

  /**
   * @param ports the store, guests, decisions and QMP
   * @param options `pollMs`: how often the targets are looked at (default 250); `now`
   */
  constructor(ports: MonitorPorts, options: { pollMs?: number; now?: () => number } = {}) {
    this.#ports = ports;
    this.#pollMs = options.pollMs ?? 250;
    this.#now = options.now ?? (() => Date.now());
  }

  /** Starts polling. */
  start(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#timer = setInterval(() => {
      this.#ticking ??= this.tick().finally(() => this.#ticking = undefined);
    }, this.#pollMs);
  }

  /**
   * One pass: forgets VMs no longer targets, starts a measurement of each VM that is due
   * and has none in flight.
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
    const seen = new Set(targets.map((t) => t.uuid));
    for (const [uuid, state] of this.#vms) {
      if (!seen.has(uuid) && !state.inFlight) {
        state.session?.close();
        this.#vms.delete(uuid);
      }
    }
    const now = this.#now();
    for (const target of targets) {
      let state = this.#vms.get(target.uuid);
      if (!state) this.#vms.set(target.uuid, state = { target, due: now });
      if (state.target.key !== target.key) {
        state.session?.close();
        state.session = undefined;
        state.due = now;
      }
      state.target = target;
      if (state.inFlight || now < state.due || this.#stopped) continue;
      const vm = state;
      vm.inFlight = this.#measure(vm).catch((error) => {
        this.#ports.alert(vm.target, `monitor failure: ${errorMessage(error)}`, "failure");
      }).finally(() => {
        vm.inFlight = undefined;
        vm.due = this.#now() + vm.target.intervalMs;
      });
    }
  }

  /**
   * Measures one VM now (also when not due), waiting for a measurement in flight first.
   *
   * @param uuid the VM
   * @returns once measured, recorded and decided
   */
  async measureNow(uuid: string): Promise<void> {
    const state = this.#vms.get(uuid);
    if (state) {
      await state.inFlight;
      state.due = 0;
    }
    await this.tick();
    await this.#vms.get(uuid)?.inFlight;
  }

  async #measure(vm: VmState): Promise<void> {
    const { target } = vm;
    let verdicts: RegionVerdict[];
    let profileId: string | undefined;
    const started = performance.now();
    try {
      vm.session ??= await this.#ports.open(target);
      profileId = vm.session.profileId;
      const measurement = await vm.session.measure();
      verdicts = judge(await this.#ports.reference(profileId), measurement, { profileId });
    } catch (error) {
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
    if (vm.decided === digest) return;
    const byStatus = (s: string) => verdicts.filter((v) => v.status === s).map((v) => v.region);
    const decision = await this.#ports.decide(target, {
      measurement_digest: `sha256:${digest}`,
      ...(profileId ? { profile_id: profileId } : {}),
      outcome: worst,
      differs: byStatus("differs"),
      missing: byStatus("missing"),
      errors: byStatus("error"),
      elapsed_ms: Math.round(performance.now() - started),
    });
    await this.#enforce(target, decision);
    vm.decided = digest;
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
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#ticking;
    await Promise.all([...this.#vms.values()].map((vm) => vm.inFlight));
    for (const vm of this.#vms.values()) vm.session?.close();
    this.#vms.clear();
  }
}
