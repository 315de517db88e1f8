/**
 * The measurement monitor of `vasp serve`: the scheduler of src/measure wired to the store
 * (which VMs, their settings, where verdicts go), the guests (opened as `vasp measure` opens
 * them), the reference sets in the state directory, the VM's vASP instance (register
 * {@link RUNTIME_REGISTER}), the decision service (source `monitor`) and QMP (pause, kill).
 *
 * @module
 */
import type { Logger } from "../engine/mod.ts";
import { QmpClient, queryGuestFacts } from "../hypervisor/mod.ts";
import {
  type GuestSession,
  loadReferenceSet,
  MeasurementMonitor,
  type MonitorOptions,
  type MonitorTarget,
  openGuest,
  parseSymbolMap,
  planRegions,
  profileId,
  referencePath,
  type ReferenceSet,
} from "../measure/mod.ts";
import type { IntrospectionSettings, Store, VmRecord } from "../store/mod.ts";
import type { VaspService } from "../vasp/mod.ts";
import type { IdSource } from "./ids.ts";
import type { Metrics } from "./metrics.ts";
import type { DecisionService } from "./service.ts";
import { errorMessage, isVaspError } from "../engine/error.ts";

/** The instance register the monitor extends with each changed runtime measurement. */
export const RUNTIME_REGISTER = 8;

/** States in which a VM's guest runs (or is kept for evidence) and so is measured. */
const MEASURED = new Set(["running", "paused", "migrating", "quarantined"]);

/** What the monitor is wired to. */
export interface MonitorDeps {
  /** VMs, their settings, where verdicts go. */
  readonly store: Store;
  /** Decides, records, counts and logs the `measurement` events. */
  readonly decisions: DecisionService;
  /** IDs of those decisions. */
  readonly ids: IdSource;
  /** The VMs' vASP instances (register {@link RUNTIME_REGISTER}). */
  readonly vasp: VaspService;
  /** Counts measurements, alerts and enforcements. */
  readonly metrics: Metrics;
  /** Where `vasp refs learn` keeps reference sets (`<state dir>/references`). */
  readonly referencesDir: string;
  /** Where alerts and enforcements are logged. */
  readonly log: Logger;
  /** How guests are reached (default {@link QEMU_GUESTS}). */
  readonly guests?: GuestPort;
}

/** How the monitor reaches guests: open one for measurement, stop or end it. */
export interface GuestPort {
  /**
   * Opens a VM's guest with its settings.
   *
   * @param settings the VM's introspection settings
   * @returns a session that measures it
   */
  open(settings: IntrospectionSettings): Promise<GuestSession>;
  /**
   * Carries out an enforcement action on the guest.
   *
   * @param settings the VM's introspection settings
   * @param action `pause` (QMP `stop`) or `kill` (QMP `quit`)
   * @returns once done
   */
  enforce(settings: IntrospectionSettings, action: "pause" | "kill"): Promise<void>;
}

/** Guests as QEMU runs them: RAM from the file, CPU facts and enforcement over QMP. */
export const QEMU_GUESTS: GuestPort = {
  async open(settings) {
    const guest = await openGuest({
      memory: settings.memory,
      symbols: settings.symbols,
      vmlinuz: settings.vmlinuz,
      below4g: settings.below4g === undefined ? undefined : BigInt(settings.below4g),
      qemuVersion: settings.qemuVersion,
      cpu: settings.cpu,
      smp: settings.smp,
      facts: settings.qmp ? await queryGuestFacts(settings.qmp) : undefined,
    });
    try {
      return {
        profileId: profileId(guest.profile()),
        measure: () => guest.measurer.measure({ alg: "sha256" }),
        close: () => guest.memory.close(),
      };
    } catch (error) {
      guest.memory.close();
      throw error;
    }
  },
  async enforce(settings, action) {
    if (!settings.qmp) throw new Error("the VM has no QMP socket in its introspection settings");
    await using client = await QmpClient.connect(settings.qmp);
    try {
      await client.execute(action === "kill" ? "quit" : "stop");
    } catch (error) {
      // QEMU may close the monitor before it answers a quit.
      if (action !== "kill" || !isVaspError(error, "qmp_closed")) throw error;
    }
  },
};

/**
 * Reference sets read once and again only when their file changes (another inode, size or
 * time: `vasp refs learn` renames a new file into place), so that hundreds of VMs measured
 * every second cost a `stat` each, not a read and a parse.
 */
function referenceCache(dir: string) {
  const cache = new Map<string, { stamp: string; set: ReferenceSet | undefined }>();
  return {
    async load(id: string): Promise<ReferenceSet | undefined> {
      let stamp = "missing";
      try {
        const st = await Deno.stat(referencePath(dir, id));
        stamp = `${st.ino}:${st.size}:${st.mtime?.getTime()}`;
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
      const cached = cache.get(id);
      if (cached?.stamp === stamp) return cached.set;
      const set = await loadReferenceSet(dir, id);
      cache.set(id, { stamp, set });
      return set;
    },
  };
}

/** The regions to report as failed when none were measured yet: the plan's, when it reads. */
async function plannedRegions(settings: IntrospectionSettings): Promise<string[]> {
  try {
    const symbols = parseSymbolMap(await Deno.readTextFile(settings.symbols), settings.symbols);
    return planRegions(symbols).map((r) => r.name);
  } catch {
    return ["kernel"];
  }
}

/**
 * Builds the monitor; `start()` it to run. Tell it of VM writes with {@link watchVmWrites}
 * (or `changed(uuid)`) so that it need not list the VMs often.
 *
 * @param deps the store, decider, vASP side, metrics and where references are
 * @param options the scheduler's: `pollMs` (how often the whole list is read, default
 *   10 s), `budgetMs` (host CPU ms of measurement per second), `maxConcurrent`, `jitterMs`
 * @returns the monitor
 */
export function createMonitor(
  deps: MonitorDeps,
  options: Pick<MonitorOptions, "pollMs" | "budgetMs" | "maxConcurrent" | "jitterMs"> = {},
): MeasurementMonitor {
  const settings = new Map<string, IntrospectionSettings>();
  const guests = deps.guests ?? QEMU_GUESTS;
  const say = (target: MonitorTarget, level: "info" | "warn" | "error", message: string) =>
    deps.log.log(level, `monitor: VM "${target.name}": ${message}`, {
      vm: target.name,
      vm_uuid: target.uuid,
    });
  const targetOf = (vm: VmRecord): MonitorTarget | undefined => {
    if (vm.introspection === null || !MEASURED.has(vm.state)) {
      settings.delete(vm.uuid);
      return undefined;
    }
    settings.set(vm.uuid, vm.introspection);
    return {
      uuid: vm.uuid,
      name: vm.name,
      intervalMs: vm.introspection.intervalMs,
      key: JSON.stringify(vm.introspection),
    };
  };
  const references = referenceCache(deps.referencesDir);
  let delays = 0;
  let delaysLoggedAt = -Infinity;
  return new MeasurementMonitor({
    async targets() {
      const vms = await deps.store.listVms();
      settings.clear();
      return vms.flatMap((vm) => targetOf(vm) ?? []);
    },
    async target(uuid) {
      const vm = await deps.store.getVm(uuid);
      if (vm) return targetOf(vm);
      settings.delete(uuid);
      return undefined;
    },
    delayed(target, waitMs) {
      deps.metrics.monitorDelayed();
      delays++;
      // One line per 10 s at most: over budget, every VM is late every round.
      if (Date.now() - delaysLoggedAt < 10_000) return;
      delaysLoggedAt = Date.now();
      say(
        target,
        "warn",
        `measured ${waitMs} ms late: the monitor's CPU budget was spent ` +
          `(${delays} late measurements so far)`,
      );
    },
    open: (target) => guests.open(settings.get(target.uuid)!),
    reference: (id) => references.load(id),
    async regions(target) {
      const recorded = (await deps.store.latestMeasurements(target.uuid)).map((m) => m.region);
      return recorded.length > 0 ? recorded : await plannedRegions(settings.get(target.uuid)!);
    },
    async record(target, verdicts, at) {
      await deps.store.recordMeasurements(
        target.uuid,
        verdicts.map((v) => ({ ...v, time: at })),
      );
      const worst = ["differs", "error", "missing"].find((s) =>
        verdicts.some((v) => v.status === s)
      );
      deps.metrics.measurement(worst ?? "ok");
    },
    async extend(target, text, description) {
      // A VM registered without a configuration has no instance to extend.
      if (!(await deps.store.getVm(target.uuid))?.binding) return;
      await deps.vasp.extend(target.uuid, [{
        reg: RUNTIME_REGISTER,
        data: new TextEncoder().encode(text),
        description,
      }]);
    },
    async decide(target, details) {
      const answer = await deps.decisions.decide(deps.ids.next(), {
        body: {
          operation: "measurement",
          vm: { uuid: target.uuid, name: target.name },
          source: "monitor",
          details,
        },
      });
      return { decisionId: answer.decision_id, allow: answer.allow, actions: answer.actions };
    },
    async enforce(target, action) {
      try {
        const known = settings.get(target.uuid);
        if (!known) throw new Error("the VM is no longer measured");
        await guests.enforce(known, action);
        deps.metrics.monitorAction(action, true);
        say(
          target,
          "warn",
          action === "kill" ? "ended through QMP (quit)" : "stopped through QMP (stop)",
        );
      } catch (error) {
        deps.metrics.monitorAction(action, false);
        say(target, "error", `cannot ${action} it: ${errorMessage(error)}`);
        throw error;
      }
    },
    alert(target, message, kind) {
      deps.metrics.monitorAction(kind, kind === "alert");
      say(target, kind === "alert" ? "warn" : "error", message);
    },
  }, options);
}

/** The store methods that change a VM, and where each finds the VM's UUID. */
const VM_WRITES: Record<string, (args: unknown[]) => string | undefined> = {
  registerVm: (args) => (args[0] as { uuid?: string } | undefined)?.uuid,
  updateVm: (args) => args[0] as string,
  removeVm: (args) => args[0] as string,
};

/**
 * The same store, telling `onChange` the UUID of each VM written through it once the write
 * is done (registered, updated, removed) — how the monitor learns of VM changes without
 * listing them all the time. Every other member is the store's own.
 *
 * @param store the store to watch
 * @param onChange called with the UUID after each successful VM write
 * @returns a store that behaves as `store` does
 */
export function watchVmWrites<S extends Store>(store: S, onChange: (uuid: string) => void): S {
  // Each method is wrapped once (per function: a method replaced on the store is wrapped
  // anew): the store is on the decision path, which should not pay an allocation per call.
  const methods = new Map<PropertyKey, { of: unknown; method: unknown }>();
  return new Proxy(store, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      const cached = methods.get(property);
      if (cached?.of === value) return cached.method;
      const uuidOf = typeof property === "string" ? VM_WRITES[property] : undefined;
      const method = !uuidOf ? value.bind(target) : async (...args: unknown[]) => {
        const result = await value.apply(target, args);
        const uuid = uuidOf(args);
        if (uuid) onChange(uuid);
        return result;
      };
      methods.set(property, { of: value, method });
      return method;
    },
  });
}
