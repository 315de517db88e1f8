/**
 * Reference sets on disk: one JSON file per profile, `<dir>/<profile id>.json`, written
 * atomically (a temporary file in the same folder, then a rename).
 *
 * @module
 */
import { VaspError } from "../engine/error.ts";
import { parseReferenceSet, type ReferenceSet } from "./reference.ts";

const ID = /^[0-9a-f]{32}$/;

/**
 * The file of a profile's reference set.
 *
 * @param dir the references folder (by default `<state dir>/references`)
 * @param id a profile ID
 * @returns the path
 * @throws {RangeError} for an ID that is not 32 hex digits
 */
export function referencePath(dir: string, id: string): string {
  if (!ID.test(id)) throw new RangeError(`Profile ID "${id}" is not 32 lowercase hex digits`);
  return `${dir.replace(/\/+$/, "")}/${id}.json`;
}

/**
 * Stores a reference set, replacing the profile's previous one atomically.
 *
 * @param dir the references folder, created when missing
 * @param set the reference set
 * @returns the file written
 * @throws {Deno.errors.PermissionDenied} and other I/O errors
 */
export async function saveReferenceSet(dir: string, set: ReferenceSet): Promise<string> {
  const path = referencePath(dir, set.profileId);
  await Deno.mkdir(dir, { recursive: true });
  const temp = await Deno.makeTempFile({ dir, prefix: `.${set.profileId}.`, suffix: ".tmp" });
  try {
    await Deno.writeTextFile(temp, `${JSON.stringify(set, null, 2)}\n`);
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
  return path;
}

/**
 * Loads a profile's reference set.
 *
 * @param dir the references folder
 * @param id the profile ID
 * @returns the reference set, or undefined when the profile has none
 * @throws {VaspError} `reference_invalid` for a file that is not a valid reference set of
 *   that profile
 */
export async function loadReferenceSet(dir: string, id: string): Promise<ReferenceSet | undefined> {
  const path = referencePath(dir, id);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new VaspError("reference_invalid", `Reference set "${path}" is not JSON`, { cause });
  }
  const set = parseReferenceSet(json, path);
  if (set.profileId !== id) {
    throw new VaspError(
      "reference_invalid",
      `Reference set "${path}" belongs to profile "${set.profileId}"`,
      { details: { source: path } },
    );
  }
  return set;
}
