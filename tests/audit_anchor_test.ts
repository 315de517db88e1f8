/**
 * Finding 3 of the hardening review, reproduced on a real `vasp serve` and the real `vasp audit
 * verify`: with 38 records and checkpoints at 33 and 38, someone with the file drops the
 * trigger and deletes the records after 33 with the checkpoint at 38. The chain alone (what
 * `--no-anchor` checks, and all the command checked before) calls that log sound; the ASP's
 * counter, which every checkpoint advances, does not.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Asp } from "../ffi/mod.ts";
import { AUDIT_ANCHOR_COUNTER } from "../src/server/checkpoint_key.ts";
import { tamper } from "../src/store/testing.ts";
import { event } from "./fixtures/http_app.ts";
import { startServe } from "./fixtures/serve_process.ts";
import { tempStateDir } from "./fixtures/state_dir.ts";
import { startVaspServer } from "./fixtures/vasp_server.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** `vasp audit verify` as a child process. */
async function auditVerify(dir: string, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/cli/main.ts", "audit", "verify", "--state-dir", dir, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** Runs `vasp serve` on `dir`, answers `n` decisions over its socket, stops it (SIGTERM). */
async function serveDecisions(dir: string, n: number): Promise<void> {
  const serve = await startServe(["--state-dir", dir, "--no-tcp"]);
  try {
    using client = Deno.createHttpClient({
      proxy: { transport: "unix", path: join(dir, "vasp.sock") },
    });
    for (let i = 0; i < n; i++) {
      const answer = await fetch("http://localhost/v1/decide", {
        method: "POST",
        body: JSON.stringify(event(i % 2 ? "pause" : "start")),
        client,
      });
      assert.equal(answer.status, 200);
      await answer.body?.cancel();
    }
  } finally {
    const done = await serve.stop();
    assert.equal(done.status.code, 0, done.stderr);
  }
}

/** A copy of a state directory (modes kept: the host secret must stay 0600). */
async function copyDir(from: string, to: string): Promise<void> {
  const cp = await new Deno.Command("cp", { args: ["-a", `${from}/.`, to] }).output();
  assert.equal(cp.code, 0, new TextDecoder().decode(cp.stderr));
}

Deno.test("vasp audit verify catches a cut tail, a deleted checkpoint and an older copy of the log through the ASP's counter", async (t) => {
  await using dir = await tempStateDir();
  await using old = await tempStateDir();
  await serveDecisions(dir.path, 33); // shutdown checkpoint at 33
  await copyDir(dir.path, old.path); // the database as it was then
  await serveDecisions(dir.path, 5); // shutdown checkpoint at 38

  await t.step(
    "the untouched log verifies, its newest checkpoint carrying the counter",
    async () => {
      const ok = await auditVerify(dir.path, "--json");
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      const result = JSON.parse(ok.stdout);
      assert.equal(result.records_checked, 38);
      assert.equal(result.last_checkpoint_seq, 38);
      assert.deepEqual(result.anchor, {
        counter: 2,
        checkpoint_counter: 2,
        checkpoint_seq: 38,
        status: "matches",
      });
      const text = await auditVerify(dir.path);
      assert.match(text.stdout, /^audit log OK: 38 records, 2 signed checkpoints\n/);
      assert.match(text.stdout, /newest checkpoint \(record 38\) carries the ASP's counter 2/);
    },
  );

  const attacks: [string, (attacked: string) => void | Promise<void>][] = [
    ["records after 33 and the checkpoint at 38 deleted (the review's attack)", (d) =>
      tamper(
        join(d, "vasp.db"),
        "DELETE FROM audit WHERE seq > 33; DELETE FROM audit_checkpoints WHERE seq > 33",
      )],
    [
      "the checkpoint at 38 deleted, the records kept",
      (d) => tamper(join(d, "vasp.db"), "DELETE FROM audit_checkpoints WHERE seq = 38"),
    ],
    [
      "the database replaced by its copy from after record 33",
      (d) => Deno.copyFileSync(join(old.path, "vasp.db"), join(d, "vasp.db")),
    ],
  ];
  for (const [name, attack] of attacks) {
    await t.step(name, async () => {
      await using attacked = await tempStateDir();
      await copyDir(dir.path, attacked.path);
      await attack(attacked.path);
      // What the command said before the anchor: the chain alone finds nothing.
      const chainOnly = await auditVerify(attacked.path, "--no-anchor");
      assert.equal(chainOnly.code, 0, chainOnly.stdout);
      const verdict = await auditVerify(attacked.path);
      assert.equal(verdict.code, 1, verdict.stdout);
      assert.match(
        verdict.stdout,
        /^audit log FAILED: the newest checkpoint \(record 33\) carries counter 1, but the ASP's audit counter is 2: 1 newer checkpoint\(s\) and the records they covered are gone/,
      );
    });
  }

  await t.step(
    "a server started on a cut log logs it and signs no checkpoint over it",
    async () => {
      await using attacked = await tempStateDir();
      await copyDir(dir.path, attacked.path);
      await attacks[0]![1](attacked.path);
      {
        await using server = await startVaspServer(attacked.path);
        const answer = await server.call("POST", "/v1/decide", { body: event("start") });
        assert.equal(answer.status, 200);
        await server.stop();
        assert.ok(
          server.logged.some((line) => /audit checkpoint failed.*anchor is at 2/.test(line)),
          server.logged.join("\n"),
        );
      }
      const verdict = await auditVerify(attacked.path, "--json");
      assert.equal(verdict.code, 1);
      assert.equal(JSON.parse(verdict.stdout).problem.kind, "anchor_behind");
      assert.equal(Asp.peekCounter(attacked.path, AUDIT_ANCHOR_COUNTER), 2n);
    },
  );
});

Deno.test("the server checkpoints on its timer once records were added, without a shutdown", async () => {
  await using dir = await tempStateDir();
  await using server = await startVaspServer(dir.path, { checkpointIntervalMs: 20 });
  for (const operation of ["start", "pause"]) {
    assert.equal((await server.call("POST", "/v1/decide", { body: event(operation) })).status, 200);
  }
  // Bounded by the test runner, not by a guess at the timer's delay: wait until it happened.
  let verdict = await server.server.store.verifyAudit();
  while (verdict.lastCheckpointSeq !== 2) {
    await new Promise((r) => setTimeout(r, 20));
    verdict = await server.server.store.verifyAudit();
  }
  // The checkpoint's anchor advance may still be under way ("ahead"): this waits for it, and
  // signs nothing new, the head having its checkpoint.
  assert.equal(await server.server.store.checkpoint(), undefined);
  verdict = await server.server.store.verifyAudit();
  assert.equal(verdict.ok, true, verdict.problem?.message);
  assert.equal(verdict.anchor?.status, "matches");
  // One counter value per checkpoint (the timer may have caught the first decision alone).
  assert.equal(
    Asp.peekCounter(dir.path, AUDIT_ANCHOR_COUNTER),
    BigInt(verdict.checkpointsChecked),
  );
});
