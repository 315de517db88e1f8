import assert from "node:assert/strict";
import { join } from "node:path";
import { Asp } from "../ffi/mod.ts";
import { describeCertificate, readCertificates } from "../src/attest/mod.ts";
import {
  aspCheckpointSigner,
  aspCheckpointVerifier,
  writeAkChain,
} from "../src/server/checkpoint_key.ts";
import { SqliteStore } from "../src/store/mod.ts";
import { keyPair, resignCheckpoints, storeWith } from "../src/store/testing.ts";
import { event } from "./fixtures/http_app.ts";
import { startServe } from "./fixtures/serve_process.ts";
import { tempStateDir } from "./fixtures/state_dir.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** `vasp audit verify` as a child process. */
async function auditVerify(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/cli/main.ts", "audit", "verify", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("checkpoints vasp serve signs with the ASP pass vasp audit verify, and a re-signed one fails", async () => {
  await using dir = await tempStateDir();
  const serve = await startServe(["--state-dir", dir.path, "--no-tcp"]);
  let stopped = false;
  try {
    assert.match(
      serve.output,
      new RegExp(
        `audit checkpoints signed by the ASP attestation key, chain ${dir.path}/ak-chain\\.pem`,
      ),
    );
    using client = Deno.createHttpClient({
      proxy: { transport: "unix", path: join(dir.path, "vasp.sock") },
    });
    for (const operation of ["start", "pause", "resume"]) {
      const answer = await fetch("http://localhost/v1/decide", {
        method: "POST",
        body: JSON.stringify(event(operation)),
        client,
      });
      assert.equal(answer.status, 200);
      await answer.body?.cancel();
    }
    const done = await serve.stop();
    stopped = true;
    assert.equal(done.status.code, 0, done.stderr);
  } finally {
    if (!stopped) await serve.stop();
  }

  // The shutdown checkpoint covers every record and is signed by this ASP's AK.
  const json = await auditVerify(["--state-dir", dir.path, "--json"]);
  assert.equal(json.code, 0, json.stdout + json.stderr);
  const result = JSON.parse(json.stdout);
  assert.equal(result.records_checked, 3);
  assert.equal(result.last_checkpoint_seq, 3);
  assert.equal(result.checkpoints_checked, 1);
  assert.equal(result.signature_key, "given");
  {
    using asp = Asp.open(dir.path);
    const ak = await describeCertificate(asp.certificate("ak"));
    assert.deepEqual(result.checkpoint_key, {
      source: "asp",
      ak: ak.subject,
      chain: join(dir.path, "ak-chain.pem"),
      ca: join(dir.path, "manufacturer-ca.pem"),
    });
  }
  const text = await auditVerify(["--state-dir", dir.path]);
  assert.match(text.stdout, /^audit log OK: 3 records, 1 signed checkpoint\n/);

  // Someone who rewrote the log re-signs its checkpoint with a key of their own.
  const mallory = await keyPair();
  await resignCheckpoints(join(dir.path, "vasp.db"), mallory.signer);
  const refused = await auditVerify(["--state-dir", dir.path]);
  assert.equal(refused.code, 1, refused.stdout + refused.stderr);
  assert.match(refused.stdout, /^audit log FAILED: checkpoint at record 3: signature invalid\n/);
  const fooled = await auditVerify(["--state-dir", dir.path, "--recorded-keys"]);
  assert.equal(fooled.code, 0, "the keys recorded in the log are the rewriter's own");
});

Deno.test("the ASP checkpoint signer and a Web Crypto key share one verifier, in the VASPSG01 scheme", async () => {
  await using dir = await tempStateDir();
  const records = 5;
  {
    using asp = Asp.open(dir.path);
    const { signer, verifier } = await aspCheckpointSigner(asp);
    assert.equal(signer.certificateChain?.length, 3, "[AK, EK, CA]");
    writeAkChain(asp);
    await (await storeWith(dir.path, records, { signer, checkpointEvery: 2 })).close();
    using store = SqliteStore.openIn(dir.path, { readOnly: true });
    const own = await store.verifyAudit({ verifier });
    assert.equal(own.ok, true, JSON.stringify(own.problem));
    assert.equal(own.checkpointsChecked, 3);
  }
  const { verifier } = await aspCheckpointVerifier(dir.path);
  {
    using store = SqliteStore.openIn(dir.path, { readOnly: true });
    assert.equal((await store.verifyAudit({ verifier })).checkpointsChecked, 3);
  }
  // A store signed by a Web Crypto key goes through the same verifier code and fails on it.
  await using other = await tempStateDir();
  const stranger = await keyPair();
  await (await storeWith(other.path, records, { signer: stranger.signer, checkpointEvery: 2 }))
    .close();
  using store = SqliteStore.openIn(other.path, { readOnly: true });
  assert.equal((await store.verifyAudit()).ok, true, "its own recorded key verifies it");
  const refused = await store.verifyAudit({ verifier });
  assert.equal(refused.problem?.message, "checkpoint at record 2: signature invalid");
});

Deno.test("writeAkChain() writes the AK then the EK certificate, public, and leaves no temp file when it fails", async () => {
  await using dir = await tempStateDir();
  using asp = Asp.open(dir.path);
  const path = writeAkChain(asp);
  assert.equal(path, join(dir.path, "ak-chain.pem"));
  assert.equal((await Deno.stat(path)).mode! & 0o777, 0o644);
  const chain = readCertificates(await Deno.readFile(path));
  assert.deepEqual(chain, [asp.certificate("ak"), asp.certificate("ek")]);
  assert.equal(writeAkChain(asp), path, "rewritten on every start");

  // A directory where the file belongs makes the rename fail after the temp file was written.
  await Deno.remove(path);
  await Deno.mkdir(join(path, "in-the-way"), { recursive: true });
  assert.throws(() => writeAkChain(asp), Deno.errors.IsADirectory);
  const left = [...Deno.readDirSync(dir.path)].map((e) => e.name).filter((n) => n.endsWith(".tmp"));
  assert.deepEqual(left, []);
});
