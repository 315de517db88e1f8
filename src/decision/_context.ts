/**
 * Loading a decision's context from the store, and turning store records into the engine's
 * shapes. The store keeps names as strings (a state, a measurement status in the engine's
 * words); here they become the engine's closed sets, failing closed.
 *
 * @module
 */
import type {
  DecisionContext,
  HostState,
  MeasurementStatus,
  RegionMeasurement,
  VmRecord as EngineVm,
} from "../engine/mod.ts";
import { isLifecycleState, sha256Digest, VaspError } from "../engine/mod.ts";
import { engineBinding } from "../vasp/mod.ts";
import type { Measurement, Store, VmRecord } from "../store/mod.ts";

const STATUSES: readonly string[] = [
  "ok",
  "differs",
  "missing",
  "error",
] satisfies MeasurementStatus[];

/**
 * The engine's view of a stored VM.
 *
 * @param vm the stored record
 * @returns the engine's record
 * @throws {VaspError} `store_record_malformed` when the stored state is not a life-cycle state
 */
export function engineVm(vm: VmRecord): EngineVm {
  if (!isLifecycleState(vm.state)) {
    throw new VaspError(
      "store_record_malformed",
      `Cannot decide for VM "${vm.name}": its recorded state "${vm.state}" is not a life-cycle state`,
      { details: { uuid: vm.uuid, state: vm.state } },
    );
  }
  return {
    uuid: vm.uuid,
    name: vm.name,
    state: vm.state,
    tenant: vm.tenant,
    labels: vm.labels,
    createdAt: vm.createdAt,
  };
}

/**
 * The engine's view of stored measurements; a status the engine does not know is `error`
 * (fail closed), naming it.
 *
 * @param measurements the latest measurement per region
 * @returns measurements by region name
 */
export function engineMeasurements(
  measurements: readonly Measurement[],
): Record<string, RegionMeasurement> {
  const out: Record<string, RegionMeasurement> = {};
  for (const m of measurements) {
    const known = STATUSES.includes(m.status);
    const detail = known ? m.detail ?? "" : `unknown measurement status "${m.status}"`;
    out[m.region] = {
      status: known ? m.status as MeasurementStatus : "error",
      digest: sha256Digest(m.digest),
      reference: m.reference === null ? "" : sha256Digest(m.reference),
      at: m.time,
      ...(detail === "" ? {} : { detail }),
    };
  }
  return out;
}

/** A loaded context, with the stored record it came from. */
export interface LoadedContext {
  /** What the engine reads. */
  readonly context: DecisionContext;
  /** The stored VM, `undefined` when vASP does not know it. */
  readonly stored: VmRecord | undefined;
}

/**
 * Loads everything a decision about `uuid` reads.
 *
 * @param store the store
 * @param uuid the VM's UUID (lower-case)
 * @param options `now`; `host`, the host's ASP state (`null`: not measured)
 * @returns the context
 * @throws {VaspError} the store's failures; `store_record_malformed`
 */
export async function loadContext(
  store: Store,
  uuid: string,
  options: { now: Date; host: HostState | null },
): Promise<LoadedContext> {
  const stored = await store.getVm(uuid);
  const measurements = stored ? await store.latestMeasurements(uuid) : [];
  return {
    stored,
    context: {
      now: options.now,
      vm: stored ? engineVm(stored) : null,
      vasp: stored?.binding
        ? engineBinding(stored.binding, { sealedExport: stored.binding.sealedState !== null })
        : null,
      measurements: engineMeasurements(measurements),
      host: options.host,
    },
  };
}
