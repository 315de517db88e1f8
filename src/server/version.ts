/**
 * What `vasp --version` prints: the package version (deno.json), the native ABI version these
 * bindings need, and the Deno that runs them. Read without loading the native library.
 *
 * @module
 */
import config from "../../deno.json" with { type: "json" };
import { ABI_VERSION } from "../../ffi/loader.ts";

/** The version facts. */
export interface VersionInfo {
  /** The package version (deno.json `version`). */
  readonly version: string;
  /** The native library ABI version the bindings need. */
  readonly abi: number;
  /** The Deno version. */
  readonly deno: string;
}

/**
 * The version facts of this build.
 *
 * @returns package version, native ABI version, Deno version
 * @example
 * ```ts
 * import { versionInfo } from "./version.ts";
 * if (!/^\d+\.\d+\.\d+/.test(versionInfo().version)) throw new Error("no version");
 * ```
 */
export function versionInfo(): VersionInfo {
  return { version: config.version, abi: ABI_VERSION, deno: Deno.version.deno };
}
