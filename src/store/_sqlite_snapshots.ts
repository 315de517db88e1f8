/**
 * The sealed vASP states of VMs' internal snapshots in SQLite, one per (VM, snapshot name).
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { errorMessage, VaspError } from "../engine/error.ts";
import { decodeSnapshot } from "./_sqlite_rows.ts";
import type { NewSnapshot, SnapshotState } from "./store.ts";

function checkSnapshot(snapshot: NewSnapshot): NewSnapshot {
  const { name, instanceId, sealedState, sealedCounter } = snapshot ?? {};
  if (typeof name !== "string" || name === "") {
    throw new TypeError(`Snapshot name must be a non-empty string, got ${name}`);
  }
  if (typeof instanceId !== "string" || instanceId === "") {
    throw new TypeError(`Snapshot "${name}" instanceId must be a non-empty string`);
  }
  if (!(sealedState instanceof Uint8Array) || sealedState.byteLength === 0) {
    throw new TypeError(`Snapshot "${name}" sealedState must be non-empty bytes`);
  }
  if (!Number.isSafeInteger(sealedCounter) || sealedCounter < 0) {
    throw new TypeError(
      `Snapshot "${name}" sealedCounter must be an integer ≥ 0, got ${sealedCounter}`,
    );
  }
  return snapshot;
}

/** Snapshots' sealed states of one SQLite connection (not cached: read at start and revert). */
export class SqliteSnapshots {
  readonly #db: () => DatabaseSync;
  readonly #now: () => Date;

  /**
   * @param db the open connection (throws once the store is closed)
   * @param now the clock
   */
  constructor(db: () => DatabaseSync, now: () => Date) {
    this.#db = db;
    this.#now = now;
  }

  #decode(uuid: string, row: Record<string, unknown>): SnapshotState {
    try {
      return decodeSnapshot(row);
    } catch (cause) {
      throw new VaspError(
        "store_record_malformed",
        `Cannot read snapshot "${String(row.name)}" of VM ${uuid}: ${errorMessage(cause)}`,
        { cause },
      );
    }
  }

  #read(uuid: string, name: string): SnapshotState | undefined {
    const row = this.#db().prepare("SELECT * FROM snapshots WHERE vm_uuid = ? AND name = ?")
      .get(uuid, name);
    return row ? this.#decode(uuid, row) : undefined;
  }

  /** Inserts or replaces a snapshot; returns it as stored, and the one replaced. */
  keep(uuid: string, snapshot: NewSnapshot): { kept: SnapshotState; replaced?: SnapshotState } {
    const s = checkSnapshot(snapshot);
    const db = this.#db();
    db.exec("BEGIN IMMEDIATE");
    try {
      if (!db.prepare("SELECT 1 FROM vms WHERE uuid = ?").get(uuid)) {
        throw new VaspError("vm_not_found", `No VM with UUID ${uuid}`, { details: { uuid } });
      }
      const replaced = this.#read(uuid, s.name);
      db.prepare(
        "INSERT INTO snapshots (vm_uuid, name, instance_id, sealed_state, sealed_counter, " +
          "created_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (vm_uuid, name) DO UPDATE SET " +
          "instance_id = excluded.instance_id, sealed_state = excluded.sealed_state, " +
          "sealed_counter = excluded.sealed_counter, created_ms = excluded.created_ms",
      ).run(uuid, s.name, s.instanceId, s.sealedState, s.sealedCounter, this.#now().getTime());
      const kept = this.#read(uuid, s.name)!;
      db.exec("COMMIT");
      return replaced ? { kept, replaced } : { kept };
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
  }

  /** A VM's snapshots, by name. */
  list(uuid: string): SnapshotState[] {
    return this.#db().prepare("SELECT * FROM snapshots WHERE vm_uuid = ? ORDER BY name")
      .all(uuid).map((row) => this.#decode(uuid, row));
  }

  /** Deletes a snapshot; returns the one deleted. */
  drop(uuid: string, name: string): SnapshotState | undefined {
    const db = this.#db();
    db.exec("BEGIN IMMEDIATE");
    try {
      const dropped = this.#read(uuid, name);
      db.prepare("DELETE FROM snapshots WHERE vm_uuid = ? AND name = ?").run(uuid, name);
      db.exec("COMMIT");
      return dropped;
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
  }
}
