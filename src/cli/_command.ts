/**
 * What every `vasp` sub-command provides, and the argument parsing they share.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { errorMessage, VaspError } from "../engine/error.ts";

/** One sub-command of `vasp`. */
export interface Command {
  /** Words after `vasp` that select it, e.g. `"serve"` or `"refs learn"`. */
  readonly name: string;
  /** One line for `vasp help`. */
  readonly summary: string;
  /** Usage text shown by `vasp help <name>` and on a usage error. */
  readonly usage: string;
  /**
   * Runs the command.
   *
   * @param args the arguments after the command's name
   * @returns the process exit code
   */
  run(args: string[]): Promise<number>;
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
