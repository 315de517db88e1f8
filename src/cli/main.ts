/**
 * The `vasp` command: `deno task vasp <command> …`. The composition root: commands build what
 * they need; nothing opens a library, socket or database at import time.
 *
 * @module
 */
import type { Command } from "./_command.ts";
import { attestVerify } from "./attest.ts";
import { auditVerify } from "./audit.ts";
import { demo } from "./demo.ts";
import { gate } from "./gate.ts";
import { measure } from "./measure.ts";
import { policyCheck, policyTest } from "./policy.ts";
import { refsCheck, refsLearn } from "./refs.ts";
import { serve } from "./serve.ts";
import { tokenCreate, tokenList, tokenRevoke } from "./token.ts";
import { vmList, vmRegister, vmRelease, vmRemove, vmShow } from "./vm.ts";
import { describeError, VaspError } from "../engine/error.ts";

/** Every sub-command; each lives in its own file. */
const COMMANDS: readonly Command[] = [
  serve,
  attestVerify,
  auditVerify,
  gate,
  measure,
  refsLearn,
  refsCheck,
  policyCheck,
  policyTest,
  tokenCreate,
  tokenList,
  tokenRevoke,
  vmList,
  vmShow,
  vmRegister,
  vmRemove,
  vmRelease,
  demo,
];

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length), 4);
  return [
    "usage: vasp <command> [options]",
    "",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    `  ${"help".padEnd(width)}  this text; "vasp help <command>" for one command`,
  ].join("\n");
}

/** Finds the command whose name matches the longest prefix of `argv`. */
function lookup(argv: string[]): { command?: Command; rest: string[] } {
  for (const words of [2, 1]) {
    const name = argv.slice(0, words).join(" ");
    const command = COMMANDS.find((c) => c.name === name);
    if (command) return { command, rest: argv.slice(words) };
  }
  return { rest: argv };
}

/**
 * Runs `vasp` with `argv` (without the program name).
 *
 * @returns the exit code: 0 success, 1 a failure or a negative answer, 2 a usage error
 */
export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === "help" || argv[0] === "--help") {
    const { command } = lookup(argv.slice(1));
    console.log(command ? command.usage : help());
    return 0;
  }
  const { command, rest } = lookup(argv);
  if (!command) {
    console.error(`vasp: unknown command "${argv.join(" ")}"\n\n${help()}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    if (error instanceof VaspError && error.code === "usage_invalid") {
      console.error(`vasp ${command.name}: ${error.message}\n\n${command.usage}`);
      return 2;
    }
    console.error(`vasp ${command.name}: ${describeError(error)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
