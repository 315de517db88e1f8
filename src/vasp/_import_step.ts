/**
 * The vASP side of a decision that brings a sealed state back — a restore, an incoming
 * migration, a revert to an internal snapshot: the blob is imported before the engine
 * decides (so the policies see whether the ASP took it), and an allowed decision makes the
 * imported instance the VM's live one.
 *
 * @module
 */
import type { Decision, LifecycleEvent } from "../engine/mod.ts";
import type { SnapshotState, Store, VmRecord } from "../store/mod.ts";
import type { InstanceManager, PendingImport } from "./instances.ts";
import type { Arrival, Migrations } from "./migration.ts";
import { engineBinding, type VaspPlan, type VaspStep } from "./port.ts";
import type { KeyedQueue } from "./_keyed_queue.ts";
import { answer, newVm, refusal, stored } from "./_events.ts";
import { describeError } from "../engine/error.ts";

/** What an import needs of the service. */
export interface ImportDeps {
  /** The live instances. */
  readonly instances: InstanceManager;
  /** Where the binding is kept. */
  readonly store: Store;
  /** Serialises the steps of one VM. */
  readonly queue: KeyedQueue;
  /** Where an arrival from another host is recorded until its migration completes. */
  readonly migrations?: Migrations;
}

/** The register a VM's moves between hosts are extended into (docs/lifecycle.md). */
export const MIGRATION_REGISTER = 9;

/** The binding the engine sees when nothing can be imported, and why. */
function unusable(vm: VmRecord | undefined, error: string) {
  return engineBinding(vm?.binding ?? { instanceId: "", configDigest: "" }, {
    sealedExport: false,
    error,
  });
}

/**
 * A revert to an internal snapshot: imports that snapshot's own sealed state, or refuses —
 * always, so that the record names the snapshot — when none is kept.
 *
 * @param deps instances, store, queue
 * @param what the event, the VM's record, the snapshot's name and its kept state
 * @returns the step
 */
export function revertStep(
  deps: ImportDeps,
  what: {
    event: LifecycleEvent;
    vm: VmRecord | undefined;
    name: string | undefined;
    kept: SnapshotState | undefined;
  },
): VaspStep {
  const { event, vm, name, kept } = what;
  if (kept) return importStep(deps, { event, vm, blob: kept.sealedState, snapshot: name });
  const why = name === undefined
    ? `Cannot revert VM "${event.vm.name}" to a snapshot: the event names none ` +
      "(details.snapshot), so its sealed vASP state cannot be found"
    : `no sealed vASP state for snapshot "${name}" of VM "${event.vm.name}"`;
  return refusedImport(vm, why);
}

/**
 * A decision that would bring a sealed state back, with none to bring: refused always, so that
 * the record says why even when the policies denied already.
 *
 * @param vm the VM's record
 * @param why why there is no state to import
 * @returns the step
 */
export function refusedImport(vm: VmRecord | undefined, why: string): VaspStep {
  return {
    binding: unusable(vm, why),
    plan: () => Promise.resolve(refusal("import", why)),
    discard() {},
  };
}

/**
 * Imports `blob` before the engine decides — presented as a registered snapshot when
 * `snapshot` names one — and, once allowed, makes it the live instance and seals it again,
 * so that the blob it came from is no longer the newest.
 *
 * @param deps instances, store, queue
 * @param what the event, the VM's record, the blob, and the snapshot it is of
 * @returns the step
 */
export function importStep(
  deps: ImportDeps,
  what: {
    event: LifecycleEvent;
    vm: VmRecord | undefined;
    blob: Uint8Array;
    snapshot?: string;
    arrival?: Arrival;
  },
): VaspStep {
  const { event, vm, blob, snapshot, arrival } = what;
  const uuid = event.vm.uuid;
  const of = snapshot === undefined
    ? arrival === undefined ? "" : ` from ${arrival.peer}`
    : ` of snapshot "${snapshot}"`;
  let pending: PendingImport | undefined;
  let refused: string | undefined;
  try {
    pending = deps.instances.importPending(uuid, blob, {
      snapshot: snapshot !== undefined,
      ...(arrival ? { from: arrival.sourceAk } : {}),
    });
  } catch (error) {
    refused = `the sealed vASP state${of} was refused: ${describeError(error)}`;
  }
  const binding = pending
    ? engineBinding(pending, { sealedExport: true, error: "" })
    : unusable(vm, refused!);
  const discard = () => {
    if (pending) deps.instances.drop(pending);
  };
  const plan = (decision: Decision): Promise<VaspPlan> => {
    if (!decision.allow || !pending) {
      discard();
      // A refused snapshot is named in the record even when the policies denied already.
      const named = decision.allow || (snapshot !== undefined && !pending);
      return Promise.resolve(named ? refusal("import", refused!) : {});
    }
    const adopted = pending;
    return Promise.resolve({
      ...(snapshot === undefined ? {} : {
        note: {
          rule: "snapshot-imported",
          message: `VM "${event.vm.name}" is reverted to snapshot "${snapshot}": its sealed ` +
            "vASP state is imported",
        },
      }),
      // Until adopted, the imported instance is only prepared: dropping it undoes the import.
      abandon: discard,
      apply: () =>
        deps.queue.run(uuid, async () => {
          let kept: string[] | undefined;
          let sealed = deps.instances.adopt(adopted);
          if (arrival) {
            // The move is an event of the VM's own log: a tenant's verifier sees where it went.
            sealed = deps.instances.extend(uuid, [{
              reg: MIGRATION_REGISTER,
              data: new TextEncoder().encode(
                `migrated from ASP ${arrival.sourceAspId} (${arrival.peer}), migration ` +
                  arrival.migrationId,
              ),
              description: `migrate-in from ${arrival.peer} (ASP ${arrival.sourceAspId})`,
            }]);
          }
          const current = await deps.store.getVm(uuid);
          if (current) await deps.store.updateVm(uuid, { binding: stored(sealed) });
          else {
            await deps.store.registerVm({
              ...newVm(event, stored(sealed)),
              ...(arrival ? { tenant: arrival.vm.tenant, labels: arrival.vm.labels } : {}),
            });
          }
          if (arrival) {
            if ((await deps.store.getBootReferences(uuid)).length === 0) {
              await deps.store.setBootReferences(uuid, [...arrival.bootReferences]);
            }
            const profiles = await deps.migrations?.arrived(uuid, arrival) ?? [];
            if (profiles.length > 0) kept = profiles;
          }
          return answer(sealed, {
            imported: true,
            ...(snapshot === undefined ? {} : { snapshot }),
            ...(arrival ? { from: arrival.peer } : {}),
            ...(kept ? { kernel_references: kept } : {}),
          });
        }),
    });
  };
  return { binding, plan, discard };
}
