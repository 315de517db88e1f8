/**
 * `vasp demo`: the paper's whole chain, for real, on this machine, in a few seconds and
 * without QEMU: the software ASP measures the host, a VM gets a certified vASP instance, its
 * start is decided, a tenant verifies its quote offline, a tampered quote and a rolled-back
 * sealed state are refused, the VM migrates to a second host only once that host is trusted and
 * attested (its vASP sealed to that host's ASP), a compromised kernel is quarantined there, and
 * both audit logs verify.
 *
 * @module
 */
import { createLogger } from "../server/log.ts";
import { resolve } from "node:path";
import { describeError, VaspError } from "../engine/error.ts";
import { type Command, parseOptions, snakeKeys } from "./_command.ts";

const USAGE = `usage: vasp demo [--json] [--keep DIR]

Runs the decision server in-process (the software ASP, the project's policies, SQLite, the
HTTP API on its Unix socket and a loopback port) in a temporary state directory and walks a
VM through its life cycle with the requests a libvirt hook, the QMP gate, the measurement
monitor, an operator and a tenant send, checking each outcome; a second server (host B, in
DIR/host-b) is where the VM migrates. No QEMU is needed: the guest
whose kernel the monitor measures is a stand-in. Exits 0 when every step behaved as expected,
1 otherwise (the step that did not is named).

  --json      print a machine-readable summary instead of the numbered steps
  --keep DIR  use DIR (missing or empty) as the state directory and keep it afterwards`;

/** One step's outcome, as `--json` prints it. */
interface StepOutcome {
  readonly step: number;
  readonly title: string;
  readonly ok: boolean;
  readonly line?: string;
  readonly facts?: Readonly<Record<string, unknown>>;
  readonly error?: string;
}

/** The state directory: `--keep DIR` when given (missing or empty), else a temporary one. */
async function stateDirectory(keep: string | undefined): Promise<string> {
  if (keep === undefined) return await Deno.makeTempDir({ prefix: "vasp-demo-" });
  const dir = resolve(keep);
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  for await (const _ of Deno.readDir(dir)) {
    throw new VaspError("usage_invalid", `--keep "${dir}" is not empty; give a new directory`);
  }
  return dir;
}

/** JSON with snake_case keys, big integers as decimal text and bytes as hex. */
function json(value: unknown): string {
  return JSON.stringify(snakeKeys(value), null, 2);
}

/** `vasp demo`. */
export const demo: Command = {
  name: "demo",
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, {
      json: { type: "boolean" },
      keep: { type: "string" },
    });
    const dir = await stateDirectory(values.keep);
    const say = (line: string) => values.json || console.log(line);
    const logged: string[] = [];
    const outcomes: StepOutcome[] = [];
    const started = performance.now();
    say(`vASP demo: state in ${dir}${values.keep ? "" : " (removed at the end)"}`);
    const { DemoRun } = await import("./_demo_steps.ts");
    const run = new DemoRun(dir, { log: createLogger({ write: (line) => logged.push(line) }) });
    const steps = run.steps();
    try {
      for (const [i, step] of steps.entries()) {
        try {
          const { line, facts } = await step.run();
          outcomes.push({ step: i + 1, title: step.title, ok: true, line, facts });
          say(`${i + 1}. ${line}`);
        } catch (error) {
          const message = describeError(error);
          outcomes.push({ step: i + 1, title: step.title, ok: false, error: message });
          say(`${i + 1}. FAILED (${step.title}): ${message}`);
          break; // each step builds on the one before
        }
      }
    } finally {
      await run.close();
      if (!values.keep) await Deno.remove(dir, { recursive: true });
    }
    const ok = outcomes.length === steps.length && outcomes.every((o) => o.ok);
    if (!ok && logged.length > 0) console.error(`server log:\n  ${logged.join("\n  ")}`);
    const seconds = Math.round(performance.now() - started) / 1000;
    if (values.json) {
      console.log(json({ ok, seconds, state_dir: dir, kept: !!values.keep, steps: outcomes }));
    } else {
      const passed = outcomes.filter((o) => o.ok).length;
      const verdict = ok ? "every step" : `${passed} of ${steps.length} steps`;
      const state = values.keep ? `state kept in ${dir}` : "state directory removed";
      say(`${verdict} behaved as expected in ${seconds} s; ${state}`);
    }
    return ok ? 0 : 1;
  },
};
