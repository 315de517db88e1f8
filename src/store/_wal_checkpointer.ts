/**
 * SQLite's WAL checkpoints in a worker thread.
 *
 * A checkpoint copies the log into the database file and syncs both; left to SQLite, it runs
 * inside whichever COMMIT crosses 1000 log pages, on the server's event loop, stalling every
 * request for milliseconds several times a second under load. Here the server's connection
 * never checkpoints (`wal_autocheckpoint=0`) and a worker with its own connection runs a
 * PASSIVE checkpoint at an interval, which neither waits for nor blocks the writer. Once a
 * checkpoint has copied everything, the writer restarts the log from its beginning, so the log
 * stays small and its fsyncs overwrite blocks instead of growing the file. If the worker
 * fails, the server's connection takes checkpoints back (`wal_autocheckpoint=1000`).
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { BUNDLED, PROJECT_ROOT } from "../paths.ts";

/** How often the worker checkpoints, by default. */
const INTERVAL_MS = 100;
/** The worker's module: beside the bundle (tools/bundle.ts) when bundled, else the source. */
const WORKER = BUNDLED
  ? new URL("dist/wal_checkpointer_worker.js", `file://${PROJECT_ROOT}`)
  : new URL("./_wal_checkpointer_worker.ts", import.meta.url);
/** How long close waits for the worker to close its connection. */
const CLOSE_TIMEOUT_MS = 5000;

/** The checkpointing worker of one database. */
export class WalCheckpointer {
  readonly #worker: Worker;
  readonly #db: DatabaseSync;
  readonly #log: (message: string) => void;
  #closed: Promise<void> | null = null;

  /**
   * Starts the worker and hands it the checkpoints of `db`.
   *
   * @param db the server's open connection (file-backed, WAL)
   * @param options `path` of the database file; `log` for a failed checkpoint; `intervalMs`
   */
  constructor(
    db: DatabaseSync,
    options: { path: string; log: (message: string) => void; intervalMs?: number },
  ) {
    this.#db = db;
    this.#log = options.log;
    this.#worker = new Worker(WORKER, { type: "module" });
    this.#worker.onmessage = (event: MessageEvent) => {
      if (event.data?.error) this.#fallBack(`${event.data.error}`);
    };
    this.#worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.#fallBack(event.message);
    };
    db.exec("PRAGMA wal_autocheckpoint = 0");
    this.#worker.postMessage({ path: options.path, intervalMs: options.intervalMs ?? INTERVAL_MS });
  }

  #fallBack(why: string): void {
    this.#log(`vasp: WAL checkpoint in the worker failed (${why}); checkpointing inline`);
    if (this.#db.isOpen) this.#db.exec("PRAGMA wal_autocheckpoint = 1000");
  }

  /** Stops the worker after it closed its connection (or after a timeout). Idempotent. */
  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#worker.terminate();
        resolve();
      };
      const timer = setTimeout(done, CLOSE_TIMEOUT_MS);
      this.#worker.onmessage = (event: MessageEvent) => {
        if (event.data === "closed") done();
      };
      this.#worker.postMessage("close");
    });
    return this.#closed;
  }

  /** Stops the worker at once, dropping its connection with the thread. */
  terminate(): void {
    this.#closed ??= Promise.resolve();
    this.#worker.terminate();
  }
}
