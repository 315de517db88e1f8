/**
 * The embedded store: one SQLite file (`vasp.db` in the state directory) through Deno's
 * built-in `node:sqlite`.
 *
 * @module
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { errorMessage, VaspError } from "../engine/error.ts";
import type { AuditEntry, AuditRecord } from "./audit.ts";
import type { Checkpoint, CheckpointAnchor, Signer } from "./checkpoint.ts";
import type { GroupCommitOptions } from "./group_commit.ts";
import { openDatabase } from "./_sqlite_schema.ts";
import { SqliteAuditLog } from "./_sqlite_audit.ts";
import { SqliteSnapshots } from "./_sqlite_snapshots.ts";
import { SqliteBootReferences } from "./_sqlite_boot_refs.ts";
import { SqliteVms } from "./_sqlite_vms.ts";
import { WalCheckpointer } from "./_wal_checkpointer.ts";
import { WalSync } from "./_wal_sync.ts";
import type {
  AuditPage,
  AuditQuery,
  BootReference,
  Measurement,
  NewSnapshot,
  NewVm,
  SnapshotState,
  Store,
  VerifyOptions,
  VmFilter,
  VmPatch,
  VmRecord,
} from "./store.ts";
import type { VerifyResult } from "./verify.ts";

/** The store's file name inside the state directory. */
export const DB_FILE = "vasp.db";

/** Options of {@link SqliteStore.open}. */
export interface SqliteStoreOptions {
  /** Open without creating, migrating or writing (for `audit verify`). */
  readonly readOnly?: boolean;
  /** Signs checkpoints (the ASP's attestation key); without one, none are made. */
  readonly signer?: Signer;
  /**
   * A counter outside the database that every checkpoint advances and carries (the ASP's
   * `audit.checkpoints`); verification then detects a cut tail and an older copy of the file.
   */
  readonly anchor?: CheckpointAnchor;
  /** Records between checkpoints (default 1000). */
  readonly checkpointEvery?: number;
  /** The clock (default: the system's). */
  readonly now?: () => Date;
  /** Batching of appends. */
  readonly groupCommit?: GroupCommitOptions;
  /**
   * Told when a checkpoint made in the background fails (the appends it followed are still
   * durable). Default: logs to stderr.
   */
  readonly onCheckpointError?: (error: unknown) => void;
}

/** {@link Store} on a SQLite file. */
export class SqliteStore implements Store {
  #db: DatabaseSync | null;
  readonly #path: string;
  readonly #vms: SqliteVms;
  readonly #snapshots: SqliteSnapshots;
  readonly #bootRefs: SqliteBootReferences;
  readonly #audit: SqliteAuditLog;
  readonly #wal: WalSync;
  readonly #checkpointer: WalCheckpointer | null;
  #closing: Promise<void> | null = null;
  readonly #onCheckpointError: (error: unknown) => void;

  private constructor(db: DatabaseSync, path: string, options: SqliteStoreOptions) {
    this.#db = db;
    this.#path = path;
    const fileBacked = !options.readOnly && path !== "" && path !== ":memory:";
    this.#wal = new WalSync(fileBacked ? path : "");
    const sync = () => this.#wal.sync();
    const now = options.now ?? (() => new Date());
    const open = () => this.#open();
    const checkpointEvery = options.checkpointEvery ?? 1000;
    if (!Number.isInteger(checkpointEvery) || checkpointEvery < 1) {
      throw new RangeError(`checkpointEvery must be a positive integer, got ${checkpointEvery}`);
    }
    this.#vms = new SqliteVms(open, now);
    this.#snapshots = new SqliteSnapshots(open, now);
    this.#bootRefs = new SqliteBootReferences(open);
    this.#onCheckpointError = options.onCheckpointError ??
      ((error) => console.error(`vasp: audit checkpoint failed: ${errorMessage(error)}`));
    this.#audit = new SqliteAuditLog(open, {
      signer: options.signer,
      anchor: options.anchor,
      checkpointEvery,
      now,
      groupCommit: options.groupCommit,
      onCheckpointError: this.#onCheckpointError,
      sync,
    });
    this.#checkpointer = fileBacked
      ? new WalCheckpointer(db, { path, log: (message) => console.error(message) })
      : null;
  }

  /**
   * Opens (creating and migrating if needed) the store in a file.
   *
   * @param path the database file
   * @param options signer, checkpoint interval, clock, batching, read-only
   * @returns the open store
   * @throws {VaspError} `store_corrupt`, `store_schema_too_new`, `store_schema_too_old`,
   *   `store_open_failed`
   * @throws {RangeError} for a `checkpointEvery` that is not a positive integer
   * @example
   * ```ts
   * import { SqliteStore } from "./sqlite_store.ts";
   * await using store = SqliteStore.open(":memory:");
   * await store.registerVm({ uuid: "u-1", name: "web-1", tenant: "t", state: "defined" });
   * ```
   */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    const nowMs = (options.now?.() ?? new Date()).getTime();
    const db = openDatabase(path, { readOnly: options.readOnly, nowMs });
    try {
      return new SqliteStore(db, path, options);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  /**
   * Opens the store of a state directory (`DIR/vasp.db`), creating the directory (mode 0700)
   * unless read-only.
   *
   * @param stateDir the state directory
   * @param options as for {@link SqliteStore.open}
   * @returns the open store
   * @throws {VaspError} as {@link SqliteStore.open}; `store_not_found` read-only without a file
   */
  static openIn(stateDir: string, options: SqliteStoreOptions = {}): SqliteStore {
    const path = join(stateDir, DB_FILE);
    if (options.readOnly) {
      try {
        Deno.statSync(path);
      } catch (cause) {
        throw new VaspError("store_not_found", `No store at "${path}"`, {
          cause,
          details: { path },
        });
      }
    } else {
      mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    }
    return SqliteStore.open(path, options);
  }

  /** The database file. */
  get path(): string {
    return this.#path;
  }

  #open(): DatabaseSync {
    if (!this.#db) throw new VaspError("store_closed", `The store "${this.#path}" is closed`);
    return this.#db;
  }

  #live(): void {
    if (this.#closing) throw new VaspError("store_closed", `The store "${this.#path}" is closed`);
  }

  /** Runs a write, then waits until it is durable. */
  #write<T>(operation: () => T): Promise<T> {
    return this.#async(async () => {
      const result = operation();
      await this.#wal.sync();
      return result;
    });
  }

  /** Runs a synchronous operation as a promise, so its errors become rejections. */
  #async<T>(operation: () => T | Promise<T>): Promise<T> {
    try {
      this.#live();
      return Promise.resolve(operation());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** {@inheritDoc Store.registerVm} */
  registerVm(vm: NewVm): Promise<VmRecord> {
    return this.#write(() => this.#vms.register(vm));
  }

  /** {@inheritDoc Store.getVm} */
  getVm(uuid: string): Promise<VmRecord | undefined> {
    return this.#async(() => this.#vms.get(uuid));
  }

  /** {@inheritDoc Store.listVms} */
  listVms(filter?: VmFilter): Promise<VmRecord[]> {
    return this.#async(() => this.#vms.list(filter));
  }

  /** {@inheritDoc Store.updateVm} */
  updateVm(uuid: string, patch: VmPatch, options: { ifState?: string } = {}): Promise<VmRecord> {
    return this.#write(() => this.#vms.update(uuid, patch, options.ifState));
  }

  /** {@inheritDoc Store.removeVm} */
  removeVm(uuid: string): Promise<void> {
    return this.#write(() => this.#vms.remove(uuid));
  }

  /** {@inheritDoc Store.recordMeasurements} */
  recordMeasurements(uuid: string, measurements: readonly Measurement[]): Promise<void> {
    return this.#write(() => this.#vms.recordMeasurements(uuid, measurements));
  }

  /** {@inheritDoc Store.latestMeasurements} */
  latestMeasurements(uuid: string): Promise<Measurement[]> {
    return this.#async(() => this.#vms.latestMeasurements(uuid));
  }

  /** {@inheritDoc Store.keepSnapshot} */
  keepSnapshot(
    uuid: string,
    snapshot: NewSnapshot,
  ): Promise<{ kept: SnapshotState; replaced?: SnapshotState }> {
    return this.#write(() => this.#snapshots.keep(uuid, snapshot));
  }

  /** {@inheritDoc Store.listSnapshots} */
  listSnapshots(uuid: string): Promise<SnapshotState[]> {
    return this.#async(() => this.#snapshots.list(uuid));
  }

  /** {@inheritDoc Store.setBootReferences} */
  setBootReferences(
    uuid: string,
    references: readonly BootReference[],
  ): Promise<BootReference[]> {
    return this.#write(() => this.#bootRefs.set(uuid, references));
  }

  /** {@inheritDoc Store.getBootReferences} */
  getBootReferences(uuid: string): Promise<BootReference[]> {
    return this.#async(() => this.#bootRefs.get(uuid));
  }

  /** {@inheritDoc Store.dropSnapshot} */
  dropSnapshot(uuid: string, name: string): Promise<SnapshotState | undefined> {
    return this.#write(() => this.#snapshots.drop(uuid, name));
  }

  /** {@inheritDoc Store.appendAudit} */
  appendAudit(entry: AuditEntry): Promise<AuditRecord> {
    return this.#async(() => this.#audit.append(entry));
  }

  /** {@inheritDoc Store.queryAudit} */
  queryAudit(query?: AuditQuery): Promise<AuditPage> {
    return this.#async(() => this.#audit.query(query));
  }

  /** {@inheritDoc Store.verifyAudit} */
  verifyAudit(options?: VerifyOptions): Promise<VerifyResult> {
    return this.#async(() => this.#audit.verify(options));
  }

  /** {@inheritDoc Store.checkpoint} */
  async checkpoint(): Promise<Checkpoint | undefined> {
    this.#live();
    await this.#audit.drain();
    return await this.#audit.checkpoint();
  }

  /** {@inheritDoc Store.close} */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        await this.#audit.drain();
        if (this.#db?.isOpen) await this.#audit.checkpoint();
      } catch (error) {
        // The records are durable; only the shutdown checkpoint is missing.
        this.#onCheckpointError(error);
      } finally {
        await this.#wal.close();
        await this.#checkpointer?.close();
        this.#closeNow();
      }
    })();
    return this.#closing;
  }

  #closeNow(): void {
    const db = this.#db;
    this.#db = null;
    if (db?.isOpen) db.close();
  }

  /** Same as {@link SqliteStore.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Closes at once: appends not yet committed are rejected with `store_closed`, and no
   * shutdown checkpoint is written. Prefer `await using` or {@link SqliteStore.close}.
   */
  [Symbol.dispose](): void {
    this.#closing ??= Promise.resolve();
    this.#wal.closeNow();
    this.#checkpointer?.terminate();
    this.#closeNow();
  }
}
