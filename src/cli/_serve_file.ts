/**
 * `DIR/serve.json`: where a running `vasp serve` listens, written once it listens and removed
 * when it stops, so that `vasp status` can say so.
 *
 * @module
 */
import { join } from "node:path";

/** The file's name in the state directory. */
export const SERVE_FILE = "serve.json";

/** What the file holds. */
export interface ServeFile {
  /** The server's process ID. */
  readonly pid: number;
  /** When it started listening. */
  readonly started_at: string;
  /** The operator socket (`null`: none). */
  readonly socket: string | null;
  /** The hook socket (`null`: none). */
  readonly hook_socket: string | null;
  /** The TCP address `HOST:PORT` (`null`: none). */
  readonly tcp: string | null;
  /** `text` or `json`. */
  readonly log_format: string;
  /** Host parts the ASP could not measure at start, with why. */
  readonly host_unmeasured?: readonly { part: string; why: string }[];
}

/**
 * Writes the file (mode 0600).
 *
 * @param stateDir the state directory
 * @param facts what to write
 * @returns the file's path
 */
export function writeServeFile(stateDir: string, facts: ServeFile): string {
  const path = join(stateDir, SERVE_FILE);
  Deno.writeTextFileSync(path, JSON.stringify(facts, null, 2) + "\n", { mode: 0o600 });
  return path;
}

/**
 * Reads the file.
 *
 * @param stateDir the state directory
 * @returns its facts, or `null` when absent or unreadable
 */
export function readServeFile(stateDir: string): ServeFile | null {
  try {
    return JSON.parse(Deno.readTextFileSync(join(stateDir, SERVE_FILE))) as ServeFile;
  } catch {
    return null;
  }
}

/**
 * Removes the file.
 *
 * @param stateDir the state directory
 */
export function removeServeFile(stateDir: string): void {
  try {
    Deno.removeSync(join(stateDir, SERVE_FILE));
  } catch { /* already gone */ }
}
