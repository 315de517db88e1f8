/**
 * Helpers for the store's tests: entries, temporary stores, a Web Crypto signer, and direct
 * SQL on a closed store's file (the way someone with the file would tamper with it).
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import type { AuditEntry } from "./audit.ts";
import { digestInput } from "./canonical_json.ts";
import { checkpointMessage, ecdsaP256Signer, keyId, type Signer } from "./checkpoint.ts";
import { DB_FILE, SqliteStore, type SqliteStoreOptions } from "./sqlite_store.ts";

/** An audit entry numbered `i`, with `overrides` applied. */
export function entry(i: number, overrides: Partial<AuditEntry> = {}): AuditEntry {
  return {
    decisionId: `dec-${i}`,
    time: new Date(Date.UTC(2025, 0, 1, 0, 0, i)),
    vm: { uuid: `vm-${i % 3}`, name: `web-${i % 3}` },
    operation: i % 2 ? "start" : "pause",
    source: "api",
    inputDigest: digestInput({ i }),
    policyRevision: "rev-1",
    result: i % 5 === 0 ? "deny" : "allow",
    reasons: i % 5 === 0 ? [{ policy: "p", rule: "r", message: `no ${i}` }] : [],
    actions: i % 5 === 0 ? ["alert"] : [],
    engineLatencyUs: 10 + i,
    ...overrides,
  };
}

/** A fresh ECDSA P-256 key pair and a signer on it. */
export async function keyPair(): Promise<{ pair: CryptoKeyPair; signer: Signer }> {
  const pair = await crypto.subtle.generateKey(
    { name: "ECDSA", namedCurve: "P-256" },
    false,
    ["sign", "verify"],
  );
  return { pair, signer: await ecdsaP256Signer(pair) };
}

/** A temporary state directory, removed by `[Symbol.dispose]`. */
export function tempDir(): { path: string; db: string } & Disposable {
  const path = Deno.makeTempDirSync({ prefix: "vasp-store-" });
  return {
    path,
    db: join(path, DB_FILE),
    [Symbol.dispose]: () => Deno.removeSync(path, { recursive: true }),
  };
}

/** Opens the store in `dir` and appends entries 1..n. */
export async function storeWith(
  dir: string,
  n: number,
  options: SqliteStoreOptions = {},
): Promise<SqliteStore> {
  const store = SqliteStore.openIn(dir, options);
  for (let i = 1; i <= n; i++) await store.appendAudit(entry(i));
  return store;
}

/** Runs SQL straight on a database file, with the append-only triggers dropped first. */
export function tamper(path: string, sql: string): void {
  const db = new DatabaseSync(path);
  try {
    db.exec("DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;");
    db.exec(sql);
  } finally {
    db.close();
  }
}

/**
 * Re-signs every checkpoint in a closed store's file with `signer` and records its key, as
 * someone who rewrote the log with a key of their own would.
 */
export async function resignCheckpoints(path: string, signer: Signer): Promise<void> {
  const db = new DatabaseSync(path);
  try {
    const id = keyId(signer.publicKeyInfo);
    db.prepare("INSERT OR IGNORE INTO audit_signers VALUES (?, ?, '[]')")
      .run(id, signer.publicKeyInfo);
    const rows = db.prepare("SELECT seq, head_hash, time_ms, counter FROM audit_checkpoints")
      .all();
    for (const row of rows) {
      const message = checkpointMessage({
        seq: Number(row.seq),
        headHash: String(row.head_hash),
        time: new Date(Number(row.time_ms)),
        counter: row.counter === null ? undefined : Number(row.counter),
      });
      db.prepare("UPDATE audit_checkpoints SET signature = ?, key_id = ? WHERE seq = ?")
        .run(await signer.sign(message), id, Number(row.seq));
    }
  } finally {
    db.close();
  }
}
