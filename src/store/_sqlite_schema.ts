/**
 * Opening a SQLite store file: durability settings, the schema and its migrations, and clear
 * errors for a file that is corrupt, foreign or from a newer vASP.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { errorMessage, VaspError } from "../engine/error.ts";

/**
 * Schema migrations; entry i takes the schema from version i to i + 1. Append only: a
 * released migration never changes.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE vms (
     uuid TEXT PRIMARY KEY NOT NULL,
     name TEXT NOT NULL,
     tenant TEXT NOT NULL,
     labels TEXT NOT NULL,
     state TEXT NOT NULL,
     instance_id TEXT,
     config_digest TEXT,
     sealed_state BLOB,
     sealed_counter INTEGER,
     created_ms INTEGER NOT NULL,
     updated_ms INTEGER NOT NULL
   );
   CREATE INDEX vms_by_tenant ON vms (tenant, name);
   CREATE TABLE measurements (
     vm_uuid TEXT NOT NULL REFERENCES vms (uuid) ON DELETE CASCADE,
     region TEXT NOT NULL,
     digest TEXT NOT NULL,
     reference TEXT,
     status TEXT NOT NULL,
     time_ms INTEGER NOT NULL,
     PRIMARY KEY (vm_uuid, region)
   ) WITHOUT ROWID;
   CREATE TABLE audit (
     seq INTEGER PRIMARY KEY,
     decision_id TEXT NOT NULL UNIQUE,
     time_ms INTEGER NOT NULL,
     vm_uuid TEXT NOT NULL,
     vm_name TEXT NOT NULL,
     operation TEXT NOT NULL,
     source TEXT NOT NULL,
     input_digest TEXT NOT NULL,
     policy_revision TEXT NOT NULL,
     result TEXT NOT NULL,
     reasons TEXT NOT NULL,
     actions TEXT NOT NULL,
     engine_latency_us INTEGER NOT NULL,
     prev_hash TEXT NOT NULL,
     hash TEXT NOT NULL
   );
   CREATE INDEX audit_by_vm ON audit (vm_uuid, seq);
   CREATE INDEX audit_by_time ON audit (time_ms);
   -- Guards against our own bugs, not against someone with the file: the hash chain does that.
   CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
     BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
   CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
     BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
   CREATE TABLE audit_checkpoints (
     seq INTEGER PRIMARY KEY,
     head_hash TEXT NOT NULL,
     time_ms INTEGER NOT NULL,
     key_id TEXT NOT NULL,
     signature BLOB NOT NULL
   );
   CREATE TABLE audit_signers (
     key_id TEXT PRIMARY KEY NOT NULL,
     spki BLOB NOT NULL,
     chain TEXT NOT NULL
   );`,
  // How the monitor measures a VM, and why a region's measurement failed or differs.
  `ALTER TABLE vms ADD COLUMN introspection TEXT;
   ALTER TABLE measurements ADD COLUMN detail TEXT;`,
  // One sealed vASP state per internal snapshot of a VM, by the snapshot's name.
  `CREATE TABLE snapshots (
     vm_uuid TEXT NOT NULL REFERENCES vms (uuid) ON DELETE CASCADE,
     name TEXT NOT NULL,
     instance_id TEXT NOT NULL,
     sealed_state BLOB NOT NULL,
     sealed_counter INTEGER NOT NULL,
     created_ms INTEGER NOT NULL,
     PRIMARY KEY (vm_uuid, name)
   );`,
  // The ASP counter value each checkpoint took (docs/audit.md, "The anchor").
  `ALTER TABLE audit_checkpoints ADD COLUMN counter INTEGER;`,
  // Boot references per VM: the digest each boot component (firmware, kernel, initrd, command
  // line, NVRAM template, each disk) must have for a start to be allowed.
  `CREATE TABLE boot_references (
     vm_uuid TEXT NOT NULL REFERENCES vms (uuid) ON DELETE CASCADE,
     name TEXT NOT NULL,
     path TEXT NOT NULL,
     digest TEXT NOT NULL,
     PRIMARY KEY (vm_uuid, name)
   ) WITHOUT ROWID;`,
];

/** The schema version this code writes. */
export const SCHEMA_VERSION: number = MIGRATIONS.length;

/**
 * Opens (creating if needed) and migrates a store file.
 *
 * Durability: WAL with `synchronous=NORMAL`; the store awaits an fsync of the WAL (WalSync)
 * after each COMMIT before it reports a write done, so what it reported survives a power cut.
 * `busy_timeout` lets another process (an `audit verify`) hold the file briefly.
 *
 * @param path the database file
 * @param options `readOnly` opens without creating or migrating; `nowMs` stamps migrations
 * @returns the open database
 * @throws {VaspError} `store_corrupt` for a file that is not a sound SQLite database,
 *   `store_schema_too_new` / `store_schema_too_old` for a schema this code cannot use,
 *   `store_open_failed` for anything else (missing directory, permissions …)
 */
export function openDatabase(
  path: string,
  options: { readOnly?: boolean; nowMs: number },
): DatabaseSync {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path, { readOnly: options.readOnly ?? false });
    db.exec("PRAGMA busy_timeout = 5000");
    if (!options.readOnly) db.exec("PRAGMA journal_mode = WAL");
    // NORMAL: a COMMIT does not wait for the disk; the store makes it durable with WalSync
    // before anything that depends on it is answered (see _wal_sync.ts).
    db.exec("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON");
    migrate(db, path, options);
    return db;
  } catch (cause) {
    try {
      db?.close();
    } catch { /* the open error is the one worth reporting */ }
    if (cause instanceof VaspError) throw cause;
    const message = errorMessage(cause);
    const corrupt = /not a database|malformed|corrupt/i.test(message);
    throw new VaspError(
      corrupt ? "store_corrupt" : "store_open_failed",
      `Cannot open the store "${path}": ${message}`,
      { cause, details: { path } },
    );
  }
}

function migrate(db: DatabaseSync, path: string, options: { readOnly?: boolean; nowMs: number }) {
  const current = () =>
    Number(
      (db.prepare(
        "SELECT max(version) AS v FROM schema_version",
      ).get() as { v: number | null }).v ?? 0,
    );
  const hasTable = () =>
    db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'")
      .get() !== undefined;
  const tooNew = (version: number) =>
    new VaspError(
      "store_schema_too_new",
      `Cannot open the store "${path}": its schema version ${version} is newer than this vASP ` +
        `understands (${SCHEMA_VERSION}); upgrade vASP`,
      { details: { path, version, supported: SCHEMA_VERSION } },
    );
  if (options.readOnly) {
    const version = hasTable() ? current() : 0;
    if (version > SCHEMA_VERSION) throw tooNew(version);
    if (version < SCHEMA_VERSION) {
      throw new VaspError(
        "store_schema_too_old",
        `Cannot open the store "${path}" read-only: its schema version ${version} is older ` +
          `than ${SCHEMA_VERSION}; open it once read-write (vasp serve) to migrate it`,
        { details: { path, version, supported: SCHEMA_VERSION } },
      );
    }
    return;
  }
  // IMMEDIATE: two processes opening a new file must not both migrate it.
  db.exec("BEGIN IMMEDIATE");
  try {
    db.exec(
      "CREATE TABLE IF NOT EXISTS schema_version " +
        "(version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)",
    );
    const version = current();
    if (version > SCHEMA_VERSION) throw tooNew(version);
    const record = db.prepare("INSERT INTO schema_version (version, applied_ms) VALUES (?, ?)");
    for (let v = version; v < SCHEMA_VERSION; v++) {
      db.exec(MIGRATIONS[v]);
      record.run(v + 1, options.nowMs);
    }
    db.exec("COMMIT");
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error;
  }
}
