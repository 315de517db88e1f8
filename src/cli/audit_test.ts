import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { fileURLToPath } from "node:url";
import { auditVerify } from "./audit.ts";
import { Asp } from "../../ffi/mod.ts";
import { aspCheckpointAnchor } from "../server/checkpoint_key.ts";
import { toPem } from "../attest/mod.ts";
import { issue, type Issued } from "../attest/testing.ts";
import { ecdsaP256Signer } from "../store/mod.ts";
import { entry, keyPair, resignCheckpoints, storeWith, tamper, tempDir } from "../store/testing.ts";

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

/** A manufacturer CA → EK → AK hierarchy valid now, as the ASP makes it. */
async function hierarchy(name: string): Promise<{ ca: Issued; ek: Issued; ak: Issued }> {
  const now = Date.now();
  const validity = { notBefore: new Date(now - 86_400_000), notAfter: new Date(now + 86_400_000) };
  const ca = await issue({ name: `CN=${name} CA`, ca: true, ...validity });
  const ek = await issue({
    name: `CN=${name} EK`,
    issuer: ca,
    ca: true,
    pathLength: 1,
    ...validity,
  });
  const ak = await issue({
    name: `CN=${name} AK`,
    issuer: ek,
    ca: true,
    pathLength: 0,
    ...validity,
  });
  return { ca, ek, ak };
}

/**
 * A state directory as `vasp serve` leaves it: a log whose checkpoints the AK signed, the AK
 * chain and the manufacturer CA.
 */
async function aspSigned(dir: string, records: number) {
  const asp = await hierarchy("Test ASP");
  const signer = await ecdsaP256Signer(asp.ak.keys);
  // A real ASP's counter anchors the checkpoints, as in vasp serve.
  {
    using anchorAsp = Asp.open(dir);
    const anchor = aspCheckpointAnchor(anchorAsp);
    await (await storeWith(dir, records, { signer, anchor, checkpointEvery: 4 })).close();
  }
  Deno.writeTextFileSync(`${dir}/ak-chain.pem`, toPem(asp.ak.der) + toPem(asp.ek.der));
  Deno.writeTextFileSync(`${dir}/manufacturer-ca.pem`, toPem(asp.ca.der));
  return asp;
}

Deno.test("vasp audit verify checks checkpoints against the ASP's AK, trusted through its chain to the CA", async () => {
  using dir = tempDir();
  await aspSigned(dir.path, 6);
  const { code, out } = await run(["--state-dir", dir.path]);
  assert.equal(code, 0, out);
  assert.match(out, /^audit log OK: 6 records, 2 signed checkpoints\n/);
  assert.match(out, /against the ASP attestation key "CN=Test ASP AK" \(.*ak-chain\.pem\)/);
  assert.match(out, /whose chain leads to the manufacturer CA in .*manufacturer-ca\.pem/);
  const json = JSON.parse((await run(["--state-dir", dir.path, "--json"])).out);
  assert.equal(json.checkpoint_key.source, "asp");
  assert.equal(json.checkpoint_key.ak, "CN=Test ASP AK");
  assert.equal(json.signature_key, "given");
});

Deno.test("vasp audit verify refuses checkpoints re-signed with another key, which the recorded keys let through", async () => {
  using dir = tempDir();
  await aspSigned(dir.path, 6);
  const mallory = await keyPair();
  await resignCheckpoints(dir.db, mallory.signer);
  const { code, out } = await run(["--state-dir", dir.path]);
  assert.equal(code, 1);
  assert.match(out, /^audit log FAILED: checkpoint at record 4: signature invalid/);
  const recorded = await run(["--state-dir", dir.path, "--recorded-keys"]);
  assert.equal(recorded.code, 0, recorded.out);
  assert.match(
    recorded.out,
    /keys recorded in the log, which whoever rewrites the log can replace/,
  );
});

Deno.test("vasp audit verify refuses an AK chain that does not lead to the trusted CA", async () => {
  using dir = tempDir();
  await aspSigned(dir.path, 4);
  // Someone who re-signed the log with a hierarchy of their own, and swapped the chain file.
  const mallory = await hierarchy("Mallory");
  await resignCheckpoints(dir.db, await ecdsaP256Signer(mallory.ak.keys));
  const chain = `${dir.path}/ak-chain.pem`;
  Deno.writeTextFileSync(chain, toPem(mallory.ak.der) + toPem(mallory.ek.der));
  await assert.rejects(run(["--state-dir", dir.path]), {
    code: "ak_untrusted",
    message:
      /The AK chain in ".*ak-chain\.pem" does not lead to the manufacturer CA in ".*manufacturer-ca\.pem": .*\(foreign_root\)$/,
  });
  // A CA pinned elsewhere holds even when the one in the state directory is swapped too.
  Deno.writeTextFileSync(
    `${dir.path}/pinned-ca.pem`,
    Deno.readTextFileSync(`${dir.path}/manufacturer-ca.pem`),
  );
  Deno.writeTextFileSync(`${dir.path}/manufacturer-ca.pem`, toPem(mallory.ca.der));
  assert.equal((await run(["--state-dir", dir.path])).code, 0, "the swapped CA is trusted");
  await assert.rejects(run(["--state-dir", dir.path, "--ca", `${dir.path}/pinned-ca.pem`]), {
    code: "ak_untrusted",
  });
});

Deno.test("vasp audit verify needs the AK chain and the CA, and says where they come from", async () => {
  using dir = tempDir();
  await aspSigned(dir.path, 4);
  Deno.removeSync(`${dir.path}/ak-chain.pem`);
  await assert.rejects(run(["--state-dir", dir.path]), {
    code: "key_unreadable",
    message:
      /Cannot read the ASP's AK chain ".*ak-chain\.pem": it does not exist \(vasp serve writes it\)/,
  });
  await assert.rejects(run(["--state-dir", dir.path, "--ca", `${dir.path}/none.pem`]), {
    code: "key_unreadable",
  });
  Deno.writeTextFileSync(`${dir.path}/ak-chain.pem`, "not a certificate");
  await assert.rejects(run(["--state-dir", dir.path]), {
    code: "key_unreadable",
    message: /No PEM certificate block/,
  });
  await assert.rejects(run(["--state-dir", dir.path, "--ca", "x", "--recorded-keys"]), {
    code: "usage_invalid",
  });
});

Deno.test("vasp audit verify --recorded-keys exits 0 on a sound log and says what it checked", async () => {
  using dir = tempDir();
  const { signer } = await keyPair();
  await (await storeWith(dir.path, 6, { signer, checkpointEvery: 4 })).close();
  const { code, out } = await run(["--state-dir", dir.path, "--recorded-keys", "--no-anchor"]);
  assert.equal(code, 0);
  assert.match(out, /^audit log OK: 6 records, 2 signed checkpoints\n/);
  assert.match(out, /without --recorded-keys they are checked against the ASP's key/);
});

Deno.test("vasp audit verify exits 1 and names the first bad record", async () => {
  using dir = tempDir();
  await (await storeWith(dir.path, 6)).close();
  tamper(dir.db, "UPDATE audit SET operation = 'resume' WHERE seq = 3");
  const { code, out } = await run(["--state-dir", dir.path, "--recorded-keys", "--no-anchor"]);
  assert.equal(code, 1);
  assert.equal(
    out,
    "audit log FAILED: record 3: hash mismatch (modified)\n  2 records checked before it",
  );
  const json = await run(["--state-dir", dir.path, "--recorded-keys", "--no-anchor", "--json"]);
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
    const { code, out } = await run([
      "--state-dir",
      dir.path,
      "--key",
      `${dir.path}/${key}`,
      "--no-anchor",
    ]);
    assert.equal(code, 0, out);
    assert.match(out, /against the key in .*ak\.(pem|der)/);
  }
  const other = await run([
    "--state-dir",
    dir.path,
    "--key",
    `${dir.path}/other.pem`,
    "--no-anchor",
  ]);
  assert.equal(other.code, 1);
  assert.match(other.out, /checkpoint at record 4: signature invalid/);
});

Deno.test("vasp audit verify refuses an unusable key file with key_unreadable", async () => {
  using dir = tempDir();
  await (await storeWith(dir.path, 1)).close();
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
  await assert.rejects(run(["--bogus"]), { code: "usage_invalid" });
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
  const ok = await verify(["--recorded-keys", "--no-anchor"]);
  assert.equal(ok.code, 0, new TextDecoder().decode(ok.stderr));
  assert.match(new TextDecoder().decode(ok.stdout), /audit log OK: 3 records/);
  tamper(dir.db, "DELETE FROM audit WHERE seq = 2");
  const bad = await verify(["--recorded-keys", "--no-anchor", "--json"]);
  assert.equal(bad.code, 1);
  assert.equal(JSON.parse(new TextDecoder().decode(bad.stdout)).problem.kind, "gap");
});
