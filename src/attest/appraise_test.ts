import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { EventLogEntry } from "../../ffi/event_log.ts";
import { type AppraiseOptions, appraiseQuote, type Evidence } from "./appraise.ts";
import { EAR_PROFILE, statusOf, tierOf } from "./ear.ts";
import { EarIssuer, verifyEar } from "./ear_jwt.ts";
import { parseExpectations } from "./expect.ts";
import { replayEventLog } from "./replay.ts";
import { fakeAsp, makeQuote, T0 } from "./testing.ts";
import { toHex } from "../codec/mod.ts";

const NONCE = new Uint8Array([9, 8, 7, 6, 5, 4, 3, 2]);
const asp = await fakeAsp();
const other = await fakeAsp();
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const sm3 = (text: string) => createHash("sm3").update(text).digest("hex");
const entry = (reg: number, data: string, description: string): EventLogEntry => ({
  reg,
  sha256: sha256(data),
  sm3: sm3(data),
  description,
});
const LOG = [
  entry(0, "<domain/>", `vboot domain XML of "web" (${asp.binding.vmUuid})`),
  entry(2, "kernel bytes", "vboot kernel /boot/vmlinuz"),
  entry(4, "console=ttyS0", "vboot kernel command line"),
];

async function evidence(log: readonly EventLogEntry[] = LOG): Promise<Evidence> {
  const regs = replayEventLog(log, "sha256");
  const quote = await makeQuote(asp.instance.keys.privateKey, {
    nonce: NONCE,
    registers: new Map(regs.map((value, reg) => [reg, value])),
  });
  return { quote, chain: [asp.instance.der, asp.ak.der, asp.ek.der], eventLog: log };
}

const OPTIONS: AppraiseOptions = {
  root: asp.ca.der,
  nonce: NONCE,
  now: T0,
  vm: { vmUuid: asp.binding.vmUuid, configDigest: asp.binding.configDigest },
  policyId: "test",
};
const REFS = parseExpectations(JSON.stringify({
  components: {
    kernel: `sha256:${sha256("kernel bytes")}`,
    cmdline: `sha256:${sha256("console=ttyS0")}`,
  },
}));

Deno.test("statusOf() is the worst tier among the claims", () => {
  assert.deepEqual([-1, 0, 1, 2, 31, 32, 95, 96, 127].map(tierOf), [
    "contraindicated",
    "none",
    "none",
    "affirming",
    "affirming",
    "warning",
    "warning",
    "contraindicated",
    "contraindicated",
  ]);
  assert.equal(statusOf({ hardware: 2, executables: 3 }), "affirming");
  assert.equal(statusOf({ hardware: 2, executables: 33 }), "warning");
  assert.equal(statusOf({ hardware: 97, executables: 33 }), "contraindicated");
});

Deno.test("appraiseQuote() affirms a sound quote whose boot matches its references", async () => {
  const a = await appraiseQuote(await evidence(), { ...OPTIONS, expect: REFS });
  assert.equal(a.status, "affirming");
  assert.deepEqual(a.submod["ear.trustworthiness-vector"], {
    "instance-identity": 2,
    hardware: 2,
    configuration: 2,
    executables: 3,
  });
  assert.equal(a.submod["ear.vasp.annotated-evidence"].vm_uuid, asp.binding.vmUuid);
});

Deno.test("appraiseQuote() makes no executables claim without references", async () => {
  const a = await appraiseQuote(await evidence(), OPTIONS);
  assert.equal(a.status, "affirming");
  assert.equal(a.submod["ear.trustworthiness-vector"].executables, undefined);
  const refs = a.submod["ear.vasp.checks"].find((c) => c.check === "references");
  assert.equal(refs?.outcome, "skipped");
});

Deno.test("appraiseQuote() contraindicates a component that differs, naming it", async () => {
  const log = [...LOG.slice(0, 1), entry(2, "other kernel", "vboot kernel /boot/vmlinuz"), LOG[2]!];
  const a = await appraiseQuote(await evidence(log), { ...OPTIONS, expect: REFS });
  assert.equal(a.status, "contraindicated");
  assert.equal(a.submod["ear.trustworthiness-vector"].executables, 96);
  const refs = a.submod["ear.vasp.checks"].find((c) => c.check === "references");
  assert.equal(
    refs?.message,
    `kernel /boot/vmlinuz: sha256:${sha256("other kernel")} expected ` +
      `sha256:${sha256("kernel bytes")}`,
  );
});

Deno.test("appraiseQuote() warns of an entry that was not measured", async () => {
  const log = [...LOG, entry(3, "unreadable", "vboot initrd /boot/i (not measured: too big)")];
  const a = await appraiseQuote(await evidence(log), { ...OPTIONS, expect: REFS });
  assert.equal(a.status, "warning");
  assert.equal(a.submod["ear.trustworthiness-vector"].executables, 33);
});

Deno.test("appraiseQuote() names the failed check and leaves the later ones not run", async () => {
  const cases: [string, Partial<AppraiseOptions>, string, Record<string, number>][] = [
    ["foreign CA", { root: other.ca.der }, "chain", { hardware: 97 }],
    ["wrong nonce", { nonce: new Uint8Array(8) }, "nonce", { "instance-identity": 99 }],
    ["wrong VM", { vm: { vmUuid: "1f8fad5b-d9cb-469f-a165-70867728950e" } }, "binding", {
      "instance-identity": 97,
    }],
    [
      "wrong configuration",
      { vm: { vmUuid: asp.binding.vmUuid, configDigest: new Uint8Array(32) } },
      "binding",
      { configuration: 96 },
    ],
    [
      "wrong register",
      { expect: { registers: { 2: "00".repeat(32) }, components: {} } },
      "registers",
      { executables: 96 },
    ],
  ];
  for (const [what, extra, check, vector] of cases) {
    const a = await appraiseQuote(await evidence(), { ...OPTIONS, ...extra });
    assert.equal(a.status, "contraindicated", what);
    assert.deepEqual(a.submod["ear.trustworthiness-vector"], vector, what);
    const checks = a.submod["ear.vasp.checks"];
    const at = checks.findIndex((c) => c.outcome === "fail");
    assert.equal(checks[at]?.check, check, what);
    assert.ok(checks.slice(at + 1).every((c) => c.outcome === "not_run"), what);
  }
  const bad = await appraiseQuote({ ...await evidence(), quote: new Uint8Array(3) }, OPTIONS);
  assert.equal(bad.submod["ear.vasp.checks"][0]?.reason, "quote_malformed");
});

Deno.test("an EarIssuer's EAR verifies with its AK-endorsed key, and only for its nonce", async () => {
  const signAk = async (data: Uint8Array) => {
    const prefixed = new Uint8Array([...new TextEncoder().encode("VASPSG01"), ...data]);
    return new Uint8Array(
      await crypto.subtle.sign(
        { name: "ECDSA", hash: "SHA-256" },
        asp.ak.keys.privateKey,
        prefixed,
      ),
    );
  };
  const issuer = await EarIssuer.create({ sign: signAk, root: asp.ca.der, build: "test" });
  const ear = await issuer.issue(await evidence(), { nonce: NONCE, now: T0, vm: OPTIONS.vm });
  assert.equal(ear.status, "affirming");
  const options = {
    key: issuer.key,
    akChain: [asp.ak.der, asp.ek.der],
    root: asp.ca.der,
    now: T0,
    nonce: toHex(NONCE),
  };
  const ok = await verifyEar(ear.token, options);
  assert.ok(ok.ok, JSON.stringify(ok));
  assert.equal(ok.claims.eat_profile, EAR_PROFILE);
  assert.equal(ok.claims.iat, T0.getTime() / 1000);
  const wrong = await verifyEar(ear.token, { ...options, nonce: "00".repeat(8) });
  assert.equal(!wrong.ok && wrong.reason, "wrong_nonce");
  const [head, body, sig] = ear.token.split(".");
  const altered = `${head}.${body!.slice(0, -2)}AA.${sig}`;
  assert.equal((await verifyEar(altered, options) as { reason: string }).reason, "ear_invalid");
  const foreign = await verifyEar(ear.token, {
    ...options,
    akChain: [other.ak.der, other.ek.der],
    root: other.ca.der,
  });
  assert.equal(!foreign.ok && foreign.reason, "ear_key_unendorsed");
  const untrusted = await verifyEar(ear.token, { ...options, root: other.ca.der });
  assert.equal(!untrusted.ok && untrusted.reason, "foreign_root");
});
