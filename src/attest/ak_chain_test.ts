import assert from "node:assert/strict";
import { checkAkChain } from "./ak_chain.ts";
import { fakeAsp, issue, T0 } from "./testing.ts";

const ECDSA = { name: "ECDSA", hash: "SHA-256" } as const;

Deno.test("checkAkChain() trusts an [AK, EK] chain from the trusted CA and gives the AK's key", async () => {
  const asp = await fakeAsp();
  const trusted = await checkAkChain([asp.ak.der, asp.ek.der], { root: asp.ca.der, now: T0 });
  assert.equal(trusted.ok, true, JSON.stringify(trusted));
  if (!trusted.ok) return;
  assert.equal(trusted.ak.subject, "CN=Test AK");
  const data = new Uint8Array([1, 2, 3]);
  const signature = await crypto.subtle.sign(ECDSA, asp.ak.keys.privateKey, data);
  assert.equal(await crypto.subtle.verify(ECDSA, trusted.key, signature, data), true);
  const byEk = await crypto.subtle.sign(ECDSA, asp.ek.keys.privateKey, data);
  assert.equal(await crypto.subtle.verify(ECDSA, trusted.key, byEk, data), false);
});

Deno.test("checkAkChain() refuses another ASP's chain, an instance, a wrong length and junk", async () => {
  const asp = await fakeAsp();
  const other = await fakeAsp();
  const check = (chain: Uint8Array[]) => checkAkChain(chain, { root: asp.ca.der, now: T0 });
  const foreign = await check([other.ak.der, other.ek.der]);
  assert.equal(foreign.ok ? "ok" : foreign.reason, "foreign_root");
  const instance = await check([asp.instance.der, asp.ak.der]);
  assert.equal(instance.ok ? "ok" : instance.reason, "foreign_root");
  const long = await check([asp.instance.der, asp.ak.der, asp.ek.der]);
  assert.equal(long.ok ? "ok" : long.reason, "chain_broken");
  assert.match(long.ok ? "" : long.message, /3 certificates is not \[AK, EK\]/);
  const junk = await check([new Uint8Array([0x30, 1, 2]), asp.ek.der]);
  assert.equal(junk.ok ? "ok" : junk.reason, "certificate_malformed");
  const badRoot = await checkAkChain([asp.ak.der, asp.ek.der], {
    root: new Uint8Array(3),
    now: T0,
  });
  assert.equal(badRoot.ok ? "ok" : badRoot.reason, "certificate_malformed");
});

Deno.test("checkAkChain() refuses an expired AK and needs a valid time", async () => {
  const asp = await fakeAsp();
  const old = await issue({
    name: "CN=Old AK",
    issuer: asp.ek,
    ca: true,
    pathLength: 0,
    notBefore: new Date("2020-01-01T00:00:00Z"),
    notAfter: new Date("2021-01-01T00:00:00Z"),
  });
  const expired = await checkAkChain([old.der, asp.ek.der], { root: asp.ca.der, now: T0 });
  assert.equal(expired.ok ? "ok" : expired.reason, "cert_expired");
  await assert.rejects(
    checkAkChain([asp.ak.der, asp.ek.der], { root: asp.ca.der, now: new Date(NaN) }),
    TypeError,
  );
});
