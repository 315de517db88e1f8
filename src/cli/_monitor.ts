/**
 * The measurement monitor of `vasp serve`: the scheduler of src/measure wired to the store
 * (which VMs, their settings, where verdicts go), the guests (opened as `vasp measure` opens
 * them), the reference sets in the state directory, the VM's vASP instance (register
 * {@link RUNTIME_REGISTER}), the decider (source `monitor`) and QMP (pause, kill).
 *
 * @module
 */
import { QmpClient } from "../hypervisor/qmp_client.ts";
import type { Decider, IdSource, Metrics } from "../http/mod.ts";
import {
  type GuestSession,
  loadReferenceSet,
  MeasurementMonitor,
  type MonitorTarget,
  parseSymbolMap,
  planRegions,
  profileId,
} from "../measure/mod.ts";
import type { IntrospectionSettings, Store } from "../store/mod.ts";
import { openGuest } from "./_guest.ts";
import type { VaspService } from "./_vasp_service.ts";

/** The instance register the monitor extends with each changed runtime measurement. */
export const RUNTIME_REGISTER = 8;

/** States in which a VM's guest runs (or is kept for evidence) and so is measured. */
const MEASURED = new Set(["running", "paused", "migrating", "quarantined"]);

/** What the monitor is wired to. */
export interface MonitorDeps {
  /** VMs, their settings, where verdicts go. */
  readonly store: Store;
  /** Decides and records the `measurement` events. */
  readonly decider: Decider;
  /** IDs of those decisions. */
  readonly ids: IdSource;
  /** The VMs' vASP instances (register {@link RUNTIME_REGISTER}). */
  readonly vasp: VaspService;
  /** Counts measurements, alerts and enforcements. */
  readonly metrics: Metrics;
  /** Where `vasp refs learn` keeps reference sets (`<state dir>/references`). */
  readonly referencesDir: string;
  /** Where alerts and enforcements are logged. */
  readonly log: (line: string) => void;
}

/** Opens a VM's guest with its settings, as `vasp measure` would with the same options. */
async function openSession(settings: IntrospectionSettings): Promise<GuestSession> {
  const text = (n: number | undefined) => n === undefined ? undefined : String(n);
  const guest = await openGuest({
    memory: settings.memory,
    symbols: settings.symbols,
    vmlinuz: settings.vmlinuz,
    qmp: settings.qmp,
    "below-4g": text(settings.below4g),
    "qemu-version": settings.qemuVersion,
    cpu: settings.cpu,
    smp: text(settings.smp),
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
 * Builds the monitor; `start()` it to run.
 *
 * @param deps the store, decider, vASP side, metrics and where references are
 * @param options `pollMs`: how often the VMs are looked at
 * @returns the monitor
 */
export function createMonitor(
  deps: MonitorDeps,
  options: { pollMs?: number } = {},
): MeasurementMonitor {
  const settings = new Map<string, IntrospectionSettings>();
  const say = (target: MonitorTarget, message: string) =>
    deps.log(`vasp: monitor: VM "${target.name}" (${target.uuid}): ${message}`);
  return new MeasurementMonitor({
    async targets() {
      const vms = (await deps.store.listVms()).filter((vm) =>
        vm.introspection !== null && MEASURED.has(vm.state)
      );
      settings.clear();
      return vms.map((vm) => {
        settings.set(vm.uuid, vm.introspection!);
        return {
          uuid: vm.uuid,
          name: vm.name,
          intervalMs: vm.introspection!.intervalMs,
          key: JSON.stringify(vm.introspection),
        };
      });
    },
    open: (target) => openSession(settings.get(target.uuid)!),
    reference: (id) => loadReferenceSet(deps.referencesDir, id),
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
      const id = deps.ids.next();
      const body = {
        operation: "measurement",
        vm: { uuid: target.uuid, name: target.name },
        source: "monitor",
        details,
      };
      const started = performance.now();
      try {
        const answer = await deps.decider.decide(id, body);
        const seconds = (performance.now() - started) / 1000;
        deps.metrics.decision("measurement", answer.allow ? "allow" : "deny", seconds);
        if (!answer.allow) {
          say(
            target,
            `measurement denied (${answer.decision_id}): ${
              answer.reasons.map((r) => r.message).join("; ")
            }; actions [${answer.actions.join(", ")}]`,
          );
        }
        return { decisionId: answer.decision_id, allow: answer.allow, actions: answer.actions };
      } catch (error) {
        deps.metrics.decision("measurement", "error", (performance.now() - started) / 1000);
        await deps.decider.recordFailure(id, { body }, error).catch(() => {});
        throw error;
      }
    },
    async enforce(target, action) {
      const qmp = settings.get(target.uuid)?.qmp;
      try {
        if (!qmp) throw new Error("the VM has no QMP socket in its introspection settings");
        await using client = await QmpClient.connect(qmp);
        try {
          await client.execute(action === "kill" ? "quit" : "stop");
        } catch (error) {
          // QEMU may close the monitor before it answers a quit.
          if (action !== "kill" || (error as { code?: string }).code !== "qmp_closed") throw error;
        }
        deps.metrics.monitorAction(action, true);
        say(target, action === "kill" ? "ended through QMP (quit)" : "stopped through QMP (stop)");
      } catch (error) {
        deps.metrics.monitorAction(action, false);
        say(target, `cannot ${action} it: ${(error as Error).message}`);
        throw error;
      }
    },
    alert(target, message, kind) {
      deps.metrics.monitorAction(kind, kind === "alert");
      say(target, `${kind === "alert" ? "ALERT" : "ERROR"}: ${message}`);
    },
  }, options);
}
