/**
 * Small files of the state directory that hold secrets (tokens, peers): written whole, mode
 * 0600, by renaming a temporary file over the old one, so that a reader sees the old file or
 * the new one and never a part.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { type ErrorCode, VaspError } from "../engine/error.ts";

/**
 * Writes a file whole, mode 0600, by renaming a temporary file over it.
 *
 * @param path the file
 * @param text its new content
 * @param failure the error code and the file's name for the error (`token file`)
 * @throws {VaspError} `failure.code` naming the file and the cause
 */
export function writePrivateFile(
  path: string,
  text: string,
  failure: { code: ErrorCode; name: string },
): void {
  const temp = join(dirname(path), `.${crypto.randomUUID()}.tmp`);
  try {
    Deno.writeTextFileSync(temp, text, { mode: 0o600, createNew: true });
    Deno.chmodSync(temp, 0o600); // the umask may have taken bits away, never added: be exact
    Deno.renameSync(temp, path);
  } catch (cause) {
    try {
      Deno.removeSync(temp);
    } catch { /* never created: the write error is the one to report */ }
    throw new VaspError(failure.code, `Cannot write the ${failure.name} "${path}": ${cause}`, {
      cause,
      details: { path },
    });
  }
}
