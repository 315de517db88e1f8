/**
 * VM records and their latest measurements in SQLite.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { errorMessage, VaspError } from "../engine/error.ts";
import { introspectionColumn } from "./_introspection.ts";
import { decodeMeasurement, decodeVm } from "./_sqlite_rows.ts";
import type { Measurement, NewVm, VaspBinding, VmFilter, VmPatch, VmRecord } from "./store.ts";

function requireString(value: unknown, what: string, allowEmpty = false): string {
  if (typeof value !== "string" || (!allowEmpty && value === "")) {
    throw new TypeError(`${what} must be a ${allowEmpty ? "" : "non-empty "}string, got ${value}`);
  }
  return value;
}

function checkLabels(labels: unknown): Record<string, string> {
  if (
    typeof labels !== "object" || labels === null || Array.isArray(labels) ||
    !Object.values(labels).every((v) => typeof v === "string")
  ) {
    throw new TypeError(`VM labels must be an object of strings, got ${JSON.stringify(labels)}`);
  }
  return labels as Record<string, string>;
}

function bindingColumns(binding: VaspBinding | null | undefined): unknown[] {
  if (!binding) return [null, null, null, null];
  const counter = binding.sealedCounter;
  if (!Number.isSafeInteger(counter) || counter < 0) {
    throw new TypeError(`vASP sealedCounter must be an integer ≥ 0, got ${counter}`);
  }
  if (binding.sealedState !== null && !(binding.sealedState instanceof Uint8Array)) {
    throw new TypeError("vASP sealedState must be bytes or null");
  }
  return [
    requireString(binding.instanceId, "vASP instanceId"),
    requireString(binding.configDigest, "vASP configDigest"),
    binding.sealedState,
    counter,
  ];
}

/**
 * VM records of one SQLite connection. Every decision reads its VM and measurements, so both
 * are cached: this connection is the only writer of these tables (one server owns a state
 * directory: the ASP's lock guarantees it), and each cache entry is replaced or dropped by
 * the write that changes it, after its COMMIT.
 */
export class SqliteVms {
  readonly #db: () => DatabaseSync;
  readonly #now: () => Date;
  /** Statements of the per-decision reads, prepared once: preparing costs more than running. */
  readonly #statements = new Map<string, StatementSync>();
  // Only registered VMs are cached, so unknown UUIDs a client sends cannot grow the caches.
  readonly #vms = new Map<string, VmRecord>();
  readonly #measurements = new Map<string, Measurement[]>();

  /**
   * @param db the open connection (throws once the store is closed)
   * @param now the clock
   */
  constructor(db: () => DatabaseSync, now: () => Date) {
    this.#db = db;
    this.#now = now;
  }

  #prepared(sql: string): StatementSync {
    const db = this.#db(); // throws once the store is closed, cached statement or not
    let statement = this.#statements.get(sql);
    if (!statement) this.#statements.set(sql, statement = db.prepare(sql));
    return statement;
  }

  /** The VM as stored now, bypassing the cache (inside write transactions). */
  #read(uuid: string): VmRecord | undefined {
    const row = this.#prepared("SELECT * FROM vms WHERE uuid = ?").get(uuid);
    return row ? this.#decode(row) : undefined;
  }

  /** The VM, from the cache or the database. */
  #cached(uuid: string): VmRecord | undefined {
    let vm = this.#vms.get(uuid);
    if (!vm && (vm = this.#read(uuid))) this.#vms.set(uuid, vm);
    return vm;
  }

  #decode(row: Record<string, unknown>): VmRecord {
    try {
      return decodeVm(row);
    } catch (cause) {
      throw new VaspError(
        "store_record_malformed",
        `Cannot read VM ${String(row.uuid)}: ${errorMessage(cause)}`,
        { cause },
      );
    }
  }

  /** Inserts a VM; `vm_exists` if its UUID is taken. */
  register(vm: NewVm): VmRecord {
    const uuid = requireString(vm?.uuid, "VM uuid");
    const columns = [
      uuid,
      requireString(vm.name, "VM name"),
      requireString(vm.tenant, "VM tenant", true),
      JSON.stringify(checkLabels(vm.labels ?? {})),
      requireString(vm.state, "VM state"),
      ...bindingColumns(vm.binding),
    ];
    const ms = this.#now().getTime();
    const result = this.#db().prepare(
      "INSERT INTO vms (uuid, name, tenant, labels, state, instance_id, config_digest, " +
        "sealed_state, sealed_counter, created_ms, updated_ms, introspection) " +
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (uuid) DO NOTHING",
    ).run(
      ...columns as (string | number | null | Uint8Array)[],
      ms,
      ms,
      introspectionColumn(vm.introspection),
    );
    if (result.changes === 0) {
      throw new VaspError(
        "vm_exists",
        `Cannot register VM "${vm.name}": UUID ${uuid} is already registered`,
        { details: { uuid } },
      );
    }
    const registered = this.#read(uuid)!;
    this.#vms.set(uuid, registered);
    return registered;
  }

  /** The VM, or `undefined`. */
  get(uuid: string): VmRecord | undefined {
    return this.#cached(requireString(uuid, "VM uuid"));
  }

  /** VMs matching the filter. */
  list(filter: VmFilter = {}): VmRecord[] {
    return this.#db().prepare(
      "SELECT * FROM vms WHERE (?1 IS NULL OR tenant = ?1) AND (?2 IS NULL OR state = ?2) " +
        "ORDER BY name, uuid",
    ).all(filter.tenant ?? null, filter.state ?? null).map((row) => this.#decode(row));
  }

  /** Applies a patch, compare-and-set on `ifState`. */
  update(uuid: string, patch: VmPatch, ifState?: string): VmRecord {
    const db = this.#db();
    db.exec("BEGIN IMMEDIATE");
    try {
      const current = this.#read(requireString(uuid, "VM uuid"));
      if (!current) throw notFound(uuid);
      if (ifState !== undefined && current.state !== ifState) {
        throw new VaspError(
          "vm_state_conflict",
          `Cannot update VM "${current.name}": its state is "${current.state}", not "${ifState}"`,
          { details: { uuid, state: current.state, expected: ifState } },
        );
      }
      const binding = patch.binding === undefined ? current.binding : patch.binding;
      db.prepare(
        "UPDATE vms SET name = ?, labels = ?, state = ?, instance_id = ?, config_digest = ?, " +
          "sealed_state = ?, sealed_counter = ?, updated_ms = ?, introspection = ? WHERE uuid = ?",
      ).run(
        requireString(patch.name ?? current.name, "VM name"),
        JSON.stringify(checkLabels(patch.labels ?? current.labels)),
        requireString(patch.state ?? current.state, "VM state"),
        ...bindingColumns(binding) as (string | number | null | Uint8Array)[],
        this.#now().getTime(),
        introspectionColumn(
          patch.introspection === undefined ? current.introspection : patch.introspection,
        ),
        uuid,
      );
      const updated = this.#read(uuid)!;
      db.exec("COMMIT");
      this.#vms.set(uuid, updated);
      return updated;
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
  }

  /** Deletes a VM and (by cascade) its measurements. */
  remove(uuid: string): void {
    const result = this.#db().prepare("DELETE FROM vms WHERE uuid = ?")
      .run(requireString(uuid, "VM uuid"));
    this.#vms.delete(uuid);
    this.#measurements.delete(uuid);
    if (result.changes === 0) throw notFound(uuid);
  }

  /** Upserts measurements; an older one never replaces a newer one. */
  recordMeasurements(uuid: string, measurements: readonly Measurement[]): void {
    const db = this.#db();
    db.exec("BEGIN IMMEDIATE");
    try {
      if (!this.#read(requireString(uuid, "VM uuid"))) throw notFound(uuid);
      const upsert = db.prepare(
        "INSERT INTO measurements (vm_uuid, region, digest, reference, status, time_ms, detail) " +
          "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (vm_uuid, region) DO UPDATE SET " +
          "digest = excluded.digest, reference = excluded.reference, status = excluded.status, " +
          "time_ms = excluded.time_ms, detail = excluded.detail " +
          "WHERE excluded.time_ms >= measurements.time_ms",
      );
      for (const m of measurements) {
        if (!(m.time instanceof Date) || Number.isNaN(m.time.getTime())) {
          throw new TypeError(`Measurement time of region "${m.region}" must be a valid Date`);
        }
        upsert.run(
          uuid,
          requireString(m.region, "Measurement region"),
          requireString(m.digest, "Measurement digest", true),
          m.reference === null ? null : requireString(m.reference, "Measurement reference"),
          requireString(m.status, "Measurement status"),
          m.time.getTime(),
          m.detail ? requireString(m.detail, "Measurement detail") : null,
        );
      }
      db.exec("COMMIT");
      this.#measurements.delete(uuid);
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
  }

  /** The latest measurement per region (a copy: callers may keep it). */
  latestMeasurements(uuid: string): Measurement[] {
    let latest = this.#measurements.get(requireString(uuid, "VM uuid"));
    if (!latest) {
      latest = this.#readMeasurements(uuid);
      if (this.#cached(uuid)) this.#measurements.set(uuid, latest);
    }
    return [...latest];
  }

  #readMeasurements(uuid: string): Measurement[] {
    return this.#prepared("SELECT * FROM measurements WHERE vm_uuid = ? ORDER BY region")
      .all(uuid).map((row) => {
        try {
          return decodeMeasurement(row);
        } catch (cause) {
          throw new VaspError(
            "store_record_malformed",
            `Cannot read measurement "${String(row.region)}" of VM ${uuid}: ` +
              errorMessage(cause),
            { cause },
          );
        }
      });
  }
}

function notFound(uuid: string): VaspError {
  return new VaspError("vm_not_found", `No VM with UUID ${uuid}`, { details: { uuid } });
}
