/**
 * Runs every `bench/*_bench.ts` in turn, one process each, in name order, passing the
 * arguments given here to each; exits non-zero when any of them fails. The migration bench
 * runs under `tools/subreaper.py`, so that the QEMUs its libvirtd daemons end are reaped at
 * once, as on a host (this machine's PID 1 reaps orphans late, and libvirt waits for that).
 * `libvirt_bench.ts` does not yet: reaped at once, its `restore` right after a `save` finds the
 * console log still held by virtlogd (EBUSY), a race the late reaping hid. The soak
 * (`soak_bench.ts`, ten minutes by default) runs here for one minute (`--minutes 1`); run it
 * alone for the full soak.
 *
 *   deno task bench [ARGS…]
 *
 * @module
 */

const dir = new URL(".", import.meta.url).pathname;
const subreaper = new URL("../tools/subreaper.py", import.meta.url).pathname;
const UNDER_SUBREAPER: ReadonlySet<string> = new Set(["migration_bench.ts"]);
const benches: string[] = [];
for await (const entry of Deno.readDir(dir)) {
  if (entry.isFile && entry.name.endsWith("_bench.ts")) benches.push(entry.name);
}
benches.sort();

const failed: string[] = [];
for (const name of benches) {
  console.log(`== bench/${name}`);
  const command = UNDER_SUBREAPER.has(name) ? ["python3", subreaper, Deno.execPath()] : [
    Deno.execPath(),
  ];
  const { code } = await new Deno.Command(command[0]!, {
    args: [
      ...command.slice(1),
      "run",
      "--allow-all",
      `${dir}${name}`,
      ...(name === "soak_bench.ts" ? ["--minutes", "1"] : []),
      ...Deno.args,
    ],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) failed.push(`${name} (exit ${code})`);
}
console.log(
  `${benches.length - failed.length} benches ran, ${failed.length} failed` +
    (failed.length ? `: ${failed.join(", ")}` : ""),
);
Deno.exit(failed.length ? 1 : 0);
