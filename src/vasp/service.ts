/**
 * The vASP side of `vasp serve`: the live instances (src/attest) tied to the store's
 * bindings and to the decisions of the life cycle (docs/lifecycle.md). Every change to an
 * instance is sealed and its blob and counter written to the VM's binding before the change
 * counts as made; the steps of one VM run one at a time.
 *
 * @module
 */
import { type Extension, InstanceManager, type SealedBinding } from "./instances.ts";
import type { Asp } from "../../ffi/mod.ts";
import {
  type Decision,
  type LifecycleEvent,
  type Logger,
  type VaspBinding as EngineBinding,
  VaspError,
} from "../engine/mod.ts";
import {
  engineBinding,
  type VaspOutcome,
  type VaspPort,
  type VaspQuote,
  type VaspStep,
} from "./port.ts";
import type { BootReference, NewVm, Store, VaspBinding, VmRecord } from "../store/mod.ts";
import { parseDomainXml } from "../hypervisor/libvirt.ts";
import { DiskCache } from "./disk_cache.ts";
import { bootState, measureBoot, type MeasuredBoot, referencesOf } from "./_boot.ts";
import { KeyedQueue } from "./_keyed_queue.ts";
import { SnapshotStates } from "./_snapshots.ts";
import { importStep, revertStep } from "./_import_step.ts";
import {
  answer,
  base64,
  BOOT_PHASES,
  bootDomain,
  eventConfig,
  INBOUND,
  movesState,
  newVm,
  OUTBOUND,
  refusal,
  snapshotStep,
  stored,
} from "./_events.ts";

const nothing = (): Promise<VaspOutcome> => Promise.resolve({});

/** The vASP side of the server: {@link VaspPort} on the live instances and the store. */
export class VaspService implements VaspPort {
  readonly #instances: InstanceManager;
  readonly #store: Store;
  readonly #log: Logger;
  readonly #queue = new KeyedQueue();
  readonly #snapshots: SnapshotStates;
  readonly #disks: DiskCache;

  /**
   * @param asp the open ASP
   * @param store where bindings are kept
   * @param options `log`: where instances refused or destroyed are logged
   */
  constructor(asp: Asp, store: Store, options: { log: Logger }) {
    this.#instances = new InstanceManager(asp);
    this.#store = store;
    this.#log = options.log;
    this.#snapshots = new SnapshotStates(this.#instances, store, options);
    this.#disks = new DiskCache(asp, { log: options.log });
  }

  /** The disk digest cache (its counters, for the metrics and the tests). */
  get disks(): DiskCache {
    return this.#disks;
  }

  /** {@inheritDoc VaspPort.measureReferences} */
  async measureReferences(
    xml: Uint8Array,
    options: { uuid: string },
  ): Promise<{ references: BootReference[]; unmeasured: string[] }> {
    const domain = parseDomainXml(new TextDecoder().decode(xml));
    if (domain.uuid !== options.uuid) {
      throw new VaspError(
        "request_invalid",
        `The domain XML is for VM ${domain.uuid}, not ${options.uuid}`,
        { details: { uuid: domain.uuid } },
      );
    }
    const boot = await measureBoot(domain, xml, this.#disks);
    const unmeasured = boot.components.filter((c) => c.referenced && c.sha256 === "")
      .map((c) => `${c.name} ${c.path}: ${c.detail}`);
    return { references: referencesOf(boot), unmeasured };
  }

  /** The live instances (for tests and the monitor's reads). */
  get instances(): InstanceManager {
    return this.#instances;
  }

  /**
   * Brings back the instance of every VM with a binding, from its stored sealed state, and
   * reads its snapshots' sealed states. A refusal is logged loudly; that VM has no live
   * instance and decisions about it fail closed with the refusal in their context
   * (`vasp.error`).
   *
   * @returns the VMs whose instance was refused, with why
   * @throws {VaspError} the store's failures
   */
  async bringBackAll(): Promise<{ uuid: string; name: string; error: string }[]> {
    const refused = [];
    for (const vm of await this.#store.listVms()) {
      await this.#snapshots.load(vm);
      if (!vm.binding) continue;
      const error = this.#instances.bringBack(vm.uuid, vm.binding.sealedState);
      if (error === undefined) continue;
      this.#log.log(
        "error",
        `VM "${vm.name}" has no vASP instance: ${error}; every decision about it fails closed`,
        { vm: vm.name, vm_uuid: vm.uuid },
      );
      refused.push({ uuid: vm.uuid, name: vm.name, error });
    }
    return refused;
  }

  /**
   * Extends registers of a VM's instance and keeps the new sealed state.
   *
   * @param uuid the VM
   * @param extensions what to extend
   * @returns the new sealed state
   * @throws {VaspError} `vasp_instance_unavailable`, the store's failures
   */
  extend(uuid: string, extensions: readonly Extension[]): Promise<SealedBinding> {
    return this.#queue.run(uuid, async () => {
      const sealed = this.#instances.extend(uuid, extensions);
      await this.#store.updateVm(uuid, { binding: stored(sealed) });
      return sealed;
    });
  }

  /** {@inheritDoc VaspPort.register} */
  register(vm: NewVm, options: { configDigest: string }): Promise<VmRecord> {
    return this.#queue.run(vm.uuid, async () => {
      if (await this.#store.getVm(vm.uuid)) {
        throw new VaspError(
          "vm_exists",
          `Cannot register VM "${vm.name}": UUID ${vm.uuid} is already registered`,
          { details: { uuid: vm.uuid } },
        );
      }
      return await this.#created(
        vm.uuid,
        options.configDigest,
        (binding) => this.#store.registerVm({ ...vm, binding }),
      );
    });
  }

  /** {@inheritDoc VaspPort.forget} */
  forget(vm: VmRecord): Promise<void> {
    return this.#queue.run(vm.uuid, () => {
      this.#snapshots.forget(vm.uuid);
      const id = this.#instances.destroy(vm.uuid);
      if (id) {
        this.#log.log("info", `vASP instance of VM "${vm.name}" destroyed (VM removed)`, {
          vm: vm.name,
          vm_uuid: vm.uuid,
          instance_id: id,
        });
      }
      return Promise.resolve();
    });
  }

  /** {@inheritDoc VaspPort.quote} */
  quote(
    uuid: string,
    nonce: Uint8Array,
    options: { registers?: readonly number[]; alg?: "sha256" | "sm3" },
  ): Promise<VaspQuote> {
    return this.#queue.run(
      uuid,
      () => Promise.resolve(this.#instances.quote(uuid, nonce, options)),
    );
  }

  /** {@inheritDoc VaspPort.prepare} */
  prepare(event: LifecycleEvent, vm: VmRecord | undefined): VaspStep | Promise<VaspStep> {
    const op = event.operation;
    const snapshot = snapshotStep(event);
    const imports = { instances: this.#instances, store: this.#store, queue: this.#queue };
    if (snapshot?.action === "load") {
      const kept = snapshot.name === undefined
        ? undefined
        : this.#snapshots.get(event.vm.uuid, snapshot.name);
      return revertStep(imports, { event, vm, name: snapshot.name, kept });
    }
    if (INBOUND.has(op) && movesState(event)) {
      const supplied = op === "migrate-in"
        ? base64(event.details.vasp_state_b64, "vasp_state_b64")
        : undefined;
      const blob = supplied ?? vm?.binding?.sealedState ?? null;
      // Nothing to import: the policies decide (sealed-state denies by default).
      if (blob === null) return { binding: this.#view(vm, false), settle: nothing, discard() {} };
      return importStep(imports, { event, vm, blob });
    }
    const binding = this.#view(vm, OUTBOUND.has(op));
    if (op === "start" && BOOT_PHASES.has(event.phase ?? "")) {
      return this.#prepareBoot(event, vm).then((measured) => ({
        binding,
        ...(measured?.state ? { boot: measured.state } : {}),
        settle: (decision: Decision) =>
          decision.allow ? this.#boot(event, vm, measured?.boot) : Promise.resolve({}),
        discard() {},
      }));
    }
    const settle = async (decision: Decision): Promise<VaspOutcome> => {
      if (!decision.allow) return {};
      if (op === "define") return await this.#define(event, vm);
      if (snapshot?.action === "delete") return await this.#dropSnapshot(event, snapshot.name);
      if (OUTBOUND.has(op) && movesState(event)) {
        return await this.#outbound(event, vm, snapshot?.name);
      }
      if (op === "destroy") return await this.#destroy(event, vm);
      return {};
    };
    return { binding, settle, discard() {} };
  }

  /** The binding the engine sees: the stored one, with whether its instance is live. */
  #view(vm: VmRecord | undefined, outbound: boolean): EngineBinding | null | undefined {
    if (!vm?.binding) return undefined;
    const status = this.#instances.status(vm.uuid);
    if (status?.live) {
      // Outbound, a live instance can be sealed beside the guest state: it will be if allowed.
      const sealedExport = outbound || vm.binding.sealedState !== null;
      return engineBinding(vm.binding, { sealedExport, error: "" });
    }
    return engineBinding(vm.binding, {
      sealedExport: false,
      error: status?.error ?? "the server holds no instance for it",
    });
  }

  /** Creates an instance and keeps it with `keep`; destroys it when it cannot be kept. */
  async #created<T>(
    uuid: string,
    configDigest: string,
    keep: (binding: VaspBinding) => Promise<T>,
  ): Promise<T> {
    const sealed = this.#instances.create(uuid, configDigest);
    try {
      return await keep(stored(sealed));
    } catch (error) {
      this.#instances.destroy(uuid);
      throw error;
    }
  }

  /** Gives a VM without a binding an instance bound to `digest`. */
  #ensureInstance(event: LifecycleEvent, vm: VmRecord | undefined, digest: string) {
    return this.#created(event.vm.uuid, digest, async (binding) => {
      if (vm) return await this.#store.updateVm(vm.uuid, { binding });
      return await this.#store.registerVm(newVm(event, binding));
    });
  }

  /** An allowed define with a configuration: the VM's instance, unless it has one. */
  #define(event: LifecycleEvent, vm: VmRecord | undefined): Promise<VaspOutcome> {
    return this.#queue.run(event.vm.uuid, async () => {
      const { digest } = eventConfig(event);
      const current = await this.#store.getVm(event.vm.uuid) ?? vm;
      if (digest === undefined || current?.binding) return {};
      const record = await this.#ensureInstance(event, current, digest);
      const details = { instance_id: record.binding!.instanceId, created: true };
      // The VM is registered from its domain XML here: what it boots becomes its references.
      const { xml } = eventConfig(event);
      if (!xml || (await this.#store.getBootReferences(record.uuid)).length > 0) return { details };
      const domain = bootDomain(event, xml);
      if ("refusal" in domain) return { details };
      const boot = await measureBoot(domain.domain, xml, this.#disks);
      const references = referencesOf(boot);
      await this.#store.setBootReferences(record.uuid, references);
      const listed = references.map((r) =>
        `${r.name}${r.path ? ` ${r.path}` : ""} sha256:${r.digest}`
      );
      return {
        details,
        note: {
          rule: "boot-references",
          message: `boot references of VM "${event.vm.name}" recorded from its domain XML: ${
            listed.join(", ") || "none"
          }`,
        },
      };
    });
  }

  /**
   * Measured launch: what a start with its domain XML will boot, measured before the engine
   * decides, and compared with the VM's boot references. `undefined` when there is nothing to
   * measure (no XML) or the XML cannot be used (settling refuses it then).
   */
  async #prepareBoot(
    event: LifecycleEvent,
    vm: VmRecord | undefined,
  ): Promise<{ boot: MeasuredBoot; state: ReturnType<typeof bootState> } | undefined> {
    const { xml, digest } = eventConfig(event);
    if (!xml) return undefined;
    const domain = bootDomain(event, xml);
    if ("refusal" in domain) return undefined;
    const references = vm ? await this.#store.getBootReferences(vm.uuid) : [];
    const boot = await measureBoot(domain.domain, xml, this.#disks, {
      referenced: new Set(references.map((r) => r.name)),
    });
    return { boot, state: bootState(boot, references, digest!) };
  }

  /** vBoot: an allowed start with its domain XML extends what will boot (measured before). */
  #boot(
    event: LifecycleEvent,
    vm: VmRecord | undefined,
    measured: MeasuredBoot | undefined,
  ): Promise<VaspOutcome> {
    return this.#queue.run(event.vm.uuid, async () => {
      const { xml, digest } = eventConfig(event);
      if (!xml) return {};
      const domain = bootDomain(event, xml);
      if ("refusal" in domain) return domain;
      const current = await this.#store.getVm(event.vm.uuid) ?? vm;
      let created = false;
      if (!current?.binding) {
        await this.#ensureInstance(event, current, digest!);
        created = true;
      }
      const status = this.#instances.status(event.vm.uuid);
      if (!status?.live) {
        const why = status?.error ?? "it has no vASP instance";
        return refusal("vboot", `Cannot measure what VM "${event.vm.name}" boots: ${why}`);
      }
      const extensions = (measured ?? await measureBoot(domain.domain, xml, this.#disks))
        .extensions;
      const sealed = this.#instances.extend(event.vm.uuid, extensions);
      await this.#store.updateVm(event.vm.uuid, { binding: stored(sealed) });
      return answer(sealed, { vboot: extensions.length, ...(created ? { created } : {}) });
    });
  }

  /**
   * Save, snapshot, outgoing migration: seal the instance beside the guest state; a snapshot's
   * sealed state is kept under its name.
   */
  #outbound(
    event: LifecycleEvent,
    vm: VmRecord | undefined,
    name: string | undefined,
  ): Promise<VaspOutcome> {
    if (!vm?.binding) return Promise.resolve({});
    if (event.operation === "snapshot") {
      if (name === undefined) {
        return Promise.resolve(refusal(
          "seal",
          `Cannot seal the vASP state of VM "${event.vm.name}" for a snapshot: the event names ` +
            "none (details.snapshot), so a revert could not find it",
        ));
      }
      return this.#queue.run(event.vm.uuid, () => this.#snapshots.seal(event, name));
    }
    return this.#queue.run(event.vm.uuid, async () => {
      const status = this.#instances.status(event.vm.uuid);
      if (!status?.live) {
        const why = status?.error ?? "it has no live instance";
        return refusal("seal", `Cannot seal the vASP state of VM "${event.vm.name}": ${why}`);
      }
      const sealed = this.#instances.seal(event.vm.uuid);
      await this.#store.updateVm(event.vm.uuid, { binding: stored(sealed) });
      return answer(sealed);
    });
  }

  /** An allowed snapshot deletion: its sealed state is dropped and unregistered. */
  #dropSnapshot(event: LifecycleEvent, name: string | undefined): Promise<VaspOutcome> {
    if (name === undefined) return Promise.resolve({});
    return this.#queue.run(event.vm.uuid, () => this.#snapshots.drop(event, name));
  }

  /** An allowed destroy: the instance is destroyed for good and the binding dropped. */
  #destroy(event: LifecycleEvent, vm: VmRecord | undefined): Promise<VaspOutcome> {
    return this.#queue.run(event.vm.uuid, async () => {
      const id = this.#instances.destroy(event.vm.uuid);
      if (vm?.binding) await this.#store.updateVm(event.vm.uuid, { binding: null });
      await this.#snapshots.dropAll(event.vm.uuid);
      return id ? { details: { instance_id: id, destroyed: true } } : {};
    });
  }

  /** Closes every instance handle (they live on in their sealed states). */
  close(): void {
    this.#instances.close();
  }
}
