import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { parseQuoteQuery, splitRegistration } from "./_vasp_request.ts";

Deno.test("splitRegistration() takes the configuration digest or the domain XML's SHA-256 out of the body", () => {
  const digest = "AB".repeat(32);
  assert.deepEqual(splitRegistration({ uuid: "u", config_digest: `sha256:${digest}` }), {
    vm: { uuid: "u" },
    configDigest: digest.toLowerCase(),
  });
  const xml = "<domain>é</domain>";
  assert.deepEqual(splitRegistration({ name: "n", domain_xml: xml }), {
    vm: { name: "n" },
    configDigest: createHash("sha256").update(new TextEncoder().encode(xml)).digest("hex"),
  });
  assert.deepEqual(splitRegistration({ name: "n" }), { vm: { name: "n" } });
  assert.deepEqual(splitRegistration([1]), { vm: [1] });
});

Deno.test("splitRegistration() refuses a bad digest, an empty XML, and both at once", () => {
  for (const body of [{ config_digest: "sha256:12" }, { domain_xml: "" }, { domain_xml: 3 }]) {
    assert.throws(() => splitRegistration(body), { code: "request_invalid" });
  }
  assert.throws(
    () => splitRegistration({ config_digest: `sha256:${"0".repeat(64)}`, domain_xml: "<x/>" }),
    { code: "request_invalid", message: /not both/ },
  );
});

Deno.test("parseQuoteQuery() reads the nonce, registers and bank, and refuses what a quote cannot take", () => {
  assert.deepEqual(parseQuoteQuery({ nonce: "00ff", registers: "0,8,23", alg: "sm3" }), {
    nonce: new Uint8Array([0, 255]),
    registers: [0, 8, 23],
    alg: "sm3",
  });
  assert.deepEqual(parseQuoteQuery({ nonce: "aa" }), {
    nonce: new Uint8Array([170]),
    alg: "sha256",
  });
  const bad: Record<string, string>[] = [
    {},
    { nonce: "abc" },
    { nonce: "ab".repeat(65) },
    { nonce: "ab", registers: "24" },
    { nonce: "ab", registers: "1,1" },
    { nonce: "ab", registers: "1,,2" },
    { nonce: "ab", alg: "md5" },
    { nonce: "ab", other: "1" },
  ];
  for (const query of bad) {
    assert.throws(() => parseQuoteQuery(query), { code: "request_invalid" }, JSON.stringify(query));
  }
});
