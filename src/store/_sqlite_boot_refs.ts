/**
 * VMs' boot references in SQLite: one row per (VM, component name).
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { VaspError } from "../engine/error.ts";
import type { BootReference } from "./store.ts";

const NAME = /^(firmware|kernel|initrd|cmdline|nvram|disk:[A-Za-z0-9_.-]{1,64})$/;
const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Checks one reference.
 *
 * @param ref the reference
 * @returns it
 * @throws {TypeError} for an unknown name, a path that is not text, a digest that is not hex
 */
export function checkBootReference(ref: BootReference): BootReference {
  const { name, path, digest } = ref ?? {};
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new TypeError(
      `Boot reference name must be firmware, kernel, initrd, cmdline, nvram or disk:<target>, ` +
        `got ${JSON.stringify(name)}`,
    );
  }
  if (typeof path !== "string" || path.length > 4096 || path.includes("\0")) {
    throw new TypeError(`Boot reference "${name}" path must be text of at most 4096 characters`);
  }
  if (typeof digest !== "string" || !HEX64.test(digest)) {
    throw new TypeError(`Boot reference "${name}" digest must be 64 lower-case hex digits`);
  }
  return { name, path, digest };
}

/** Boot references of one SQLite connection. */
export class SqliteBootReferences {
  readonly #db: () => DatabaseSync;

  /** @param db the open connection (throws once the store is closed) */
  constructor(db: () => DatabaseSync) {
    this.#db = db;
  }

  /** Replaces a VM's references; returns them as stored. */
  set(uuid: string, references: readonly BootReference[]): BootReference[] {
    const refs = references.map(checkBootReference);
    const names = new Set(refs.map((r) => r.name));
    if (names.size !== refs.length) throw new TypeError("Boot reference names must be unique");
    const db = this.#db();
    db.exec("BEGIN IMMEDIATE");
    try {
      if (!db.prepare("SELECT 1 FROM vms WHERE uuid = ?").get(uuid)) {
        throw new VaspError("vm_not_found", `No VM with UUID ${uuid}`, { details: { uuid } });
      }
      db.prepare("DELETE FROM boot_references WHERE vm_uuid = ?").run(uuid);
      const insert = db.prepare(
        "INSERT INTO boot_references (vm_uuid, name, path, digest) VALUES (?, ?, ?, ?)",
      );
      for (const r of refs) insert.run(uuid, r.name, r.path, r.digest);
      db.exec("COMMIT");
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
    return this.get(uuid);
  }

  /** A VM's references, by name. */
  get(uuid: string): BootReference[] {
    return this.#db().prepare(
      "SELECT name, path, digest FROM boot_references WHERE vm_uuid = ? ORDER BY name",
    ).all(uuid).map((row) => ({
      name: String(row.name),
      path: String(row.path),
      digest: String(row.digest),
    }));
  }
}
