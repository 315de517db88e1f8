import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { fileURLToPath } from "node:url";
import { auditVerify } from "./audit.ts";
import { entry, keyPair, storeWith, tamper, tempDir } from "../store/_testing.ts";

/** Runs the command with console.log captured. */
async function run(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...parts: unknown[]) => lines.push(parts.join(" "));
  try {
    return { code: await auditVerify.run(args), out: lines.join("\n") };
  } finally {
    console.log = log;
  }
}

function pem(spki: Uint8Array): string {
  const b64 = Buffer.from(spki).toString("base64").replace(/.{64}/g, "$&\n");
  return `-----BEGIN PUBLIC KEY-----\n${b64}\n-----END PUBLIC KEY-----\n`;
}

Deno.test("vasp audit verify exits 0 on a sound log and says what it checked", async () => {
  using dir = tempDir();
  const { signer } = await keyPair();
  await (await storeWith(dir.path, 6, { signer, checkpointEvery: 4 })).close();
  const { code, out } = await run(["--state-dir", dir.path]);
  assert.equal(code, 0);
  assert.match(out, /^audit log OK: 6 records, 2 signed checkpoints\n/);
  assert.match(out, /give --key/);
});

Deno.test("vasp audit verify exits 1 and names the first bad record", async () => {
  using dir = tempDir();
  await (await storeWith(dir.path, 6)).close();
  tamper(dir.db, "UPDATE audit SET operation = 'resume' WHERE seq = 3");
  const { code, out } = await run(["--state-dir", dir.path]);
  assert.equal(code, 1);
  assert.equal(
    out,
    "audit log FAILED: record 3: hash mismatch (modified)\n  2 records checked before it",
  );
  const json = await run(["--state-dir", dir.path, "--json"]);
  assert.equal(json.code, 1);
  const result = JSON.parse(json.out);
  assert.equal(result.ok, false);
  assert.deepEqual(result.problem, {
    seq: 3,
    kind: "hash_mismatch",
    message: "record 3: hash mismatch (modified)",
  });
  assert.equal(result.store, dir.db);
});

Deno.test("vasp audit verify --key checks signatures against the given key, PEM or DER", async () => {
  using dir = tempDir();
  const { signer } = await keyPair();
  const stranger = await keyPair();
  await (await storeWith(dir.path, 4, { signer, checkpointEvery: 4 })).close();
  Deno.writeTextFileSync(`${dir.path}/ak.pem`, pem(signer.publicKeyInfo));
  Deno.writeFileSync(`${dir.path}/ak.der`, signer.publicKeyInfo);
  Deno.writeTextFileSync(`${dir.path}/other.pem`, pem(stranger.signer.publicKeyInfo));
  for (const key of ["ak.pem", "ak.der"]) {
    const { code, out } = await run(["--state-dir", dir.path, "--key", `${dir.path}/${key}`]);
    assert.equal(code, 0, out);
    assert.doesNotMatch(out, /give --key/);
  }
  const other = await run(["--state-dir", dir.path, "--key", `${dir.path}/other.pem`]);
  assert.equal(other.code, 1);
  assert.match(other.out, /checkpoint at record 4: signature invalid/);
});

Deno.test("vasp audit verify refuses an unusable key file with key_unreadable", async () => {
  using dir = tempDir();
  Deno.writeTextFileSync(
    `${dir.path}/cert.pem`,
    "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
  );
  await assert.rejects(run(["--state-dir", dir.path, "--key", `${dir.path}/cert.pem`]), {
    code: "key_unreadable",
    message: new RegExp(
      `Cannot use ".*cert.pem" as the checkpoint key: expected a PEM "PUBLIC KEY"`,
    ),
  });
  await assert.rejects(run(["--state-dir", dir.path, "--key", `${dir.path}/none`]), {
    code: "key_unreadable",
  });
});

Deno.test("vasp audit verify fails clearly without a store and on a usage error", async () => {
  using dir = tempDir();
  await assert.rejects(run(["--state-dir", dir.path]), { code: "store_not_found" });
  await assert.rejects(run(["--bogus"]), { code: "usage_error" });
});

Deno.test("vasp audit verify runs from the command line with VASP_STATE_DIR", async () => {
  using dir = tempDir();
  const store = await storeWith(dir.path, 2);
  await store.appendAudit(entry(3));
  await store.close();
  const main = fileURLToPath(new URL("./main.ts", import.meta.url));
  const verify = (extra: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", main, "audit", "verify", ...extra],
      env: { VASP_STATE_DIR: dir.path },
      stdout: "piped",
      stderr: "piped",
    }).output();
  const ok = await verify([]);
  assert.equal(ok.code, 0, new TextDecoder().decode(ok.stderr));
  assert.match(new TextDecoder().decode(ok.stdout), /audit log OK: 3 records/);
  tamper(dir.db, "DELETE FROM audit WHERE seq = 2");
  const bad = await verify(["--json"]);
  assert.equal(bad.code, 1);
  assert.equal(JSON.parse(new TextDecoder().decode(bad.stdout)).problem.kind, "gap");
});
