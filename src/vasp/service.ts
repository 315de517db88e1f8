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
  describeError,
  type LifecycleEvent,
  type Logger,
  type VaspBinding as EngineBinding,
  VaspError,
} from "../engine/mod.ts";
import {
  engineBinding,
  type VaspPlan,
  type VaspPort,
  type VaspQuote,
  type VaspStep,
} from "./port.ts";
import type { BootReference, NewVm, Store, VaspBinding, VmRecord } from "../store/mod.ts";
import { parseDomainXml } from "../hypervisor/libvirt.ts";
import { DiskCache } from "./disk_cache.ts";
import { bootState, measureBoot, type MeasuredBoot, referencesOf, warmBoot } from "./_boot.ts";
import { KeyedQueue } from "./_keyed_queue.ts";
import { SnapshotStates } from "./_snapshots.ts";
import { importStep, refusedImport, revertStep } from "./_import_step.ts";
import type { Migrations } from "./migration.ts";
import type { Outcome } from "../engine/mod.ts";
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

const nothing = (): Promise<VaspPlan> => Promise.resolve({});

/** The vASP side of the server: {@link VaspPort} on the live instances and the store. */
export class VaspService implements VaspPort {
  readonly #instances: InstanceManager;
  readonly #store: Store;
  readonly #log: Logger;
  readonly #queue = new KeyedQueue();
  readonly #snapshots: SnapshotStates;
  readonly #disks: DiskCache;
  readonly #migrations: Migrations | undefined;

  /**
   * @param asp the open ASP
   * @param store where bindings are kept
   * @param options `log`: where instances refused or destroyed are logged; `migrations`: both
   *   sides of migration between enrolled hosts (none: a VM neither leaves nor arrives)
   */
  constructor(asp: Asp, store: Store, options: { log: Logger; migrations?: Migrations }) {
    this.#instances = new InstanceManager(asp);
    this.#store = store;
    this.#log = options.log;
    this.#migrations = options.migrations;
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
      // The hook's migrate-in fetches; QEMU's launch of it (the gate) imports what arrived.
      if (
        op === "migrate-in" && supplied === undefined && event.phase !== "launch" &&
        this.#migrations
      ) {
        return this.#incoming(event, vm, imports, this.#migrations);
      }
      const blob = supplied ?? vm?.binding?.sealedState ?? null;
      // Nothing to import: the policies decide (sealed-state denies by default).
      if (blob === null) return { binding: this.#view(vm, false), plan: nothing, discard() {} };
      return importStep(imports, { event, vm, blob });
    }
    const binding = this.#view(vm, OUTBOUND.has(op));
    if (op === "start" && BOOT_PHASES.has(event.phase ?? "")) {
      // Measured launch: what it boots is measured before the engine decides.
      return this.#prepareBoot(event, vm).then((measured) => ({
        binding,
        ...(measured?.state ? { boot: measured.state } : {}),
        plan: (decision: Decision) =>
          decision.allow ? this.#boot(event, vm, measured?.boot) : Promise.resolve({}),
        discard() {},
      }));
    }
    const destination = this.#migrations?.destination(event);
    const transfer = op === "migrate-out" && event.phase === "transfer";
    const migrationId = String(event.details.migration_id ?? "");
    // Planned before the decision is recorded (checks only, which may refuse); applied after.
    const plan = async (decision: Decision): Promise<VaspPlan> => {
      if (transfer) return this.#transfer(event, vm, decision, migrationId);
      if (!decision.allow) return {};
      if (op === "define") return await this.#define(event, vm);
      if (snapshot?.action === "delete") return this.#dropSnapshot(event, snapshot.name);
      // QEMU's migrate: the state went to the destination with the transfer it was allowed.
      if (op === "migrate-out" && this.#migrations) return {};
      if (OUTBOUND.has(op) && movesState(event)) return this.#outbound(event, vm, snapshot?.name);
      if (op === "destroy") return this.#destroy(event, vm);
      return {};
    };
    const discard = () => {
      if (transfer) this.#migrations?.takeAppraisal(migrationId);
    };
    return { binding, ...(destination === undefined ? {} : { destination }), plan, discard };
  }

  /**
   * An incoming migration without a state in the event: fetched from the enrolled peer that
   * holds the VM's live instance, then imported as any sealed state is (before the engine
   * decides).
   */
  async #incoming(
    event: LifecycleEvent,
    vm: VmRecord | undefined,
    imports: Parameters<typeof importStep>[0],
    migrations: Migrations,
  ): Promise<VaspStep> {
    const arrival = await migrations.fetch(event);
    if ("refusal" in arrival) return refusedImport(vm, arrival.refusal);
    return importStep({ ...imports, migrations }, { event, vm, blob: arrival.blob, arrival });
  }

  /**
   * The transfer of an outgoing migration (`migrate-out` phase `transfer`, asked by the
   * destination's vASP): once allowed, the instance is sealed to the destination's ASP, and
   * sealed here again so that the stored state stays the newest.
   */
  #transfer(
    event: LifecycleEvent,
    vm: VmRecord | undefined,
    decision: Decision,
    id: string,
  ): VaspPlan {
    const appraised = this.#migrations?.takeAppraisal(id);
    if (!decision.allow) return {};
    const { uuid, name } = event.vm;
    const status = this.#instances.status(uuid);
    if (!vm?.binding || !status?.live) {
      const why = status?.live === false ? status.error : "it has no live instance";
      return refusal(
        "transfer",
        `Cannot seal the vASP state of VM "${name}" to its destination: ${why}`,
      );
    }
    if (!appraised?.transport) {
      return refusal(
        "transfer",
        `Cannot seal the vASP state of VM "${name}" to its destination: no transport key of ` +
          "its ASP checked out",
      );
    }
    const { transport, after, state: destination } = appraised;
    return {
      apply: () =>
        this.#queue.run(uuid, async () => {
          const { blob, counter, sealed } = this.#instances.exportTo(uuid, transport, after);
          await this.#store.updateVm(uuid, { binding: stored(sealed) });
          this.#migrations!.transferred(id, { uuid, destination, blob, counter });
          return answer(sealed, { transfer_to: destination.peer, transfer_counter: counter });
        }),
    };
  }

  /** {@inheritDoc VaspPort.observed} */
  async observed(event: LifecycleEvent, outcome: Outcome): Promise<void> {
    if (event.operation === "shutdown" && event.phase === "release") {
      // In the background: the hook's report (libvirt waits for it) is not held up.
      this.#warm(event).catch((error) =>
        this.#log.log("warn", "cannot hash ahead what the VM's next start measures", {
          vm: event.vm.name,
          vm_uuid: event.vm.uuid,
          error: describeError(error),
        })
      );
    }
    const migrations = this.#migrations;
    if (!migrations) return;
    const { uuid, name } = event.vm;
    if (event.operation === "migrate-out") {
      const peer = migrations.endOutgoing(uuid);
      if (outcome !== "completed") return;
      await this.#retire(uuid, name, `its vASP went with it to ${peer ?? "another host"}`);
      return;
    }
    const ends = event.operation === "migrate-in" ||
      (event.operation === "shutdown" && outcome === "completed");
    if (!ends) return;
    const arrival = migrations.endArrival(uuid);
    if (!arrival) return;
    if (event.operation === "migrate-in" && outcome === "completed") {
      this.#log.log(
        "info",
        `VM "${name}" arrived from ${arrival.peer}: its vASP is in force here`,
        {
          vm: name,
          vm_uuid: uuid,
          migration_id: arrival.migrationId,
        },
      );
      return;
    }
    await this.#retire(
      uuid,
      name,
      `its migration from ${arrival.peer} did not complete: the vASP state that arrived is discarded`,
    );
  }

  /**
   * Closes a VM's instance that is no longer this host's, and drops its binding, its snapshots'
   * states and how the monitor measured it here (its RAM file and QMP socket are gone).
   */
  #retire(uuid: string, name: string, why: string): Promise<void> {
    return this.#queue.run(uuid, async () => {
      const id = this.#instances.retire(uuid, why);
      await this.#snapshots.dropAll(uuid);
      const vm = await this.#store.getVm(uuid);
      if (vm?.binding || vm?.introspection) {
        await this.#store.updateVm(uuid, { binding: null, introspection: null });
      }
      this.#log.log("info", `vASP instance of VM "${name}" retired: ${why}`, {
        vm: name,
        vm_uuid: uuid,
        ...(id ? { instance_id: id } : {}),
      });
    });
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

  /**
   * An allowed define with a configuration: the VM's instance, unless it has one. A VM
   * registered so from its domain XML gets what it boots (measured now) as its boot references,
   * named in the record.
   */
  async #define(event: LifecycleEvent, vm: VmRecord | undefined): Promise<VaspPlan> {
    const { digest, xml } = eventConfig(event);
    if (digest === undefined || vm?.binding) return {};
    const uuid = event.vm.uuid;
    const domain = xml ? bootDomain(event, xml) : undefined;
    const measured = domain && !("refusal" in domain) &&
        (await this.#store.getBootReferences(uuid)).length === 0
      ? referencesOf(await measureBoot(domain.domain, xml!, this.#disks))
      : undefined;
    const listed = measured?.map((r) =>
      `${r.name}${r.path ? ` ${r.path}` : ""} sha256:${r.digest}`
    );
    return {
      ...(listed
        ? {
          note: {
            rule: "boot-references",
            message: `boot references of VM "${event.vm.name}" recorded from its domain XML: ${
              listed.join(", ") || "none"
            }`,
          },
        }
        : {}),
      apply: () =>
        this.#queue.run(uuid, async () => {
          const current = await this.#store.getVm(uuid) ?? vm;
          if (current?.binding) return {};
          const record = await this.#ensureInstance(event, current, digest);
          if (measured) await this.#store.setBootReferences(record.uuid, measured);
          return { details: { instance_id: record.binding!.instanceId, created: true } };
        }),
    };
  }

  /**
   * After a VM's stop (libvirt's `release`, once it put the files' owners back), what its next
   * start measures is hashed ahead in the background.
   */
  async #warm(event: LifecycleEvent): Promise<void> {
    const { xml } = eventConfig(event);
    if (!xml) return;
    const domain = bootDomain(event, xml);
    if ("refusal" in domain) return;
    const references = await this.#store.getBootReferences(event.vm.uuid);
    warmBoot(domain.domain, this.#disks, new Set(references.map((r) => r.name)));
  }

  /**
   * Measured launch: what a start with its domain XML will boot, measured before the engine
   * decides, and compared with the VM's boot references. `undefined` when there is nothing to
   * measure (no XML) or the XML cannot be used (planning refuses it then).
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

  /**
   * vBoot: an allowed start with its domain XML extends what will boot, as measured before the
   * engine decided; the instance is created and extended once the decision is recorded.
   */
  async #boot(
    event: LifecycleEvent,
    vm: VmRecord | undefined,
    measured: MeasuredBoot | undefined,
  ): Promise<VaspPlan> {
    const { xml, digest } = eventConfig(event);
    if (!xml) return {};
    const domain = bootDomain(event, xml);
    if ("refusal" in domain) return domain;
    const uuid = event.vm.uuid;
    const unmeasurable = (current: VmRecord | undefined) => {
      const status = this.#instances.status(uuid);
      if (!current?.binding || status?.live) return undefined;
      const why = status?.error ?? "it has no vASP instance";
      return `Cannot measure what VM "${event.vm.name}" boots: ${why}`;
    };
    const why = unmeasurable(await this.#store.getVm(uuid) ?? vm);
    if (why) return refusal("vboot", why);
    const { extensions } = measured ?? await measureBoot(domain.domain, xml, this.#disks);
    return {
      apply: () =>
        this.#queue.run(uuid, async () => {
          let current = await this.#store.getVm(uuid) ?? vm;
          let created = false;
          if (!current?.binding) {
            current = await this.#ensureInstance(event, current, digest!);
            created = true;
          }
          const changed = unmeasurable(current);
          if (changed) throw new VaspError("vasp_instance_unavailable", changed);
          const sealed = this.#instances.extend(uuid, extensions);
          await this.#store.updateVm(uuid, { binding: stored(sealed) });
          return answer(sealed, { vboot: extensions.length, ...(created ? { created } : {}) });
        }),
    };
  }

  /**
   * Save, snapshot, outgoing migration: seal the instance beside the guest state; a snapshot's
   * sealed state is kept under its name, which the record names.
   */
  #outbound(event: LifecycleEvent, vm: VmRecord | undefined, name: string | undefined): VaspPlan {
    if (!vm?.binding) return {};
    const { uuid, name: vmName } = event.vm;
    const status = this.#instances.status(uuid);
    if (!status?.live) {
      const why = status?.error ?? "it has no live instance";
      const what = name === undefined ? "" : ` for snapshot "${name}"`;
      return refusal("seal", `Cannot seal the vASP state of VM "${vmName}"${what}: ${why}`);
    }
    if (event.operation !== "snapshot") {
      return {
        apply: () =>
          this.#queue.run(uuid, async () => {
            const sealed = this.#instances.seal(uuid);
            await this.#store.updateVm(uuid, { binding: stored(sealed) });
            return answer(sealed);
          }),
      };
    }
    if (name === undefined) {
      return refusal(
        "seal",
        `Cannot seal the vASP state of VM "${vmName}" for a snapshot: the event names none ` +
          "(details.snapshot), so a revert could not find it",
      );
    }
    const replacing = this.#snapshots.get(uuid, name) !== undefined;
    return {
      note: {
        rule: "snapshot-sealed",
        message: `the vASP state of VM "${vmName}" is sealed as snapshot "${name}"` +
          (replacing ? ", replacing the earlier one" : ""),
      },
      apply: () => this.#queue.run(uuid, () => this.#snapshots.seal(event, name)),
    };
  }

  /** An allowed snapshot deletion: its sealed state is dropped and unregistered. */
  #dropSnapshot(event: LifecycleEvent, name: string | undefined): VaspPlan {
    if (name === undefined) return {};
    const { uuid, name: vmName } = event.vm;
    const kept = this.#snapshots.get(uuid, name) !== undefined;
    return {
      note: {
        rule: "snapshot-dropped",
        message: kept
          ? `the sealed vASP state of snapshot "${name}" of VM "${vmName}" is dropped`
          : `VM "${vmName}" has no sealed vASP state for snapshot "${name}": none dropped`,
      },
      apply: () => this.#queue.run(uuid, () => this.#snapshots.drop(event, name)),
    };
  }

  /** An allowed destroy: the instance is destroyed for good, the binding and snapshots dropped. */
  #destroy(event: LifecycleEvent, vm: VmRecord | undefined): VaspPlan {
    const uuid = event.vm.uuid;
    return {
      apply: () =>
        this.#queue.run(uuid, async () => {
          const id = this.#instances.destroy(uuid);
          if (vm?.binding) await this.#store.updateVm(uuid, { binding: null });
          await this.#snapshots.dropAll(uuid);
          return id ? { details: { instance_id: id, destroyed: true } } : {};
        }),
    };
  }

  /** Closes every instance handle (they live on in their sealed states). */
  close(): void {
    this.#disks.close();
    this.#instances.close();
  }
}
