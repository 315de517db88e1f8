/**
 * The audit log in SQLite: group-committed appends, paged queries, checkpoints, verification.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { Buffer } from "node:buffer";
import { errorMessage, VaspError } from "../engine/error.ts";
import {
  type AuditEntry,
  type AuditRecord,
  chainRecord,
  checkEntry,
  GENESIS_HASH,
} from "./audit.ts";
import {
  type Checkpoint,
  type CheckpointAnchor,
  checkpointMessage,
  keyId,
  type Signer,
} from "./checkpoint.ts";
import { GroupCommit, type GroupCommitOptions } from "./group_commit.ts";
import { decodeAudit, decodeCheckpoint } from "./_sqlite_rows.ts";
import type { AuditPage, AuditQuery, VerifyOptions } from "./store.ts";
import { type MalformedRow, verifyChain, type VerifyResult } from "./verify.ts";

/** What the audit log needs from its store. */
export interface AuditLogOptions {
  readonly signer?: Signer;
  /** Advanced by every checkpoint, whose value the checkpoint carries (the ASP's counter). */
  readonly anchor?: CheckpointAnchor;
  readonly checkpointEvery: number;
  readonly now: () => Date;
  readonly groupCommit?: GroupCommitOptions;
  readonly onCheckpointError: (error: unknown) => void;
  /** Resolves once what was committed is on disk (WalSync). */
  readonly sync: () => Promise<void>;
}

const COLUMNS = "seq, decision_id, time_ms, vm_uuid, vm_name, operation, source, input_digest, " +
  "policy_revision, result, reasons, actions, engine_latency_us, prev_hash, hash";

/** The audit log of one SQLite connection. */
export class SqliteAuditLog {
  readonly #db: () => DatabaseSync;
  readonly #options: AuditLogOptions;
  readonly #group: GroupCommit<AuditEntry, AuditRecord>;
  #insert?: StatementSync;
  #selectHead?: StatementSync;
  #head?: { seq: number; hash: string };
  #lastCheckpoint?: number;
  /** Seq of the newest checkpoint asked for in the background (written or not). */
  #requested = 0;
  /** The checkpoint being signed or written; checkpoints are made one at a time, in order. */
  #checkpointing: Promise<Checkpoint | undefined> = Promise.resolve(undefined);

  /**
   * @param db the open connection (throws once the store is closed)
   * @param options signer, checkpoint interval, clock, batching
   */
  constructor(db: () => DatabaseSync, options: AuditLogOptions) {
    this.#db = db;
    this.#options = options;
    this.#group = new GroupCommit((entries) => this.#commit(entries), options.groupCommit);
  }

  /**
   * Appends an entry; resolves once the COMMIT holding it returned and the WAL is synced past
   * it. Commits do not wait for syncs: while one fsync runs, the next batches are written, and
   * the next fsync covers them all.
   */
  append(entry: AuditEntry): Promise<AuditRecord> {
    try {
      return this.#group.submit(checkEntry(entry)).then((record) => this.#durable(record));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async #durable(record: AuditRecord): Promise<AuditRecord> {
    try {
      await this.#options.sync();
    } catch (cause) {
      throw new VaspError(
        "audit_write_failed",
        `Cannot make decision record ${record.seq} (${record.decisionId}) durable: ` +
          errorMessage(cause),
        { cause },
      );
    }
    return record;
  }

  /** Waits for every append submitted so far, then for any checkpoint being made. */
  async drain(): Promise<void> {
    await this.#group.drain();
    await this.#checkpointing.catch(() => {});
  }

  #commit(entries: AuditEntry[]): AuditRecord[] {
    const records = this.#write(entries);
    try {
      this.#maybeCheckpoint();
    } catch (error) {
      // The records are durable; a checkpoint problem must not turn them into failures.
      this.#options.onCheckpointError(error);
    }
    return records;
  }

  #write(entries: AuditEntry[]): AuditRecord[] {
    const db = this.#db();
    try {
      db.exec("BEGIN IMMEDIATE");
      // The head is read inside the transaction, not trusted from memory: another writer on
      // the same file would otherwise fork the chain.
      let { seq, hash } = this.#readHead();
      this.#insert ??= db.prepare(
        `INSERT INTO audit (${COLUMNS}) VALUES (${Array(15).fill("?").join(", ")})`,
      );
      const records = entries.map((entry) => {
        const record = chainRecord(++seq, hash, entry);
        hash = record.hash;
        this.#insert!.run(
          record.seq,
          record.decisionId,
          record.time.getTime(),
          record.vm.uuid,
          record.vm.name,
          record.operation,
          record.source,
          record.inputDigest,
          record.policyRevision,
          record.result,
          // Any JSON will do in the columns: verification re-canonicalises what it reads.
          JSON.stringify(record.reasons),
          JSON.stringify(record.actions),
          record.engineLatencyUs,
          record.prevHash,
          record.hash,
        );
        return record;
      });
      db.exec("COMMIT");
      this.#head = { seq, hash };
      return records;
    } catch (cause) {
      this.#head = undefined;
      try {
        if (db.isOpen && db.isTransaction) db.exec("ROLLBACK");
      } catch { /* SQLite rolled back itself; the commit error is the one to report */ }
      const ids = entries.slice(0, 3).map((e) => e.decisionId).join(", ");
      throw new VaspError(
        "audit_write_failed",
        `Cannot record ${entries.length} decision(s) (${ids}${entries.length > 3 ? ", …" : ""})` +
          `: ${errorMessage(cause)}`,
        { cause },
      );
    }
  }

  #readHead(): { seq: number; hash: string } {
    this.#selectHead ??= this.#db().prepare(
      "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
    );
    const row = this.#selectHead.get() as { seq: number; hash: string } | undefined;
    return row ? { seq: row.seq, hash: row.hash } : { seq: 0, hash: GENESIS_HASH };
  }

  #lastCheckpointSeq(): number {
    this.#lastCheckpoint ??= Number(
      (this.#db().prepare("SELECT max(seq) AS seq FROM audit_checkpoints").get() as {
        seq: number | null;
      }).seq ?? 0,
    );
    return this.#lastCheckpoint;
  }

  #maybeCheckpoint(): void {
    const { signer, checkpointEvery } = this.#options;
    const head = this.#head!;
    const last = Math.max(this.#lastCheckpointSeq(), this.#requested);
    if (!signer || head.seq - last < checkpointEvery) return;
    this.#requested = head.seq;
    this.#checkpointAt(head).catch((error) => {
      this.#requested = this.#lastCheckpointSeq();
      this.#options.onCheckpointError(error);
    });
  }

  /**
   * Signs and writes a checkpoint at the current head, after any checkpoint under way.
   *
   * @returns it, or `undefined` without a signer, on an empty log, or when the head already
   *   has one
   */
  checkpoint(): Promise<Checkpoint | undefined> {
    this.#head ??= this.#readHead();
    return this.#checkpointAt(this.#head);
  }

  /** Queues a checkpoint of `head` behind the one under way: they are written in order. */
  #checkpointAt(head: { seq: number; hash: string }): Promise<Checkpoint | undefined> {
    const next = this.#checkpointing.catch(() => undefined).then(() => this.#writeCheckpoint(head));
    this.#checkpointing = next;
    return next;
  }

  /**
   * Order of an anchored checkpoint: sign with the counter's next value, write and sync the
   * checkpoint, then advance the counter. So the database is never behind the counter unless
   * checkpoints were removed; a crash between the two leaves it one ahead, which the next
   * checkpoint (or the shutdown one) settles before it takes a value of its own.
   */
  async #writeCheckpoint(
    { seq, hash }: { seq: number; hash: string },
  ): Promise<Checkpoint | undefined> {
    const { signer, anchor } = this.#options;
    if (!signer) return undefined;
    let counter: number | undefined;
    try {
      if (anchor) counter = await this.#settleAnchor(anchor) + 1;
    } catch (cause) {
      throw checkpointFailed(seq, cause);
    }
    this.#lastCheckpoint = undefined;
    if (seq === 0 || seq <= this.#lastCheckpointSeq()) return undefined;
    const time = this.#options.now();
    const signature = await signer.sign(checkpointMessage({ seq, headHash: hash, time, counter }));
    if (!(signature instanceof Uint8Array)) {
      throw new TypeError(`The checkpoint signer returned ${typeof signature}, not bytes`);
    }
    const checkpoint: Checkpoint = {
      seq,
      headHash: hash,
      time,
      keyId: keyId(signer.publicKeyInfo),
      signature,
      ...(counter === undefined ? {} : { counter }),
    };
    const db = this.#db();
    db.exec("BEGIN IMMEDIATE");
    try {
      if (counter !== undefined && this.#readNewestCounter() !== counter - 1) {
        throw new Error("the newest checkpoint changed while this one was signed");
      }
      const chain = (signer.certificateChain ?? []).map((c) => Buffer.from(c).toString("base64"));
      db.prepare("INSERT OR IGNORE INTO audit_signers (key_id, spki, chain) VALUES (?, ?, ?)")
        .run(checkpoint.keyId, signer.publicKeyInfo, JSON.stringify(chain));
      db.prepare(
        "INSERT INTO audit_checkpoints (seq, head_hash, time_ms, key_id, signature, counter) " +
          "VALUES (?, ?, ?, ?, ?, ?)",
      ).run(seq, hash, time.getTime(), checkpoint.keyId, signature, counter ?? null);
      db.exec("COMMIT");
      await this.#options.sync();
    } catch (cause) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw checkpointFailed(seq, cause);
    }
    this.#lastCheckpoint = seq;
    if (counter !== undefined) {
      try {
        await this.#settleAnchor(anchor!);
      } catch (cause) {
        // The checkpoint is durable and signed; its counter is advanced by the next one.
        throw checkpointFailed(seq, cause, "its anchor counter could not be advanced");
      }
    }
    return checkpoint;
  }

  /**
   * Advances the anchor up to the newest checkpoint's counter (one written whose advance did
   * not happen: a crash or a failed write between the two). Refuses a log whose newest
   * checkpoint is behind the anchor: signing a new checkpoint over it would hide the cut.
   * The database is read afresh each time, since someone with the file can change it under a
   * running server.
   *
   * @returns the anchor's value, now equal to the newest checkpoint's
   * @throws {Error} when the log is behind its anchor
   */
  async #settleAnchor(anchor: CheckpointAnchor): Promise<number> {
    let value = await anchor.read();
    const newest = this.#readNewestCounter();
    if (newest < value) {
      throw new Error(
        `the newest checkpoint carries counter ${newest}, but the anchor is at ${value}: ` +
          "checkpoints were removed or the database was replaced by an older copy; no " +
          "checkpoint is signed over it (run vasp audit verify)",
      );
    }
    // Checkpoints are made one at a time and each settles the one before: a crash or a failed
    // advance leaves at most one ahead. More is a counter column someone wrote (unsigned until
    // verified), which must not run the ASP's counter up.
    if (newest > value + 1) {
      throw new Error(
        `the newest checkpoint carries counter ${newest}, but the anchor is at ${value}: ` +
          "more than the one checkpoint a crash can leave unanchored; not advancing the anchor " +
          "(run vasp audit verify)",
      );
    }
    if (value < newest) value = await anchor.advance();
    return value;
  }

  #readNewestCounter(): number {
    const row = this.#db().prepare(
      "SELECT counter FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
    ).get() as { counter: number | bigint | null } | undefined;
    return Number(row?.counter ?? 0);
  }

  /** Every checkpoint by seq, or what is malformed about one. */
  #checkpointRows(): (Checkpoint | MalformedRow)[] {
    return this.#db().prepare("SELECT * FROM audit_checkpoints ORDER BY seq").all().map((row) => {
      try {
        return decodeCheckpoint(row);
      } catch (error) {
        return { seq: Number(row.seq), malformed: errorMessage(error) };
      }
    });
  }

  /** Reads a page of records. */
  query(query: AuditQuery = {}): AuditPage {
    const limit = query.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new RangeError(`Audit page size must be an integer from 1 to 1000, got ${limit}`);
    }
    const desc = query.order === "desc";
    const where: string[] = [];
    const params: (string | number)[] = [];
    const add = (clause: string, value: string | number | undefined) => {
      if (value === undefined) return;
      where.push(clause);
      params.push(value);
    };
    add("vm_uuid = ?", query.vmUuid);
    add("result = ?", query.result);
    add("time_ms >= ?", query.from?.getTime());
    add("time_ms < ?", query.to?.getTime());
    add(desc ? "seq < ?" : "seq > ?", query.cursor);
    const statement = this.#db().prepare(
      `SELECT ${COLUMNS} FROM audit ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ` +
        `ORDER BY seq ${desc ? "DESC" : "ASC"} LIMIT ?`,
    );
    statement.setReadBigInts(true);
    const rows = statement.all(...params, limit + 1);
    const records = rows.slice(0, limit).map((row) => {
      const record = decodeAudit(row);
      if ("malformed" in record) throw malformed(`audit record ${record.seq}`, record.malformed);
      return record;
    });
    return { records, nextCursor: rows.length > limit ? records.at(-1)!.seq : null };
  }

  /** Verifies the whole log, against the anchor's counter when there is one. */
  async verify(options: VerifyOptions = {}): Promise<VerifyResult> {
    // The counter is read before the log: a checkpoint made meanwhile can only put the log
    // ahead of it, never behind.
    const anchorCounter = options.anchorCounter ?? await this.#options.anchor?.read();
    const db = this.#db();
    const keys = new Map(
      db.prepare("SELECT key_id, spki FROM audit_signers").all().map((row) => [
        String(row.key_id),
        new Uint8Array(row.spki as Uint8Array),
      ]),
    );
    const statement = db.prepare(`SELECT ${COLUMNS} FROM audit ORDER BY seq`);
    statement.setReadBigInts(true);
    const rows = (function* () {
      for (const row of statement.iterate()) yield decodeAudit(row);
    })();
    return verifyChain(rows, {
      checkpoints: this.#checkpointRows(),
      verifier: options.verifier,
      recordedKeys: keys,
      anchorCounter,
    });
  }
}

function checkpointFailed(seq: number, cause: unknown, what = ""): VaspError {
  return new VaspError(
    "audit_checkpoint_failed",
    `Cannot write the audit checkpoint at record ${seq}${what ? ` (${what})` : ""}: ` +
      errorMessage(cause),
    { cause },
  );
}

function malformed(what: string, error: unknown): VaspError {
  const reason = error instanceof Error ? error.message : String(error);
  return new VaspError("audit_record_malformed", `Cannot read ${what}: ${reason}`, {
    cause: error,
  });
}
