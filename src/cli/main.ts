/**
 * The `vasp` command: `deno task vasp <command> …`. The composition root: commands build what
 * they need; nothing opens a library, socket or database at import time.
 *
 * Start time: each command's module is loaded when it runs, and the client commands import the
 * files they use (`wire/client.ts`, `store/state_dir.ts`, `http/tokens.ts`) rather than those
 * folders' `mod.ts`, whose other exports pull in the server, CEL and X.509: with the bundle's
 * chunks (tools/bundle.ts) `vasp vm list` parses a third of what it did (bench/cli_bench.ts).
 *
 * @module
 */
import { type Command, EXIT, exitCodeOf, printJson, wantsHelp } from "./_command.ts";
import { versionInfo } from "../server/version.ts";
import { describeError, VaspError } from "../engine/error.ts";

/** A sub-command as `vasp help` lists it; its module is loaded only when it is used. */
export interface CommandEntry {
  /** Words after `vasp` that select it (the loaded command's own `name`). */
  readonly name: string;
  /** One line for `vasp help`. */
  readonly summary: string;
  /** Loads the command's module (each lives in its own file). */
  load(): Promise<Command>;
}

/**
 * Every sub-command. Modules load on use, so `vasp vm list` does not parse the server, CEL or
 * X.509 (bench/cli_bench.ts); a test checks each entry's name against its loaded command.
 */
export const COMMANDS: readonly CommandEntry[] = [
  {
    name: "serve",
    summary: "run the decision server (ASP, host measurement, policies, audit, HTTP API)",
    load: async () => (await import("./serve.ts")).serve,
  },
  {
    name: "status",
    summary: "one screen: ASP, host measured and expected, policies, VMs, listeners, tokens",
    load: async () => (await import("./status.ts")).status,
  },
  {
    name: "attest verify",
    summary: "appraise a quote offline and state the result as an EAR",
    load: async () => (await import("./attest.ts")).attestVerify,
  },
  {
    name: "audit verify",
    summary: "check the audit log's hash chain and signed checkpoints",
    load: async () => (await import("./audit.ts")).auditVerify,
  },
  {
    name: "gate",
    summary: "run the QMP gate in front of one QEMU's monitor",
    load: async () => (await import("./gate.ts")).gate,
  },
  {
    name: "measure",
    summary: "measure a running guest kernel from its RAM",
    load: async () => (await import("./measure.ts")).measure,
  },
  {
    name: "refs learn",
    summary: "store a known-good guest measurement as its profile's reference set",
    load: async () => (await import("./refs.ts")).refsLearn,
  },
  {
    name: "refs check",
    summary: "compare a guest measurement with its profile's reference set",
    load: async () => (await import("./refs.ts")).refsCheck,
  },
  {
    name: "refs image",
    summary: "print the digests a guest kernel must have, from its package alone",
    load: async () => (await import("./refs.ts")).refsImage,
  },
  {
    name: "policy check",
    summary: "compile a policy set and report every error",
    load: async () => (await import("./policy.ts")).policyCheck,
  },
  {
    name: "policy test",
    summary: "run the test cases kept beside each policy",
    load: async () => (await import("./policy.ts")).policyTest,
  },
  {
    name: "token create",
    summary: "make a bearer token (hook, operator, tenant, metrics, peer), print it once",
    load: async () => (await import("./token.ts")).tokenCreate,
  },
  {
    name: "token list",
    summary: "list bearer tokens (never their secrets)",
    load: async () => (await import("./token.ts")).tokenList,
  },
  {
    name: "token revoke",
    summary: "revoke a bearer token by its id",
    load: async () => (await import("./token.ts")).tokenRevoke,
  },
  {
    name: "vm list",
    summary: "list the VMs the server knows",
    load: async () => (await import("./vm.ts")).vmList,
  },
  {
    name: "vm show",
    summary: "show one VM and its latest measurements",
    load: async () => (await import("./vm.ts")).vmShow,
  },
  {
    name: "vm register",
    summary: "register a VM with the server",
    load: async () => (await import("./vm.ts")).vmRegister,
  },
  {
    name: "vm import",
    summary: "register the domains libvirt already has",
    load: async () => (await import("./vm.ts")).vmImport,
  },
  {
    name: "vm remove",
    summary: "remove a VM (its audit records stay)",
    load: async () => (await import("./vm.ts")).vmRemove,
  },
  {
    name: "vm release",
    summary: "release a quarantined VM (it stays paused)",
    load: async () => (await import("./vm.ts")).vmRelease,
  },
  {
    name: "vm boot-refs",
    summary: "show or replace a VM's boot references (measured launch)",
    load: async () => (await import("./vm.ts")).vmBootRefs,
  },
  {
    name: "peer add",
    summary: "enrol another vASP host as a migration peer",
    load: async () => (await import("./peer.ts")).peerAdd,
  },
  {
    name: "peer list",
    summary: "list the enrolled migration peers",
    load: async () => (await import("./peer.ts")).peerList,
  },
  {
    name: "peer remove",
    summary: "trust a migration peer no more",
    load: async () => (await import("./peer.ts")).peerRemove,
  },
  {
    name: "demo",
    summary: "walk a VM through the whole vASP chain in a temporary state directory",
    load: async () => (await import("./demo.ts")).demo,
  },
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
function lookup(argv: string[]): { command?: CommandEntry; rest: string[] } {
  for (const words of [2, 1]) {
    const name = argv.slice(0, words).join(" ");
    const command = COMMANDS.find((c) => c.name === name);
    if (command) return { command, rest: argv.slice(words) };
  }
  return { rest: argv };
}

/** The commands whose names start with `word` (`vasp vm` lists the vm commands). */
function group(word: string): CommandEntry[] {
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
    if (command) console.log((await command.load()).usage);
    else if (members.length > 0) {
      const loaded = await Promise.all(members.map((c) => c.load()));
      console.log(loaded.map((c) => c.usage).join("\n\n"));
    } else {
      console.error(`vasp help: no command "${argv.slice(1).join(" ")}"\n\n${help()}`);
      return EXIT.usage;
    }
    return EXIT.ok;
  }
  const { command: entry, rest } = lookup(argv);
  if (!entry) {
    const members = group(argv[0]);
    if (members.length > 0 && (argv.length === 1 || wantsHelp(argv.slice(1)))) {
      console.log(members.map((c) => `  vasp ${c.name.padEnd(14)}  ${c.summary}`).join("\n"));
      return argv.length === 1 ? EXIT.usage : EXIT.ok;
    }
    console.error(`vasp: unknown command "${argv.join(" ")}"\n\n${help()}`);
    return EXIT.usage;
  }
  const command: Command = await entry.load();
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
