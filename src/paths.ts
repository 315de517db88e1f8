/**
 * Where the project's own files are, whether the engine runs from its sources or from the
 * bundle (tools/bundle.ts puts every module into `<root>/dist/vasp.js`, so every module's
 * `import.meta.url` is then the bundle's).
 *
 * @module
 */

/** Whether this code runs from the bundle. */
export const BUNDLED: boolean = import.meta.url.endsWith(".js");

/**
 * The project root (the folder holding `policies/`, and `src/` or `dist/`), with a slash: this
 * file and the bundle both sit one folder below it.
 */
export const PROJECT_ROOT: string = new URL("../", import.meta.url).pathname;

/**
 * A path under the project root.
 *
 * @param relative e.g. `policies`
 * @returns the absolute path
 */
export function projectPath(relative: string): string {
  return `${PROJECT_ROOT}${relative}`;
}
