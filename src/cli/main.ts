/**
 * The `vasp` command: `deno task vasp <command> …`. The composition root: commands build what
 * they need; nothing opens a library, socket or database at import time.
 *
 * @module
 */
import { type Command, EXIT, exitCodeOf, printJson, wantsHelp } from "./_command.ts";
import { status } from "./status.ts";
import { versionInfo } from "../server/mod.ts";
import { attestVerify } from "./attest.ts";
import { auditVerify } from "./audit.ts";
import { demo } from "./demo.ts";
import { gate } from "./gate.ts";
import { measure } from "./measure.ts";
import { policyCheck, policyTest } from "./policy.ts";
import { refsCheck, refsLearn } from "./refs.ts";
import { serve } from "./serve.ts";
import { tokenCreate, tokenList, tokenRevoke } from "./token.ts";
import { vmBootRefs, vmImport, vmList, vmRegister, vmRelease, vmRemove, vmShow } from "./vm.ts";
import { describeError, VaspError } from "../engine/error.ts";

/** Every sub-command; each lives in its own file. */
export const COMMANDS: readonly Command[] = [
  serve,
  status,
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
  vmImport,
  vmRemove,
  vmRelease,
  vmBootRefs,
  demo,
];

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length), 4);
  return [
    "usage: vasp <command> [options]",
    "",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    `  ${
      "help".padEnd(width)
    }  this text; "vasp help <command>" or "vasp <command> --help" for one`,
    "",
    "  --version  print the version (package, native ABI, Deno) and exit",
    "",
    "Exit codes: 0 success, 1 a failure or a negative answer, 2 a usage or I/O error.",
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

/** The commands whose names start with `word` (`vasp vm` lists the vm commands). */
function group(word: string): Command[] {
  return COMMANDS.filter((c) => c.name.startsWith(`${word} `));
}

/**
 * Runs `vasp` with `argv` (without the program name).
 *
 * @returns the exit code: 0 success, 1 a failure or a negative answer, 2 a usage or I/O error
 */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "--version") {
    const info = versionInfo();
    if (argv.includes("--json")) printJson(info);
    else console.log(`vasp ${info.version} (native ABI ${info.abi}, deno ${info.deno})`);
    return EXIT.ok;
  }
  if (argv.length === 0 || argv[0] === "help" || argv[0] === "--help" || argv[0] === "-h") {
    if (argv.length <= 1) {
      console.log(help());
      return EXIT.ok;
    }
    const { command } = lookup(argv.slice(1));
    const members = group(argv[1]);
    if (command) console.log(command.usage);
    else if (members.length > 0) console.log(members.map((c) => c.usage).join("\n\n"));
    else {
      console.error(`vasp help: no command "${argv.slice(1).join(" ")}"\n\n${help()}`);
      return EXIT.usage;
    }
    return EXIT.ok;
  }
  const { command, rest } = lookup(argv);
  if (!command) {
    const members = group(argv[0]);
    if (members.length > 0 && (argv.length === 1 || wantsHelp(argv.slice(1)))) {
      console.log(members.map((c) => `  vasp ${c.name.padEnd(14)}  ${c.summary}`).join("\n"));
      return argv.length === 1 ? EXIT.usage : EXIT.ok;
    }
    console.error(`vasp: unknown command "${argv.join(" ")}"\n\n${help()}`);
    return EXIT.usage;
  }
  if (wantsHelp(rest)) {
    console.log(command.usage);
    return EXIT.ok;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    const exit = exitCodeOf(error);
    if (error instanceof VaspError && error.code === "usage_invalid") {
      console.error(`vasp ${command.name}: ${error.message}\n\n${command.usage}`);
      return exit;
    }
    console.error(`vasp ${command.name}: ${describeError(error)}`);
    return exit;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
