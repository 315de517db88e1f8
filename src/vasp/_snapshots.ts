/**
 * The sealed vASP state of each internal snapshot of a VM, by the snapshot's name
 * (docs/lifecycle.md, "Snapshots"): sealed and registered with the ASP when a snapshot is
 * taken, imported when the VM reverts to it, dropped and unregistered when it is deleted.
 * The store keeps them; a copy is held here because a revert must know, before the engine
 * decides and without waiting, whether that snapshot's state imports. This server is the only
 * writer of its store (the ASP's lock), and every write below goes to the store first.
 *
 * @module
 */
import type { LifecycleEvent, Logger } from "../engine/mod.ts";
import type { SnapshotState, Store } from "../store/mod.ts";
import type { InstanceManager } from "./instances.ts";
import type { VaspOutcome } from "./port.ts";
import { answer, stored } from "./_events.ts";
import { describeError } from "../engine/error.ts";

/** The snapshots' sealed states of every VM, in the store and at hand. */
export class SnapshotStates {
  readonly #instances: InstanceManager;
  readonly #store: Store;
  readonly #log: Logger;
  readonly #byVm = new Map<string, Map<string, SnapshotState>>();

  /**
   * @param instances the live instances
   * @param store where the sealed states are kept
   * @param options `log`: where a snapshot that could not be read or unregistered is logged
   */
  constructor(instances: InstanceManager, store: Store, options: { log: Logger }) {
    this.#instances = instances;
    this.#store = store;
    this.#log = options.log;
  }

  /**
   * Reads a VM's snapshots from the store (at server start). A VM whose snapshots cannot be
   * read is logged and has none: a revert to one of them is refused.
   *
   * @param vm the VM
   * @returns when read
   */
  async load(vm: { uuid: string; name: string }): Promise<void> {
    this.#byVm.delete(vm.uuid);
    let list: SnapshotState[];
    try {
      list = await this.#store.listSnapshots(vm.uuid);
    } catch (error) {
      this.#log.log(
        "error",
        `The snapshots of VM "${vm.name}" cannot be read: ${describeError(error)}; ` +
          "a revert to any of them is refused",
        { vm: vm.name, vm_uuid: vm.uuid },
      );
      return;
    }
    if (list.length > 0) this.#byVm.set(vm.uuid, new Map(list.map((s) => [s.name, s])));
  }

  /**
   * A snapshot's sealed state.
   *
   * @param uuid the VM
   * @param name the snapshot
   * @returns it, `undefined` when none is kept
   */
  get(uuid: string, name: string): SnapshotState | undefined {
    return this.#byVm.get(uuid)?.get(name);
  }

  /**
   * Seals a VM's live instance as a registered snapshot, keeps the blob under the snapshot's
   * name and as the binding's newest state, and unregisters the snapshot of that name it
   * replaces (QEMU's `savevm` overwrites a tag). The caller serialises the steps of one VM.
   *
   * @param event the allowed snapshot
   * @param name the snapshot's name
   * @returns what was done
   * @throws {VaspError} `vasp_instance_unavailable` when the instance is not live (checked when
   *   the decision was planned; it ended since), the store's failures; {@link NativeError} the
   *   ASP's
   */
  async seal(event: LifecycleEvent, name: string): Promise<VaspOutcome> {
    const { uuid } = event.vm;
    const sealed = this.#instances.seal(uuid, { snapshot: true });
    await this.#store.updateVm(uuid, { binding: stored(sealed) });
    const kept = {
      name,
      instanceId: sealed.instanceId,
      sealedState: sealed.sealedState,
      sealedCounter: sealed.sealedCounter,
    };
    const { kept: now, replaced } = await this.#store.keepSnapshot(uuid, kept);
    this.#vm(uuid).set(name, now);
    if (replaced) this.#unregister(event, replaced);
    return answer(sealed, { snapshot: name, ...(replaced ? { replaced: true } : {}) });
  }

  /**
   * Drops a deleted snapshot's sealed state and unregisters it with the ASP, so its blob
   * never imports again once newer ones exist. The caller serialises the steps of one VM.
   *
   * @param event the allowed deletion
   * @param name the snapshot's name
   * @returns what was done
   * @throws {VaspError} the store's failures; {@link NativeError} `io_failed` from the ASP
   */
  async drop(event: LifecycleEvent, name: string): Promise<VaspOutcome> {
    const { uuid } = event.vm;
    const kept = this.get(uuid, name);
    if (!kept) return { details: { snapshot: name, dropped: false } };
    // Unregistered first: should the store fail, the kept blob no longer imports anyway.
    this.#instances.forgetSnapshot(uuid, kept.sealedCounter);
    let details: Record<string, unknown> = { instance_id: kept.instanceId };
    if (this.#instances.status(uuid)?.live) {
      // The ASP takes the newest export as it is, registered or not, and the deleted
      // snapshot's blob may be that one: a newer export makes it a rollback.
      const sealed = this.#instances.seal(uuid);
      await this.#store.updateVm(uuid, { binding: stored(sealed) });
      details = answer(sealed).details!;
    }
    await this.#store.dropSnapshot(uuid, name);
    this.#byVm.get(uuid)?.delete(name);
    return { details: { ...details, snapshot: name, dropped: true } };
  }

  /**
   * Drops every snapshot of a VM whose instance was destroyed (the ASP refuses their blobs
   * already).
   *
   * @param uuid the VM
   * @returns when dropped
   * @throws {VaspError} the store's failures
   */
  async dropAll(uuid: string): Promise<void> {
    for (const name of [...(this.#byVm.get(uuid)?.keys() ?? [])]) {
      await this.#store.dropSnapshot(uuid, name);
      this.#byVm.get(uuid)?.delete(name);
    }
    this.#byVm.delete(uuid);
  }

  /**
   * Forgets a removed VM's snapshots (the store drops them with the VM).
   *
   * @param uuid the VM
   */
  forget(uuid: string): void {
    this.#byVm.delete(uuid);
  }

  #vm(uuid: string): Map<string, SnapshotState> {
    let map = this.#byVm.get(uuid);
    if (!map) this.#byVm.set(uuid, map = new Map());
    return map;
  }

  /** Unregisters a replaced snapshot; a failure leaves it importable, which is logged. */
  #unregister(event: LifecycleEvent, replaced: SnapshotState): void {
    try {
      this.#instances.forgetSnapshot(event.vm.uuid, replaced.sealedCounter);
    } catch (error) {
      this.#log.log(
        "error",
        `The replaced snapshot "${replaced.name}" of VM "${event.vm.name}" is still registered ` +
          `with the ASP (export counter ${replaced.sealedCounter}): ${describeError(error)}`,
        { vm: event.vm.name, vm_uuid: event.vm.uuid },
      );
    }
  }
}
