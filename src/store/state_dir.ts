/**
 * Where vASP keeps its state on this host.
 *
 * @module
 */

/**
 * The state directory: the one given, else `$VASP_STATE_DIR`, else `./.vasp`.
 *
 * @param dir a directory given on the command line
 * @param env the environment (default: the process's; needs `--allow-env`)
 * @returns the directory to use
 */
export function resolveStateDir(
  dir?: string,
  env: { get(name: string): string | undefined } = Deno.env,
): string {
  return dir || env.get("VASP_STATE_DIR") || "./.vasp";
}
