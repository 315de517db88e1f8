import assert from "node:assert/strict";
import { COMMANDS, main } from "./main.ts";

/** Runs `vasp` in-process, collecting what it prints. */
async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...parts: unknown[]) => out.push(parts.join(" "));
  console.error = (...parts: unknown[]) => err.push(parts.join(" "));
  try {
    const code = await main(argv);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

const README = new URL("../../README.md", import.meta.url);

/** The `deno task vasp …` commands of the README's tour table, as argument lists. */
function tourCommands(): string[][] {
  const text = Deno.readTextFileSync(README);
  const tour = text.slice(text.indexOf("## A tour"), text.indexOf("Hooks for a hypervisor host"));
  const firstWords = new Set(COMMANDS.map((c) => c.name.split(" ")[0]));
  const commands: string[][] = [];
  for (const row of tour.split("\n").filter((l) => l.startsWith("| `deno task vasp"))) {
    let group = "";
    for (const code of row.split("|")[1].matchAll(/`([^`]+)`/g)) {
      let words = code[1].replace(/^deno task vasp /, "").replace(/…/g, "").trim().split(/\s+/);
      // A row may abbreviate ("vm list" after "vm register …", "policy test" after "policy check").
      if (!firstWords.has(words[0]) && !["help", "--version"].includes(words[0])) {
        words = [group, ...words];
      }
      group = words[0];
      commands.push(words);
    }
  }
  return commands;
}

Deno.test("every command answers -h, --help and vasp help CMD with its usage and exit 0", async () => {
  for (const command of COMMANDS) {
    const words = command.name.split(" ");
    for (const argv of [[...words, "-h"], [...words, "--help"], ["help", ...words]]) {
      const { code, out } = await run(argv);
      assert.equal(code, 0, argv.join(" "));
      assert.ok(out.startsWith(`usage: vasp ${command.name}`), `${argv.join(" ")}: ${out}`);
    }
    // Help wins over anything else on the line, even options the command does not know.
    assert.equal((await run([...words, "--no-such-option", "-h"])).code, 0, command.name);
  }
});

Deno.test("each command entry loads the command of its name, and its usage starts with it", async () => {
  for (const entry of COMMANDS) {
    const command = await entry.load();
    assert.equal(command.name, entry.name);
    assert.ok(command.usage.startsWith(`usage: vasp ${entry.name}`), entry.name);
  }
});

Deno.test("vasp --version names the package version, the native ABI and Deno", async () => {
  const { code, out } = await run(["--version"]);
  assert.equal(code, 0);
  assert.match(out, /^vasp \d+\.\d+\.\d+ \(native ABI \d+, deno \d+\.\d+\.\d+\)$/);
  const json = JSON.parse((await run(["--version", "--json"])).out);
  assert.deepEqual(Object.keys(json).sort(), ["abi", "deno", "version"]);
});

Deno.test("usage mistakes exit 2: an unknown command, an unknown option, a group without its verb", async () => {
  assert.equal((await run(["frobnicate"])).code, 2);
  assert.equal((await run(["vm", "list", "--frob"])).code, 2);
  const group = await run(["vm"]);
  assert.equal(group.code, 2);
  assert.match(group.out, /vasp vm list/);
  assert.equal((await run(["vm", "--help"])).code, 0);
});

Deno.test("every command in the README tour answers --help with exit 0, and knows every flag the README gives it", async () => {
  const commands = tourCommands();
  assert.ok(commands.length >= 15, `only ${commands.length} commands found in the tour`);
  for (const argv of commands) {
    const positional = argv.filter((w) => !w.startsWith("-"));
    const name = COMMANDS.map((c) =>
      c.name
    ).filter((n) => n.split(" ").every((w, i) => positional[i] === w)).sort((a, b) =>
      b.length - a.length
    )[0];
    if (argv[0] === "--version" || argv[0] === "help") {
      assert.equal((await run(argv)).code, 0, argv.join(" "));
      continue;
    }
    assert.ok(name, `the README names "vasp ${argv.join(" ")}", which is no command`);
    const { code, out } = await run([...name.split(" "), "--help"]);
    assert.equal(code, 0, name);
    for (const flag of argv.filter((w) => w.startsWith("--"))) {
      assert.ok(out.includes(flag), `"vasp ${name} --help" does not mention ${flag}`);
    }
  }
});

/** Every object key in a JSON value. */
function keys(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((v) => keys(v, out));
  else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      keys(v, out);
    }
  }
  return out;
}

Deno.test("--json prints snake_case keys: policy check, policy test, token list", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vasp-cli-json-" });
  try {
    await run(["token", "create", "--role", "metrics", "--state-dir", dir]);
    for (
      const argv of [
        ["policy", "check", "--json"],
        ["policy", "test", "--json"],
        ["token", "list", "--state-dir", dir, "--json"],
      ]
    ) {
      const { code, out } = await run(argv);
      assert.equal(code, 0, argv.join(" "));
      const camel = keys(JSON.parse(out)).filter((k) => /[A-Z]/.test(k));
      assert.deepEqual(camel, [], argv.join(" "));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a file a flag names that is missing is an I/O error (exit 2) naming the flag and the path", async () => {
  const { code, err } = await run([
    "attest",
    "verify",
    "--quote",
    "/nonexistent/q.bin",
    "--chain",
    "/nonexistent/chain.pem",
    "--ca",
    "/nonexistent/ca.pem",
    "--nonce",
    "00",
  ]);
  assert.equal(code, 2);
  assert.match(err, /Cannot read --chain "\/nonexistent\/chain\.pem": no such file \[io_failed\]/);
});

Deno.test("serve with no listener is refused before anything is made, exit 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vasp-cli-serve-" });
  try {
    const state = `${dir}/state`;
    const { code, err } = await run(["serve", "--state-dir", state, "--no-tcp", "--no-socket"]);
    assert.equal(code, 2);
    assert.match(err, /no listener: keep the Unix socket/);
    await assert.rejects(Deno.stat(state), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
