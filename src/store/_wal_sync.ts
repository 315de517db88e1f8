/**
 * Durability of SQLite's write-ahead log, off the event loop.
 *
 * The store runs WAL with `synchronous=NORMAL`: a COMMIT writes its frames to `<db>-wal`
 * without waiting for the disk. A writer then calls {@link WalSync.sync}, which resolves once
 * an `fdatasync` of the WAL file that started after that COMMIT has returned — the same
 * guarantee `synchronous=FULL` gives, but the fsync runs on Deno's blocking-I/O threads, so
 * the event loop keeps serving requests meanwhile, and commits that arrive during one fsync
 * share the next. SQLite still syncs the WAL itself before every checkpoint copies it into the
 * database (that is what `NORMAL` keeps), so the database file never gets ahead of the log.
 *
 * @module
 */
import { dirname } from "node:path";
import { errorMessage } from "../engine/error.ts";

/** Syncs one database's WAL file; shared by every writer of one connection. */
export class WalSync {
  readonly #walPath: string;
  #file: Deno.FsFile | null = null;
  /** Commits asked to be made durable, and how many of them are. */
  #requested = 0;
  #synced = 0;
  #running: Promise<void> | null = null;
  #waiters: { upTo: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  #failure: Error | null = null;

  /**
   * @param dbPath the database file (":memory:" or "" for none: then every sync is a no-op)
   */
  constructor(dbPath: string) {
    this.#walPath = dbPath === "" || dbPath === ":memory:" ? "" : `${dbPath}-wal`;
  }

  /**
   * Resolves once everything committed before the call is on disk.
   *
   * @throws {Error} the fsync's failure; after one, every later call fails too (the store
   *   must not answer as if durable when the disk refused a write)
   */
  sync(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (!this.#walPath) return Promise.resolve();
    const upTo = ++this.#requested;
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#waiters.push({ upTo, resolve, reject });
    this.#running ??= this.#loop();
    return promise;
  }

  /** Syncs until every request made so far is covered. */
  async #loop(): Promise<void> {
    try {
      while (this.#synced < this.#requested) {
        const target = this.#requested;
        await (await this.#open()).syncData();
        this.#synced = target;
        const done = this.#waiters.filter((w) => w.upTo <= target);
        this.#waiters = this.#waiters.filter((w) => w.upTo > target);
        for (const w of done) w.resolve();
      }
    } catch (error) {
      this.#failure = new Error(`Cannot sync "${this.#walPath}": ${errorMessage(error)}`, {
        cause: error,
      });
      for (const w of this.#waiters) w.reject(this.#failure);
      this.#waiters = [];
    } finally {
      this.#running = null;
    }
  }

  /**
   * The WAL file, opened at the first sync. SQLite keeps the same file while any connection
   * is open (it restarts the log in place after a checkpoint, and deletes it only when the
   * last connection closes), and the store's connection stays open as long as this does.
   */
  async #open(): Promise<Deno.FsFile> {
    if (this.#file) return this.#file;
    const file = await Deno.open(this.#walPath, { read: true });
    // The WAL file's directory entry must be durable too.
    using dir = await Deno.open(dirname(this.#walPath), { read: true });
    await dir.sync();
    return this.#file = file;
  }

  /** Waits for a sync under way, then releases the file. */
  async close(): Promise<void> {
    await this.#running;
    this.closeNow();
  }

  /** Releases the file at once; a sync under way fails. */
  closeNow(): void {
    this.#file?.close();
    this.#file = null;
  }
}
