import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type VerifyOptions, verifyQuote, type VerifyResult } from "./verify.ts";
import { Extension, KeyUsageFlags } from "./_x509.ts";
import { type FakeAsp, fakeAsp, issue, makeQuote, T0 } from "./testing.ts";
import { toHex } from "../codec/mod.ts";

const NONCE = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
const REGS = new Map([[0, new Uint8Array(32).fill(0xaa)], [7, new Uint8Array(32).fill(0x55)]]);
const asp: FakeAsp = await fakeAsp();
const other: FakeAsp = await fakeAsp();

function instanceOptions(extra: Partial<VerifyOptions> = {}): VerifyOptions {
  return {
    chain: [asp.instance.der, asp.ak.der, asp.ek.der],
    root: asp.ca.der,
    nonce: NONCE,
    now: T0,
    ...extra,
  };
}

async function instanceQuote(): Promise<Uint8Array<ArrayBuffer>> {
  return await makeQuote(asp.instance.keys.privateKey, { nonce: NONCE, registers: REGS });
}

function refused(result: VerifyResult, reason: string, details: Record<string, unknown> = {}) {
  assert.equal(result.ok, false, `expected a refusal "${reason}", got ${JSON.stringify(result)}`);
  if (result.ok) return;
  assert.equal(result.reason, reason, result.message);
  assert.ok(result.message.length > 0);
  for (const [k, v] of Object.entries(details)) assert.deepEqual(result.details[k], v, k);
}

Deno.test("verifyQuote() accepts an instance quote and reports its binding and registers", async () => {
  const result = await verifyQuote(await instanceQuote(), instanceOptions({ vm: asp.binding }));
  assert.ok(result.ok, JSON.stringify(result));
  assert.equal(result.kind, "instance");
  assert.equal(result.alg, "sha256");
  assert.equal(result.nonce, toHex(NONCE));
  assert.deepEqual(result.registers, { 0: "aa".repeat(32), 7: "55".repeat(32) });
  assert.equal(result.binding?.vmUuid, asp.binding.vmUuid);
  assert.deepEqual(result.chain.map((c) => c.role), ["instance", "ak", "ek", "ca"]);
  assert.equal(result.chain[3]!.subject, "CN=Test Manufacturer CA");
});

Deno.test("verifyQuote() accepts an ASP quote signed by the AK with the chain AK, EK", async () => {
  const quote = await makeQuote(asp.ak.keys.privateKey, { nonce: NONCE, registers: REGS });
  const result = await verifyQuote(quote, instanceOptions({ chain: [asp.ak.der, asp.ek.der] }));
  assert.ok(result.ok, JSON.stringify(result));
  assert.equal(result.kind, "asp");
  assert.equal(result.binding, undefined);
});

Deno.test("verifyQuote() refuses a wrong nonce", async () => {
  const result = await verifyQuote(
    await instanceQuote(),
    instanceOptions({ nonce: NONCE.slice(1) }),
  );
  refused(result, "wrong_nonce", { actual: toHex(NONCE) });
});

Deno.test("verifyQuote() refuses a quote with one register byte changed as badly signed", async () => {
  const quote = await instanceQuote();
  quote[16 + NONCE.length + 5]! ^= 1;
  refused(await verifyQuote(quote, instanceOptions()), "bad_signature", { signer: "instance" });
});

Deno.test("verifyQuote() refuses a quote with one signature byte flipped", async () => {
  const quote = await instanceQuote();
  quote[quote.length - 10]! ^= 0x80;
  refused(await verifyQuote(quote, instanceOptions()), "bad_signature");
});

Deno.test("verifyQuote() refuses a quote signed by another key than the signer certificate's", async () => {
  const quote = await makeQuote(other.instance.keys.privateKey, { nonce: NONCE, registers: REGS });
  refused(await verifyQuote(quote, instanceOptions()), "bad_signature");
});

Deno.test("verifyQuote() refuses registers that differ from the expected values", async () => {
  const quote = await instanceQuote();
  const ok = await verifyQuote(quote, instanceOptions({ registers: { 7: "55".repeat(32) } }));
  assert.ok(ok.ok);
  const bad = await verifyQuote(quote, instanceOptions({ registers: { 7: "56".repeat(32) } }));
  refused(bad, "register_mismatch", { register: 7, source: "expected" });
  const missing = await verifyQuote(quote, instanceOptions({ registers: { 3: "00".repeat(32) } }));
  refused(missing, "register_mismatch", { register: 3 });
});

Deno.test("verifyQuote() replays an event log against the quoted registers of either bank", async () => {
  const data = [new TextEncoder().encode("kernel"), new TextEncoder().encode("initrd")];
  const log = data.map((d) => ({
    reg: 4,
    sha256: createHash("sha256").update(d).digest("hex"),
    sm3: createHash("sm3").update(d).digest("hex"),
    description: "boot",
  }));
  for (const [alg, value] of [["sha256", 0], ["sm3", 1]] as const) {
    let reg = new Uint8Array(32);
    for (const e of log) {
      reg = new Uint8Array(createHash(alg).update(reg).update(Buffer.from(e[alg], "hex")).digest());
    }
    const regs = new Map([[4, reg], [5, new Uint8Array(32)]]);
    const quote = await makeQuote(asp.instance.keys.privateKey, {
      nonce: NONCE,
      registers: regs,
      alg: value,
    });
    const ok = await verifyQuote(quote, instanceOptions({ eventLog: log }));
    assert.ok(ok.ok, `${alg}: ${JSON.stringify(ok)}`);
    const short = await verifyQuote(quote, instanceOptions({ eventLog: log.slice(1) }));
    refused(short, "register_mismatch", { register: 4, source: "replayed" });
  }
});

Deno.test("verifyQuote() refuses an instance certificate from another ASP in the chain", async () => {
  const quote = await makeQuote(other.instance.keys.privateKey, { nonce: NONCE, registers: REGS });
  const result = await verifyQuote(
    quote,
    instanceOptions({ chain: [other.instance.der, asp.ak.der, asp.ek.der] }),
  );
  refused(result, "chain_broken", { cert: "instance", issuer: "ak", check: "signature" });
});

Deno.test("verifyQuote() refuses a certificate forged under its issuer's name", async () => {
  const forged = await issue({
    name: "CN=Test AK",
    issuer: asp.ek,
    ca: true,
    signingKey: other.ek.keys.privateKey,
  });
  const result = await verifyQuote(
    await makeQuote(forged.keys.privateKey, { nonce: NONCE, registers: REGS }),
    instanceOptions({ chain: [forged.der, asp.ek.der] }),
  );
  refused(result, "chain_broken", { cert: "ak", issuer: "ek" });
});

Deno.test("verifyQuote() refuses a chain under a foreign root", async () => {
  const result = await verifyQuote(await instanceQuote(), instanceOptions({ root: other.ca.der }));
  refused(result, "foreign_root", { cert: "ek" });
});

Deno.test("verifyQuote() refuses certificates outside their validity, naming the certificate", async () => {
  const late = new Date(T0.getTime() + 400 * 86_400_000);
  refused(await verifyQuote(await instanceQuote(), instanceOptions({ now: late })), "cert_expired");
  const early = new Date(T0.getTime() - 2 * 86_400_000);
  refused(
    await verifyQuote(await instanceQuote(), instanceOptions({ now: early })),
    "cert_not_yet_valid",
  );
  const instance = await issue({
    name: "CN=Short-lived instance",
    issuer: asp.ak,
    binding: asp.binding,
    notAfter: new Date(T0.getTime() - 1000),
  });
  const result = await verifyQuote(
    await makeQuote(instance.keys.privateKey, { nonce: NONCE, registers: REGS }),
    instanceOptions({ chain: [instance.der, asp.ak.der, asp.ek.der] }),
  );
  refused(result, "cert_expired", { cert: "instance" });
});

Deno.test("verifyQuote() refuses a quote bound to another VM or configuration", async () => {
  const quote = await instanceQuote();
  const otherVm = { vmUuid: "11111111-2222-4333-8444-555555555555" };
  refused(await verifyQuote(quote, instanceOptions({ vm: otherVm })), "wrong_vm", {
    check: "vm_uuid",
  });
  const otherConfig = { vmUuid: asp.binding.vmUuid, configDigest: new Uint8Array(32) };
  refused(await verifyQuote(quote, instanceOptions({ vm: otherConfig })), "wrong_vm", {
    check: "config_digest",
  });
  const otherId = { vmUuid: asp.binding.vmUuid, instanceId: "f".repeat(32) };
  refused(await verifyQuote(quote, instanceOptions({ vm: otherId })), "wrong_vm", {
    check: "instance_id",
  });
});

Deno.test("verifyQuote() refuses an ASP quote where a VM's instance quote is expected", async () => {
  const quote = await makeQuote(asp.ak.keys.privateKey, { nonce: NONCE, registers: REGS });
  const result = await verifyQuote(
    quote,
    instanceOptions({ chain: [asp.ak.der, asp.ek.der], vm: asp.binding }),
  );
  refused(result, "wrong_vm");
});

Deno.test("verifyQuote() refuses an instance certificate without a binding", async () => {
  const bare = await issue({ name: "CN=Unbound", issuer: asp.ak });
  const result = await verifyQuote(
    await makeQuote(bare.keys.privateKey, { nonce: NONCE, registers: REGS }),
    instanceOptions({ chain: [bare.der, asp.ak.der, asp.ek.der] }),
  );
  refused(result, "wrong_vm", { check: "binding_missing" });
});

Deno.test("verifyQuote() refuses malformed quotes and certificates", async () => {
  const quote = await instanceQuote();
  refused(await verifyQuote(quote.subarray(0, 40), instanceOptions()), "quote_malformed");
  refused(await verifyQuote(new Uint8Array(200), instanceOptions()), "quote_malformed");
  const junk = new Uint8Array([0x30, 0x03, 1, 2, 3]);
  refused(
    await verifyQuote(quote, instanceOptions({ chain: [junk, asp.ak.der, asp.ek.der] })),
    "certificate_malformed",
  );
  refused(await verifyQuote(quote, instanceOptions({ chain: [asp.ek.der] })), "chain_broken", {
    check: "length",
  });
});

Deno.test("verifyQuote() refuses issuers that break the CA profile", async (t) => {
  const cases: [string, () => Promise<FakeAsp["ak"]>, string][] = [
    ["an AK that is not a CA", () => issue({ name: "CN=AK", issuer: asp.ek }), "basic_constraints"],
    [
      "an AK without keyCertSign",
      () =>
        issue({
          name: "CN=AK",
          issuer: asp.ek,
          ca: true,
          usages: KeyUsageFlags.digitalSignature,
        }),
      "key_usage",
    ],
    [
      "an AK with an unknown critical extension",
      () =>
        issue({
          name: "CN=AK",
          issuer: asp.ek,
          ca: true,
          extraExtensions: [new Extension("1.2.3.4", true, new Uint8Array([5, 0]))],
        }),
      "critical_extension",
    ],
  ];
  for (const [name, make, check] of cases) {
    await t.step(name, async () => {
      const ak = await make();
      const instance = await issue({ name: "CN=I", issuer: ak, binding: asp.binding });
      const result = await verifyQuote(
        await makeQuote(instance.keys.privateKey, { nonce: NONCE, registers: REGS }),
        instanceOptions({ chain: [instance.der, ak.der, asp.ek.der] }),
      );
      refused(result, "chain_broken", { cert: "ak", check });
    });
  }
  await t.step("an EK whose path length allows no CA below it", async () => {
    const ek = await issue({ name: "CN=EK0", issuer: asp.ca, ca: true, pathLength: 0 });
    const ak = await issue({ name: "CN=AK", issuer: ek, ca: true });
    const instance = await issue({ name: "CN=I", issuer: ak, binding: asp.binding });
    const result = await verifyQuote(
      await makeQuote(instance.keys.privateKey, { nonce: NONCE, registers: REGS }),
      instanceOptions({ chain: [instance.der, ak.der, ek.der] }),
    );
    refused(result, "chain_broken", { cert: "ek", check: "path_length" });
  });
  await t.step("a signer whose keyUsage forbids signing", async () => {
    const instance = await issue({
      name: "CN=I",
      issuer: asp.ak,
      binding: asp.binding,
      usages: KeyUsageFlags.keyEncipherment,
    });
    const result = await verifyQuote(
      await makeQuote(instance.keys.privateKey, { nonce: NONCE, registers: REGS }),
      instanceOptions({ chain: [instance.der, asp.ak.der, asp.ek.der] }),
    );
    refused(result, "chain_broken", { cert: "instance", check: "key_usage" });
  });
});

Deno.test("verifyQuote() throws a TypeError for an invalid `now`", async () => {
  await assert.rejects(
    verifyQuote(await instanceQuote(), instanceOptions({ now: new Date(NaN) })),
    TypeError,
  );
});

Deno.test("verifyQuote() refuses an event log it cannot replay instead of throwing", async () => {
  const log = [{ reg: 24, sha256: "00".repeat(32), sm3: "00".repeat(32), description: "x" }];
  refused(
    await verifyQuote(await instanceQuote(), instanceOptions({ eventLog: log })),
    "malformed_event_log",
  );
  const short = [{ reg: 1, sha256: "00", sm3: "00", description: "x" }];
  refused(
    await verifyQuote(await instanceQuote(), instanceOptions({ eventLog: short })),
    "malformed_event_log",
  );
});
