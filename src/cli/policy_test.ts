import assert from "node:assert/strict";
import { main } from "./main.ts";
import { policyCheck, policyTest } from "./policy.ts";
import type { Command } from "./_command.ts";

/** Runs a command with console.log and console.error captured. */
async function run(command: Command, args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...parts: unknown[]) => out.push(parts.join(" "));
  console.error = (...parts: unknown[]) => err.push(parts.join(" "));
  try {
    return { code: await command.run(args), out: out.join("\n"), err: err.join("\n") };
  } finally {
    Object.assign(console, { log, error });
  }
}

const POLICY = `id: bound
description: test
on: [start]
rules:
  - name: bound
    expr: vasp.present
    message: '"no vASP"'
`;

const CASES = (allow: boolean) =>
  `policy: bound
cases:
  - name: a bound VM starts
    event: { operation: start, vm: { uuid: 4c1f6a4e-8f0b-4d8e-9a77-2a3e5f1c0b9d, name: db } }
    context:
      now: "2025-01-01T00:00:00Z"
      vm: { uuid: 4c1f6a4e-8f0b-4d8e-9a77-2a3e5f1c0b9d, name: db, state: defined, created_at: "2025-01-01T00:00:00Z" }
      vasp: { instance_id: v, config_digest: d, certified: true, sealed_export: false }
      measurements: {}
      host: null
    expect: { allow: ${allow} }
`;

async function withSet(files: Record<string, string>, fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(`${dir}/${name}`, text);
    }
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("vasp policy check exits 0 and names the revision of a valid set", async () => {
  await withSet({ "bound.yaml": POLICY }, async (dir) => {
    const { code, out } = await run(policyCheck, ["--policies", dir]);
    assert.equal(code, 0);
    assert.match(out, /^policy set OK: 1 policies from .*, revision sha256:[0-9a-f]{64}$/);
  });
});

Deno.test("vasp policy check exits 1 and prints every located error", async () => {
  await withSet({ "bound.yaml": POLICY.replace("vasp.present", "vasp.presnt") }, async (dir) => {
    const { code, err } = await run(policyCheck, ["--policies", dir]);
    assert.equal(code, 1);
    assert.match(err, /bound\.yaml:6:16: rules\[0\]\.expr: undefined field "presnt"/);
  });
});

Deno.test("vasp policy test exits 0 when every case passes and 1 when one fails", async () => {
  await withSet({ "bound.yaml": POLICY, "bound.cases.yaml": CASES(true) }, async (dir) => {
    const { code, out } = await run(policyTest, ["--policies", dir, "--verbose"]);
    assert.equal(code, 0);
    assert.match(out, /^ok {3}.*bound\.cases\.yaml:3 \[bound\] a bound VM starts\n/);
    assert.match(out, /\npolicy cases: 1 passed, 0 failed$/);
  });
  await withSet({ "bound.yaml": POLICY, "bound.cases.yaml": CASES(false) }, async (dir) => {
    const { code, out } = await run(policyTest, ["--policies", dir]);
    assert.equal(code, 1);
    assert.match(out, /^FAIL .*a bound VM starts\n {2}expected: deny\n/);
    assert.match(out, /\npolicy cases: 0 passed, 1 failed$/);
  });
});

Deno.test("vasp policy test counts a set that does not compile as a failure", async () => {
  await withSet({ "bound.yaml": "id: [" }, async (dir) => {
    const { code, out } = await run(policyTest, ["--policies", dir]);
    assert.equal(code, 1);
    assert.equal(out, "policy cases: 0 passed, 1 failed");
  });
});

Deno.test("vasp policy check refuses contradictory options as a usage error", async () => {
  const err: string[] = [];
  const error = console.error;
  console.error = (...parts: unknown[]) => err.push(parts.join(" "));
  try {
    assert.equal(await main(["policy", "check", "--policies-ref", "main"]), 2);
    assert.equal(await main(["policy", "check", "--policies-repo", ".", "--policies", "p"]), 2);
  } finally {
    console.error = error;
  }
  assert.match(err[0], /--policies-ref and --policies-path need --policies-repo/);
  assert.match(err[1], /either --policies or --policies-repo/);
});
