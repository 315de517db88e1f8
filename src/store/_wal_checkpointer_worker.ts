/// <reference lib="deno.worker" />
/**
 * Worker half of {@link WalCheckpointer}: its own connection to the database, copying the
 * write-ahead log into the database file at an interval, off the event loop of the server.
 *
 * Messages in: `{ path, intervalMs }` to start, `"close"` to stop. Messages out:
 * `{ error }` when a checkpoint failed, `"closed"` once the connection is closed.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { errorMessage } from "../engine/error.ts";

let db: DatabaseSync | undefined;
let timer: ReturnType<typeof setInterval> | undefined;

function checkpoint(): void {
  try {
    // PASSIVE never waits for, nor blocks, the server's writer: it copies what it can.
    db!.exec("PRAGMA wal_checkpoint(PASSIVE)");
  } catch (error) {
    self.postMessage({ error: errorMessage(error) });
  }
}

self.onmessage = (event: MessageEvent) => {
  if (event.data === "close") {
    clearInterval(timer);
    db?.close();
    db = undefined;
    self.postMessage("closed");
    return;
  }
  const { path, intervalMs } = event.data as { path: string; intervalMs: number };
  try {
    db = new DatabaseSync(path);
    db.exec("PRAGMA busy_timeout = 5000");
    timer = setInterval(checkpoint, intervalMs);
  } catch (error) {
    self.postMessage({ error: errorMessage(error) });
  }
};
