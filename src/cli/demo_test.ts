import assert from "node:assert/strict";
import { join } from "node:path";

const ROOT = new URL("../..", import.meta.url).pathname;

/** Runs `vasp` in its own process, as `deno task demo` does. */
async function vasp(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "src/cli/main.ts", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test("vasp demo walks the whole chain, shows each refusal with its reason, and leaves no state behind", async () => {
  const { code, stdout, stderr } = await vasp(["demo"]);
  assert.equal(code, 0, stdout + stderr);
  const steps = stdout.split("\n").filter((l) => /^\d+\. /.test(l));
  assert.deepEqual(steps.map((l) => l.split(".")[0]), [..."123456789", "10"], stdout);
  const [aspUp, registered, started, verified, tampered, rollback, untrusted, migrated] = steps;
  const [quarantine, audit] = steps.slice(8);
  assert.match(
    aspUp!,
    /^1\. software ASP [0-9a-f]{12}… up, manufacturer CA at \/\S+\/manufacturer-ca\.pem/,
  );
  assert.match(aspUp!, /learned as expected/);
  assert.match(registered!, /→ vASP instance [0-9a-f]{32}, certified by the ASP/);
  assert.match(
    started!,
    /start \(prepare\) allowed, vBoot measured 3 boot items; started → running; monitor: 2 kernel regions ok/,
  );
  assert.match(
    verified!,
    /verified offline, chain instance [0-9a-f]{8}… → AK [0-9a-f]{8}… → EK [0-9a-f]{8}… → Local Manufacturer CA; bound to this VM and config; 4 log entries replay/,
  );
  assert.match(tampered!, /one byte of register 0 flipped: refused \[bad_signature\]/);
  const counters =
    /sealed \(counter (\d+)\); restore → imported \(counter (\d+)\); counter-(\d+) blob put back .*restore DENIED \[rollback_refused\] "blob counter (\d+) is older than the newest export (\d+)"/
      .exec(rollback!);
  assert.ok(counters, rollback);
  const [saved, imported, putBack, refused, newest] = counters.slice(1).map(Number);
  assert.ok(saved === putBack && putBack === refused && imported! > saved! && newest! > imported!);
  assert.match(
    untrusted!,
    /A does not know B: B's migrate hook DENIED, A refused to attest it: "the destination of demo-web-1 is not an enrolled peer: no enrolled peer's CA issued its EK/,
  );
  assert.match(
    migrated!,
    /seals the VM's vASP to B's ASP \(counter \d+\); B imports it with its kernel profile's references, QEMU's migrate allowed; A retires its instance \(quote: vasp_instance_unavailable\); B's monitor: kernel ok; tenant quote verified against B's CA, \d+ log entries continuing A's/,
  );
  assert.match(
    quarantine!,
    /kernel_text patched → measurement DENIED \(runtime-integrity\/regions-match\), \[alert, quarantine\] → quarantined .*resume DENIED by the life cycle before any policy: "Cannot resume VM "demo-web-1": no resume from state quarantined"/,
  );
  // A: at least ten decisions: start, a measurement, two saves, three restores, the refused and
  // the allowed transfer, QEMU's migrate. The monitor may measure once more on its own (a VM
  // write makes it due): not counted exactly; two of them denied (the rollback, the transfer to
  // a host A did not know). B: its two migrate-ins, a measurement, the resume.
  const counts =
    /audit logs verified, hash chains intact and checkpoints signed by each ASP's AK: A: (\d+) records, (\d+) decisions \((\d+) allowed, (\d+) denied\), 1 checkpoint; B: (\d+) records, (\d+) decisions/
      .exec(audit!);
  assert.ok(counts, audit);
  const [records, decisions, allowed, denied, , onB] = counts.slice(1).map(Number);
  assert.ok(decisions! >= 10 && allowed! >= 7 && denied! >= 2 && onB! >= 4, audit);
  assert.equal(allowed! + denied!, decisions);
  assert.ok(records! > decisions!, audit);
  assert.match(stdout, /every step behaved as expected in [\d.]+ s; state directory removed/);
  const dir = /state in (\S+) \(removed at the end\)/.exec(stdout)?.[1];
  assert.ok(dir, stdout);
  assert.equal(await exists(dir), false, `${dir} is left behind`);
});

Deno.test("vasp demo --json --keep reports every step and keeps a state directory whose audit log verifies", async () => {
  const parent = await Deno.makeTempDir({ prefix: "vasp-demo-test-" });
  try {
    const keep = join(parent, "state");
    const { code, stdout, stderr } = await vasp(["demo", "--json", "--keep", keep]);
    assert.equal(code, 0, stdout + stderr);
    const summary = JSON.parse(stdout);
    assert.equal(summary.ok, true);
    assert.equal(summary.state_dir, keep);
    assert.deepEqual(summary.steps.map((s: { ok: boolean }) => s.ok), Array(10).fill(true));
    const facts = (n: number) => summary.steps[n - 1].facts;
    assert.match(facts(1).asp_id, /^[0-9a-f]{64}$/);
    assert.equal(facts(4).verified, true);
    assert.equal(facts(4).binding.config_digest, facts(2).config_digest);
    assert.match(facts(2).config_digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(facts(5).reason, "bad_signature");
    const usable = facts(6).rollback.reasons.find((r: { rule: string }) => r.rule === "usable");
    assert.equal(usable.policy, "vasp-binding");
    assert.match(usable.message, /\[rollback_refused\]/);
    assert.equal(facts(8).source_quote, "vasp_instance_unavailable");
    assert.deepEqual(facts(9).measurement.actions, ["alert", "quarantine"]);
    assert.equal(facts(9).state, "quarantined");
    const [onA, onB] = facts(10).hosts;
    assert.equal(onA.ok && onB.ok, true);
    assert.ok(onA.decisions >= 10);
    const verified = await vasp(["audit", "verify", "--state-dir", keep]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(
      verified.stdout,
      new RegExp(`^audit log OK: ${onA.records_checked} records, 1 signed checkpoint`),
    );
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("vasp demo refuses a --keep directory that is not empty", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vasp-demo-test-" });
  try {
    await Deno.writeTextFile(join(dir, "vasp.db"), "someone's state");
    const { code, stderr } = await vasp(["demo", "--keep", dir]);
    assert.equal(code, 2);
    assert.match(stderr, new RegExp(`--keep "${dir}" is not empty`));
    assert.equal(await Deno.readTextFile(join(dir, "vasp.db")), "someone's state");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
