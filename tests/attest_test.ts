import assert from "node:assert/strict";
import { Asp, type VaspInstance } from "../ffi/mod.ts";
import { toPem, type VerifyOptions, verifyQuote, type VerifyResult } from "../src/attest/mod.ts";
import { tempStateDir } from "./fixtures/state_dir.ts";

const VM = "0f8fad5b-d9cb-469f-a165-70867728950e";
const CONFIG = new Uint8Array(32).fill(3);
const utf8 = (s: string) => new TextEncoder().encode(s);
const YEAR = 365.25 * 86_400_000;

/** Two real ASPs, each with one instance for VM, measured a little. */
async function twoAsps() {
  const dirs = [await tempStateDir(), await tempStateDir()];
  const asps = dirs.map((d) => Asp.open(d.path));
  const instances = asps.map((a) => a.createInstance(VM, CONFIG));
  asps.forEach((a, i) => a.extend(0, utf8(`host ${i}`), "host"));
  instances.forEach((inst, i) => {
    inst.extend(4, utf8(`kernel ${i}`), "kernel");
    inst.extend(4, utf8("initrd"), "initrd");
  });
  return {
    asp: asps[0]!,
    inst: instances[0]!,
    other: asps[1]!,
    otherInst: instances[1]!,
    async [Symbol.asyncDispose]() {
      asps.forEach((a) => a.close());
      for (const d of dirs) await d[Symbol.asyncDispose]();
    },
  };
}

function instanceOptions(asp: Asp, inst: VaspInstance, nonce: Uint8Array): VerifyOptions {
  return {
    chain: [inst.certificate(), asp.certificate("ak"), asp.certificate("ek")],
    root: asp.certificate("ca"),
    nonce,
    now: new Date(),
    vm: { vmUuid: VM, configDigest: CONFIG, instanceId: inst.id },
    eventLog: inst.eventLog(),
  };
}

function refused(result: VerifyResult, reason: string, details: Record<string, unknown> = {}) {
  assert.equal(result.ok, false, `expected "${reason}", got ${JSON.stringify(result)}`);
  if (result.ok) return;
  assert.equal(result.reason, reason, result.message);
  for (const [k, v] of Object.entries(details)) assert.deepEqual(result.details[k], v, k);
}

Deno.test("a quote of the real ASP verifies against its manufacturer CA and event log", async () => {
  await using s = await twoAsps();
  const nonce = crypto.getRandomValues(new Uint8Array(32));
  for (const alg of ["sha256", "sm3"] as const) {
    const quote = s.asp.quote(nonce, { alg });
    const result = await verifyQuote(quote.bytes, {
      chain: [s.asp.certificate("ak"), s.asp.certificate("ek")],
      root: s.asp.certificate("ca"),
      nonce,
      now: new Date(),
      eventLog: s.asp.eventLog(),
    });
    assert.ok(result.ok, `${alg}: ${JSON.stringify(result)}`);
    assert.equal(result.kind, "asp");
    assert.equal(result.alg, alg);
  }
});

Deno.test("a quote of a real vASP instance verifies with its VM binding and event log", async () => {
  await using s = await twoAsps();
  const nonce = crypto.getRandomValues(new Uint8Array(16));
  const quote = s.inst.quote(nonce, { registers: [0, 4], alg: "sm3" });
  const result = await verifyQuote(quote.bytes, instanceOptions(s.asp, s.inst, nonce));
  assert.ok(result.ok, JSON.stringify(result));
  assert.equal(result.kind, "instance");
  assert.deepEqual(result.binding, { vmUuid: VM, instanceId: s.inst.id, configDigest: CONFIG });
});

Deno.test("every tampering with a real quote or its chain is refused with its reason", async (t) => {
  await using s = await twoAsps();
  const nonce = crypto.getRandomValues(new Uint8Array(16));
  const quote = s.inst.quote(nonce).bytes;
  const base = instanceOptions(s.asp, s.inst, nonce);
  const [instCert, ak, ek] = base.chain;
  const check = async (
    name: string,
    bytes: Uint8Array,
    change: Partial<VerifyOptions>,
    reason: string,
    details: Record<string, unknown> = {},
  ) => {
    await t.step(name, async () => {
      refused(await verifyQuote(bytes, { ...base, ...change }), reason, details);
    });
  };
  const flip = (at: number) => quote.map((b, i) => i === at ? b ^ 1 : b);
  assert.ok((await verifyQuote(quote, base)).ok);
  await check("a wrong nonce", quote, { nonce: nonce.map((b) => b ^ 0xff) }, "wrong_nonce");
  await check("a changed register byte", flip(16 + 16 + 4 * 32 + 7), {}, "bad_signature");
  await check("a flipped signature byte", flip(quote.length - 1), {}, "bad_signature");
  await check(
    "an instance certificate from another ASP swapped into the chain",
    quote,
    { chain: [s.otherInst.certificate(), ak!, ek!] },
    "chain_broken",
    { cert: "instance", issuer: "ak" },
  );
  await check(
    "another ASP's AK swapped into the chain",
    quote,
    { chain: [instCert!, s.other.certificate("ak"), ek!] },
    "chain_broken",
    { cert: "ak", issuer: "ek" },
  );
  await check(
    "a foreign manufacturer CA",
    quote,
    { root: s.other.certificate("ca") },
    "foreign_root",
  );
  await check(
    "a time past the certificates' expiry",
    quote,
    { now: new Date(Date.now() + 30 * YEAR) },
    "cert_expired",
  );
  await check(
    "a time before the certificates were issued",
    quote,
    { now: new Date(Date.now() - YEAR) },
    "cert_not_yet_valid",
  );
  await check(
    "another VM expected",
    quote,
    { vm: { vmUuid: "6ba7b810-9dad-41d1-80b4-00c04fd430c8" } },
    "wrong_vm",
    { check: "vm_uuid" },
  );
  await check(
    "another configuration expected",
    quote,
    { vm: { vmUuid: VM, configDigest: new Uint8Array(32) } },
    "wrong_vm",
    { check: "config_digest" },
  );
  await check(
    "another instance's event log",
    quote,
    { eventLog: s.otherInst.eventLog() },
    "register_mismatch",
    { register: 4, source: "replayed" },
  );
  await check(
    "an expected register value that differs",
    quote,
    { registers: { 4: new Uint8Array(32) } },
    "register_mismatch",
    { register: 4, source: "expected" },
  );
  await check("a truncated quote", quote.subarray(0, quote.length - 1), {}, "quote_malformed");
});

Deno.test("vasp attest verify checks quote files offline, exiting 0, 1 or 2", async (t) => {
  await using s = await twoAsps();
  await using files = await tempStateDir();
  const nonce = crypto.getRandomValues(new Uint8Array(16));
  const hexNonce = Buffer.from(nonce).toString("hex");
  const path = (name: string) => `${files.path}/${name}`;
  await Deno.writeFile(path("quote.bin"), s.inst.quote(nonce, { registers: [4] }).bytes);
  const chain = [s.inst.certificate(), s.asp.certificate("ak"), s.asp.certificate("ek")];
  await Deno.writeTextFile(path("chain.pem"), chain.map(toPem).join(""));
  await Deno.writeTextFile(path("log.json"), JSON.stringify(s.inst.eventLog()));
  const ca = `${s.asp.stateDir}/manufacturer-ca.pem`;
  const args = ["--quote", path("quote.bin"), "--chain", path("chain.pem"), "--ca", ca];
  const run = async (extra: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "src/cli/main.ts", "attest", "verify", ...extra],
      cwd: new URL("..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
  };
  await t.step("a sound quote exits 0 and reports the binding", async () => {
    const { code, stdout } = await run([
      ...args,
      "--nonce",
      hexNonce,
      "--vm",
      VM,
      "--event-log",
      path("log.json"),
      "--json",
    ]);
    assert.equal(code, 0, stdout);
    const result = JSON.parse(stdout);
    assert.equal(result.ok, true);
    assert.equal(result.binding.instance_id, s.inst.id);
    assert.equal(result.binding.config_digest, `sha256:${"03".repeat(32)}`);
  });
  await t.step("a wrong nonce exits 1 with its reason", async () => {
    const { code, stdout } = await run([...args, "--nonce", "00".repeat(16)]);
    assert.equal(code, 1);
    assert.match(stdout, /REFUSED \[wrong_nonce\]/);
  });
  await t.step("a foreign CA exits 1 with foreign_root", async () => {
    const foreign = `${s.other.stateDir}/manufacturer-ca.pem`;
    const { code, stdout } = await run([
      ...args.slice(0, 4),
      "--ca",
      foreign,
      "--nonce",
      hexNonce,
      "--json",
    ]);
    assert.equal(code, 1);
    assert.equal(JSON.parse(stdout).reason, "foreign_root");
  });
  await t.step("a missing --nonce is a usage error, exit 2", async () => {
    assert.equal((await run(args)).code, 2);
  });
});
