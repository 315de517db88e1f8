/**
 * The `Store` interface: everything the decision server keeps — VM records, their latest
 * measurements, and the audit log. Nothing here is specific to SQLite; every method is async
 * so a networked database (PostgreSQL, for fleets) fits the same shape.
 *
 * @module
 */
import type { AuditEntry, AuditRecord, AuditResult } from "./audit.ts";
import type { Checkpoint, CheckpointVerifier } from "./checkpoint.ts";
import type { VerifyResult } from "./verify.ts";

/** A VM's binding to its vASP instance, as the ASP created and last sealed it. */
export interface VaspBinding {
  /** The vASP instance ID. */
  readonly instanceId: string;
  /** SHA-256 (hex) of the VM configuration the instance is bound to. */
  readonly configDigest: string;
  /** The instance state sealed by the ASP at the last save, snapshot or migration. */
  readonly sealedState: Uint8Array | null;
  /** The ASP export counter inside `sealedState` (0 when none). */
  readonly sealedCounter: number;
}

/**
 * One boot reference of a VM: the digest a component of its boot must have (docs/lifecycle.md,
 * "Measured launch"). Recorded at registration from the domain XML, or declared by the
 * operator; changed only through an audited operator action.
 */
export interface BootReference {
  /** `firmware`, `kernel`, `initrd`, `cmdline`, `nvram`, or `disk:<target>`; unique per VM. */
  readonly name: string;
  /** The file it was measured from (`""` for the command line). */
  readonly path: string;
  /** SHA-256 of the component, bare lower-case hex. */
  readonly digest: string;
}

/**
 * The sealed vASP state of one internal snapshot of a VM (QEMU `savevm`/`snapshot-save`),
 * kept under the snapshot's name so that a revert imports that snapshot's own state
 * (docs/lifecycle.md, "Snapshots").
 */
export interface SnapshotState {
  /** The snapshot's name (QEMU's tag, libvirt's snapshot name); unique per VM. */
  readonly name: string;
  /** The vASP instance that was sealed. */
  readonly instanceId: string;
  /** The instance state sealed by the ASP and registered with it as a snapshot of the VM. */
  readonly sealedState: Uint8Array;
  /** The ASP export counter inside `sealedState`: the snapshot's registration. */
  readonly sealedCounter: number;
  /** When it was kept. */
  readonly createdAt: Date;
}

/** What keeping a snapshot's sealed state needs (the store stamps the time). */
export type NewSnapshot = Omit<SnapshotState, "createdAt">;

/**
 * How the measurement monitor measures a VM's kernel from outside (docs/introspection.md,
 * docs/lifecycle.md): where its RAM and kernel symbols are, and how often.
 */
export interface IntrospectionSettings {
  /** Guest RAM: QEMU's `memory-backend-file` (`share=on`), or libvirt's shared memory file. */
  readonly memory: string;
  /** The guest kernel's System.map. */
  readonly symbols: string;
  /** The guest kernel's vmlinuz: its relocations normalise a KASLR boot. */
  readonly vmlinuz?: string;
  /** QEMU's QMP socket: CR3, IDTR and profile facts; where `pause` and `kill` are enforced. */
  readonly qmp?: string;
  /** Milliseconds between two measurements. */
  readonly intervalMs: number;
  /** Bytes of RAM below the PCI hole, when the file is larger (machine layout). */
  readonly below4g?: number;
  /** Profile facts, when there is no QMP socket: QEMU version, CPU model, vCPUs. */
  readonly qemuVersion?: string;
  /** CPU model (profile), e.g. `qemu64`. */
  readonly cpu?: string;
  /** vCPU count (profile). */
  readonly smp?: number;
}

/** A VM as the decision server knows it. */
export interface VmRecord {
  /** Canonical UUID; the key. */
  readonly uuid: string;
  /** Hypervisor name (libvirt domain name). */
  readonly name: string;
  /** The tenant that owns it. */
  readonly tenant: string;
  /** Free-form labels policies can match on. */
  readonly labels: Readonly<Record<string, string>>;
  /** Life-cycle state; the engine owns the set of names. */
  readonly state: string;
  /** Its vASP binding, once it has one. */
  readonly binding: VaspBinding | null;
  /** How the monitor measures it; `null`: it is not measured. */
  readonly introspection: IntrospectionSettings | null;
  /** When it was registered. */
  readonly createdAt: Date;
  /** When it last changed. */
  readonly updatedAt: Date;
}

/** What registering a VM needs. */
export interface NewVm {
  /** Canonical UUID. */
  readonly uuid: string;
  /** Hypervisor name. */
  readonly name: string;
  /** Owning tenant. */
  readonly tenant: string;
  /** Labels; none when left out. */
  readonly labels?: Readonly<Record<string, string>>;
  /** Initial life-cycle state. */
  readonly state: string;
  /** vASP binding, if already created. */
  readonly binding?: VaspBinding | null;
  /** How the monitor measures it; none when left out. */
  readonly introspection?: IntrospectionSettings | null;
}

/** The fields of a VM that can change. */
export interface VmPatch {
  /** New name. */
  readonly name?: string;
  /** New labels (replacing the old). */
  readonly labels?: Readonly<Record<string, string>>;
  /** New life-cycle state. */
  readonly state?: string;
  /** New binding, or `null` to drop it. */
  readonly binding?: VaspBinding | null;
  /** New introspection settings, or `null` to stop measuring it. */
  readonly introspection?: IntrospectionSettings | null;
}

/** Which VMs to list. */
export interface VmFilter {
  /** Only this tenant's. */
  readonly tenant?: string;
  /** Only VMs in this state. */
  readonly state?: string;
}

/** The latest measurement of one region of a VM. */
export interface Measurement {
  /** Region name, e.g. `kernel_text`, `syscall_table`. */
  readonly region: string;
  /** Measured digest, hex; empty when the region could not be measured. */
  readonly digest: string;
  /** The reference digest it was compared with, `null` when there is none. */
  readonly reference: string | null;
  /**
   * Outcome of the comparison in the engine's words: `ok`, `differs`, `missing` (no
   * measurement or no reference) or `error`. Anything else is read as `error`.
   */
  readonly status: string;
  /** When it was measured. */
  readonly time: Date;
  /** What went wrong or differs (an error, a table-check finding); absent or empty: nothing. */
  readonly detail?: string;
}

/** A query of the audit log; results come in `seq` order. */
export interface AuditQuery {
  /** Only decisions about this VM. */
  readonly vmUuid?: string;
  /** Only decisions made at or after this time. */
  readonly from?: Date;
  /** Only decisions made before this time. */
  readonly to?: Date;
  /** Only results of this kind. */
  readonly result?: AuditResult;
  /** `nextCursor` of the previous page. */
  readonly cursor?: number;
  /** Page size, 1 to 1000 (default 100). */
  readonly limit?: number;
  /** Oldest first (`asc`, the default) or newest first. */
  readonly order?: "asc" | "desc";
}

/** One page of audit records. */
export interface AuditPage {
  /** The records, in the order asked for. */
  readonly records: AuditRecord[];
  /** Pass as `cursor` for the next page; `null` on the last page. */
  readonly nextCursor: number | null;
}

/** Options of {@link Store.verifyAudit}. */
export interface VerifyOptions {
  /**
   * Checks checkpoint signatures. Give one built from a key you trust (the ASP's attestation
   * key); without it, signatures are checked against the key recorded with each checkpoint,
   * which catches corruption and careless edits but not someone who re-signs.
   */
  readonly verifier?: CheckpointVerifier;
  /**
   * The anchor's counter (the ASP's `audit.checkpoints`), read before the call; the newest
   * checkpoint must carry at least this value. A store opened with an anchor reads it itself.
   */
  readonly anchorCounter?: number;
}

/** What the decision server keeps, wherever it keeps it. */
export interface Store extends AsyncDisposable, Disposable {
  /**
   * Registers a VM.
   *
   * @throws {VaspError} `vm_exists` when the UUID is taken
   */
  registerVm(vm: NewVm): Promise<VmRecord>;
  /** The VM with this UUID, or `undefined`. */
  getVm(uuid: string): Promise<VmRecord | undefined>;
  /** VMs matching the filter, by name then UUID. */
  listVms(filter?: VmFilter): Promise<VmRecord[]>;
  /**
   * Changes a VM. With `ifState`, only when its state is still that one (compare-and-set, so
   * two racing transitions cannot both win).
   *
   * @throws {VaspError} `vm_not_found`; `vm_state_conflict` when `ifState` does not hold
   */
  updateVm(uuid: string, patch: VmPatch, options?: { ifState?: string }): Promise<VmRecord>;
  /**
   * Removes a VM, its measurements and its snapshots' sealed states; its audit records stay.
   *
   * @throws {VaspError} `vm_not_found`
   */
  removeVm(uuid: string): Promise<void>;
  /**
   * Stores measurements as the latest for their regions, replacing older ones.
   *
   * @throws {VaspError} `vm_not_found`
   */
  recordMeasurements(uuid: string, measurements: readonly Measurement[]): Promise<void>;
  /** The latest measurement of each region of a VM, by region name. */
  latestMeasurements(uuid: string): Promise<Measurement[]>;
  /**
   * Keeps a snapshot's sealed state under its name, replacing one of the same name.
   *
   * @returns what is kept now, and the one it replaced
   * @throws {VaspError} `vm_not_found`; {@link TypeError} for a malformed snapshot
   */
  keepSnapshot(
    uuid: string,
    snapshot: NewSnapshot,
  ): Promise<{ kept: SnapshotState; replaced?: SnapshotState }>;
  /** The sealed states of a VM's snapshots, by name (none for an unknown VM). */
  listSnapshots(uuid: string): Promise<SnapshotState[]>;
  /**
   * Drops a snapshot's sealed state.
   *
   * @returns the one dropped, or `undefined` when there was none of that name
   */
  dropSnapshot(uuid: string, name: string): Promise<SnapshotState | undefined>;
  /**
   * Replaces every boot reference of a VM in one transaction (none: the VM has none).
   *
   * @returns the references kept, by name
   * @throws {VaspError} `vm_not_found`; {@link TypeError} for a malformed reference
   */
  setBootReferences(uuid: string, references: readonly BootReference[]): Promise<BootReference[]>;
  /** A VM's boot references, by name (none for an unknown VM or one without references). */
  getBootReferences(uuid: string): Promise<BootReference[]>;
  /**
   * Appends a decision to the audit log. Resolves only once the record is durable; appends
   * made meanwhile are committed together.
   *
   * @throws {TypeError} for a malformed entry; {@link VaspError} `audit_write_failed`
   */
  appendAudit(entry: AuditEntry): Promise<AuditRecord>;
  /**
   * Reads the audit log a page at a time.
   *
   * @throws {VaspError} `audit_record_malformed` naming the seq of an unreadable record
   */
  queryAudit(query?: AuditQuery): Promise<AuditPage>;
  /** Walks the whole chain and its checkpoints; reports the first problem. */
  verifyAudit(options?: VerifyOptions): Promise<VerifyResult>;
  /**
   * Signs a checkpoint at the current head now, unless one is already there.
   *
   * @returns the checkpoint, or `undefined` with no signer or an empty log
   */
  checkpoint(): Promise<Checkpoint | undefined>;
  /**
   * Commits pending appends, writes a shutdown checkpoint and closes. Idempotent.
   */
  close(): Promise<void>;
}
