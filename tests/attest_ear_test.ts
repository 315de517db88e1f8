/**
 * Standard attestation results through the real server: a registered VM boots (vBoot), its
 * tenant fetches a quote over TCP as `curl` would and saves the JSON answer; `vasp attest
 * verify --evidence` appraises that file offline into an EAR, and the server's own EAR beside
 * the evidence verifies with the key the ASP's AK endorsed.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { base64url, decodeJwt, exportJWK, generateKeyPair, jwtVerify, SignJWT } from "jose";
import { EAR_PROFILE, readCertificates, verifyEar } from "../src/attest/mod.ts";
import { tempStateDir } from "./fixtures/state_dir.ts";
import { startVaspServer } from "./fixtures/vasp_server.ts";
import { allowed, bootFiles, completed, decide, domainXml } from "./fixtures/vasp_vm.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const WEB1 = { uuid: "7a2b3c4d-5e6f-4a1b-9c2d-3e4f5a6b7c8d", name: "web-ear" };
const NONCE = "0123456789abcdef0123456789abcdef";
const OTHER_NONCE = "fedcba9876543210fedcba9876543210";
const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");

async function verify(args: string[]): Promise<{ code: number; stdout: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/cli/main.ts", "attest", "verify", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  return { code: out.code, stdout: stdout + new TextDecoder().decode(out.stderr) };
}

Deno.test("a tenant's saved quote answer appraises offline into an EAR, and the server's signed EAR verifies with the AK-endorsed key", async (t) => {
  await using dir = await tempStateDir();
  const boot = join(dir.path, "boot");
  const kernel = await bootFiles(boot);
  const xml = domainXml(WEB1, boot);
  await using s = await startVaspServer(dir.path);
  const ca = join(dir.path, "manufacturer-ca.pem");
  const file = (name: string) => join(dir.path, name);

  const registered = await s.call("POST", "/v1/vms", {
    body: { ...WEB1, tenant: "acme", domain_xml: xml },
  });
  assert.equal(registered.status, 201, JSON.stringify(registered.json));
  const details = { domain_xml_b64: Buffer.from(xml).toString("base64") };
  assert.equal(allowed(await decide(s, WEB1, "start", { phase: "prepare", details })).vboot, 6);
  await completed(s, WEB1, "start", { phase: "started" });

  const acme = s.token("tenant", "acme");
  const answer = await s.call("GET", `/v1/vms/${WEB1.uuid}/quote?nonce=${NONCE}`, {
    token: acme,
  });
  assert.equal(answer.status, 200, JSON.stringify(answer.json));
  await Deno.writeTextFile(file("q.json"), JSON.stringify(answer.json));
  const expected = {
    components: {
      config: `sha256:${sha256(xml)}`,
      firmware: `sha256:${sha256(await Deno.readFile(join(boot, "OVMF.fd")))}`,
      kernel: `sha256:${sha256(kernel)}`,
      initrd: `sha256:${sha256(await Deno.readFile(join(boot, "initrd.img")))}`,
      cmdline: `sha256:${sha256("console=ttyS0 root=/dev/vda1")}`,
    },
  };
  await Deno.writeTextFile(file("expect.json"), JSON.stringify(expected));
  const base = ["--ca", ca, "--nonce", NONCE];

  await t.step("the saved answer with the right references is affirming", async () => {
    const { code, stdout } = await verify([
      ...["--evidence", file("q.json"), ...base, "--expect", file("expect.json")],
      ...["--config-digest", `sha256:${sha256(xml)}`, "--ear-out", file("ear.json")],
    ]);
    assert.equal(code, 0, stdout);
    assert.match(stdout, /^quote OK: signed by vASP instance [0-9a-f]{32} of VM 7a2b3c4d-/);
    assert.match(stdout, /\nEAR affirming: /);
    assert.match(stdout, /pass +references: matched: config, firmware, kernel, initrd, cmdline/);
    assert.match(stdout, /\nserver EAR affirming: signature verified/);
    const ear = JSON.parse(await Deno.readTextFile(file("ear.json")));
    assert.equal(ear.eat_profile, EAR_PROFILE);
    assert.equal(ear.eat_nonce, NONCE);
    const submod = ear.submods["vasp-instance"];
    assert.equal(submod["ear.status"], "affirming");
    assert.deepEqual(submod["ear.trustworthiness-vector"], {
      "instance-identity": 2,
      hardware: 2,
      configuration: 2,
      executables: 3,
    });
    assert.match(submod["ear.appraisal-policy-id"], /#sha256:[0-9a-f]{64}$/);
    assert.equal(submod["ear.vasp.annotated-evidence"].vm_uuid, WEB1.uuid);
    const outcomes = Object.fromEntries(
      submod["ear.vasp.checks"].map((c: { check: string; outcome: string }) => [
        c.check,
        c.outcome,
      ]),
    );
    assert.deepEqual(outcomes, {
      structure: "pass",
      chain: "pass",
      signature: "pass",
      binding: "pass",
      nonce: "pass",
      registers: "skipped", // no register values were expected, only components
      event_log: "pass",
      references: "pass",
    });
  });

  await t.step("one byte of the quote changed is contraindicated with its reason", async () => {
    const tampered = structuredClone(answer.json);
    const bytes = Buffer.from(tampered.quote, "base64");
    bytes[bytes.length - 70]! ^= 0x01; // in the last quoted register
    tampered.quote = bytes.toString("base64");
    await Deno.writeTextFile(file("tampered.json"), JSON.stringify(tampered));
    const { code, stdout } = await verify([
      ...["--evidence", file("tampered.json"), ...base, "--json"],
    ]);
    assert.equal(code, 1, stdout);
    const out = JSON.parse(stdout);
    assert.equal(out.reason, "bad_signature");
    const submod = out.ear.submods["vasp-instance"];
    assert.equal(submod["ear.status"], "contraindicated");
    assert.equal(submod["ear.trustworthiness-vector"]["instance-identity"], 99);
    const failed = submod["ear.vasp.checks"].find((c: { outcome: string }) => c.outcome === "fail");
    assert.equal(failed.check, "signature");
    assert.equal(failed.reason, "bad_signature");
  });

  await t.step("an unexpected kernel digest is contraindicated, naming the kernel", async () => {
    const wrong = "ab".repeat(32);
    const refs = { components: { ...expected.components, kernel: `sha256:${wrong}` } };
    await Deno.writeTextFile(file("wrong.json"), JSON.stringify(refs));
    const { code, stdout } = await verify([
      ...["--evidence", file("q.json"), ...base, "--expect", file("wrong.json")],
    ]);
    assert.equal(code, 1, stdout);
    assert.match(stdout, /\nEAR contraindicated: .*executables 96/);
    assert.ok(
      stdout.includes(
        `fail    references [reference_mismatch]: kernel ${boot}/vmlinuz: ` +
          `sha256:${sha256(kernel)} expected sha256:${wrong}`,
      ),
      stdout,
    );
  });

  await t.step(
    "the server's EAR verifies with the published key and carries the nonce",
    async () => {
      const ear = answer.json.ear;
      assert.equal(ear.status, "affirming");
      // Any JOSE library verifies the JWT with the published JWK …
      const [jwk] = ear.jwks.keys;
      const { payload, protectedHeader } = await jwtVerify(ear.token, jwk, {
        algorithms: ["ES256"],
      });
      assert.equal(protectedHeader.kid, jwk.kid);
      assert.equal(payload.eat_profile, EAR_PROFILE);
      assert.equal(payload.eat_nonce, NONCE);
      // deno-lint-ignore no-explicit-any -- the claims set as JSON
      const submod = (payload.submods as any)["vasp-instance"];
      assert.equal(submod["ear.status"], "affirming");
      assert.equal(submod["ear.vasp.annotated-evidence"].instance_id, answer.json.instance_id);
      // … and the key is the ASP's: its AK, chained to the manufacturer CA, endorsed it.
      const chain = readCertificates(new TextEncoder().encode(answer.json.certificates.join("")));
      const root = readCertificates(await Deno.readFile(ca))[0]!;
      const verified = await verifyEar(ear.token, {
        key: ear,
        akChain: chain.slice(1),
        root,
        now: new Date(),
        nonce: NONCE,
      });
      assert.equal(verified.ok, true, JSON.stringify(verified));
      assert.equal(verified.ok && verified.status, "affirming");

      // An EAR signed by any other key is refused, whatever it claims.
      const forger = await generateKeyPair("ES256");
      const forged = await new SignJWT(decodeJwt(ear.token))
        .setProtectedHeader({ alg: "ES256", typ: "JWT", kid: jwk.kid })
        .sign(forger.privateKey);
      const forgedKey = { ...(await exportJWK(forger.publicKey)), kid: jwk.kid, alg: "ES256" };
      const refusedForged = await verifyEar(forged, {
        key: { jwks: { keys: [forgedKey] }, endorsement: ear.endorsement },
        akChain: chain.slice(1),
        root,
        now: new Date(),
        nonce: NONCE,
      });
      assert.equal(refusedForged.ok, false);
      assert.equal(!refusedForged.ok && refusedForged.reason, "ear_key_unendorsed");
      const badEndorsement = base64url.encode(new Uint8Array(64).fill(1));
      const refusedEndorsement = await verifyEar(ear.token, {
        key: { jwks: ear.jwks, endorsement: badEndorsement },
        akChain: chain.slice(1),
        root,
        now: new Date(),
        nonce: NONCE,
      });
      assert.equal(!refusedEndorsement.ok && refusedEndorsement.reason, "ear_key_unendorsed");
    },
  );

  await t.step(
    "an answer replayed for another nonce is caught, in the quote and the EAR",
    async () => {
      const { code, stdout } = await verify([
        ...["--evidence", file("q.json"), "--ca", ca, "--nonce", OTHER_NONCE],
      ]);
      assert.equal(code, 1, stdout);
      assert.match(stdout, /^quote REFUSED \[wrong_nonce\]/);
      assert.match(stdout, /\nEAR contraindicated: instance-identity 99/);
      assert.match(stdout, /\nserver EAR REFUSED \[wrong_nonce\]/);
      // A fresh answer for the other nonce verifies for it, not for the first.
      const fresh = await s.call("GET", `/v1/vms/${WEB1.uuid}/quote?nonce=${OTHER_NONCE}`, {
        token: acme,
      });
      assert.equal(fresh.status, 200);
      assert.equal(decodeJwt(fresh.json.ear.token).eat_nonce, OTHER_NONCE);
      await Deno.writeTextFile(file("q2.json"), JSON.stringify(fresh.json));
      assert.equal((await verify(["--evidence", file("q2.json"), ...base])).code, 1);
      assert.equal(
        (await verify(["--evidence", file("q2.json"), "--ca", ca, "--nonce", OTHER_NONCE])).code,
        0,
      );
    },
  );

  await t.step("--evidence excludes the raw-file flags", async () => {
    const { code, stdout } = await verify([
      ...["--evidence", file("q.json"), "--quote", file("q.json"), ...base],
    ]);
    assert.equal(code, 2, stdout);
    assert.match(stdout, /--quote and --evidence exclude each other/);
  });
});
