/**
 * What every `vasp` sub-command provides, and what they share: strict flag parsing, reading a
 * file a flag names, JSON output with snake_case keys, and the exit codes.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { errorMessage, VaspError } from "../engine/error.ts";

/** One sub-command of `vasp`. */
export interface Command {
  /** Words after `vasp` that select it, e.g. `"serve"` or `"refs learn"`. */
  readonly name: string;
  /** Usage text shown by `vasp help <name>`, `-h`/`--help`, and on a usage error. */
  readonly usage: string;
  /**
   * Runs the command.
   *
   * @param args the arguments after the command's name
   * @returns the process exit code
   */
  run(args: string[]): Promise<number>;
}

/** Exit codes: success, a negative answer or failure, a usage or I/O error. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** Error codes that mean the caller or its surroundings (files, the server) are at fault. */
const USAGE_CODES = new Set([
  "usage_invalid",
  "io_failed",
  "server_unreachable",
  "socket_in_use",
  "address_in_use",
  "store_not_found",
]);

/**
 * The exit code an error ends a command with.
 *
 * @param error what the command threw
 * @returns 2 for usage and I/O errors (a file, the server), 1 for everything else
 */
export function exitCodeOf(error: unknown): number {
  if (error instanceof VaspError) return USAGE_CODES.has(error.code) ? EXIT.usage : EXIT.failure;
  if (
    error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied ||
    error instanceof Deno.errors.IsADirectory
  ) return EXIT.usage;
  return EXIT.failure;
}

/**
 * Whether `args` ask for help (`-h` or `--help` before any `--`).
 *
 * @param args the arguments after the command's name
 * @returns true when help is asked for
 */
export function wantsHelp(args: readonly string[]): boolean {
  for (const arg of args) {
    if (arg === "--") return false;
    if (arg === "-h" || arg === "--help") return true;
  }
  return false;
}

/**
 * Makes a usage error.
 *
 * @param message what is wrong with the command line
 * @returns the error, to throw
 */
export function usageError(message: string): VaspError {
  return new VaspError("usage_invalid", message);
}

/**
 * Parses `args` strictly with `node:util` `parseArgs`.
 *
 * @throws {VaspError} `usage_invalid` for an unknown option or a missing value
 */
export function parseOptions<T extends NonNullable<ParseArgsConfig["options"]>>(
  args: string[],
  options: T,
  config: { allowPositionals?: boolean } = {},
): ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: boolean }>> {
  try {
    return parseArgs({ args, options, allowPositionals: config.allowPositionals ?? false });
  } catch (cause) {
    throw new VaspError("usage_invalid", errorMessage(cause), { cause });
  }
}

function ioError(flag: string, path: string, cause: unknown): VaspError {
  const why = cause instanceof Deno.errors.NotFound
    ? "no such file"
    : cause instanceof Error
    ? cause.message
    : String(cause);
  return new VaspError("io_failed", `Cannot read ${flag} "${path}": ${why}`, {
    cause,
    details: { flag, path },
  });
}

/**
 * Reads the file a flag names.
 *
 * @param flag the flag, e.g. `--domain-xml`, named in the error
 * @param path the path given
 * @returns the file's bytes
 * @throws {VaspError} `io_failed` naming the flag and the path
 */
export async function readFlagFile(flag: string, path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (cause) {
    throw ioError(flag, path, cause);
  }
}

/**
 * Reads the text file a flag names.
 *
 * @param flag the flag, named in the error
 * @param path the path given
 * @returns the file's text
 * @throws {VaspError} `io_failed` naming the flag and the path
 */
export function readFlagText(flag: string, path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (cause) {
    throw ioError(flag, path, cause);
  }
}

/**
 * A value with every object key in snake_case (`configDigest` → `config_digest`); bytes become
 * hex, big integers decimal text. Only for shapes whose keys are field names, not data.
 *
 * @param value a JSON-able value
 * @returns the same value with snake_case keys
 * @example
 * ```ts
 * import { snakeKeys } from "./_command.ts";
 * const out = JSON.stringify(snakeKeys({ vmUuid: "u", binding: { configDigest: "d" } }));
 * if (out !== '{"vm_uuid":"u","binding":{"config_digest":"d"}}') throw new Error(out);
 * ```
 */
export function snakeKeys(value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) {
    return Array.from(value, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(snakeKeys);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value).map((
      [k, v],
    ) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), snakeKeys(v)]),
  );
}

/**
 * Prints a value as indented JSON with snake_case keys.
 *
 * @param value the value
 */
export function printJson(value: unknown): void {
  console.log(JSON.stringify(snakeKeys(value), null, 2));
}

/**
 * Lays rows out under a header, columns padded to their widest cell.
 *
 * @param header the column names
 * @param rows the cells
 * @returns the table, one line per row, no trailing spaces
 */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  return [header, ...rows]
    .map((r) => r.map((cell, i) => (cell ?? "").padEnd(widths[i])).join("  ").trimEnd())
    .join("\n");
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/**
 * Checks a digest given on the command line: `sha256:` and 64 lower-case hex digits, the one
 * form vASP reads and prints.
 *
 * @param flag the flag, named in the error
 * @param text the value given
 * @returns the digest's 32 bytes
 * @throws {VaspError} `usage_invalid` for any other form
 */
export function parseDigest(flag: string, text: string): Uint8Array {
  if (!DIGEST.test(text)) {
    throw usageError(`${flag} "${text}" is not a digest: write sha256:<64 hex digits>`);
  }
  const bytes = new Uint8Array(32);
  for (let i = 0; i < 32; i++) bytes[i] = parseInt(text.slice(7 + 2 * i, 9 + 2 * i), 16);
  return bytes;
}
