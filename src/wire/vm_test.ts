import assert from "node:assert/strict";
import { NewVmRequest, QuoteQuery } from "./vm.ts";

const UUID = "4C1F6A4E-8F0B-4D8E-9A77-2A3E5F1C0B9D";

Deno.test("NewVmRequest reads a registration with its defaults, the UUID lower-cased", () => {
  assert.deepEqual(NewVmRequest.parse({ uuid: UUID, name: "web-1" }), {
    uuid: UUID.toLowerCase(),
    name: "web-1",
    tenant: "",
    labels: {},
    state: "defined",
  });
});

Deno.test("NewVmRequest refuses a bad digest, an empty XML, both at once, and unknown fields", () => {
  const vm = { uuid: UUID, name: "web-1" };
  const bad = [
    { ...vm, config_digest: "sha256:12" },
    { ...vm, domain_xml: "" },
    { ...vm, domain_xml: 3 },
    { ...vm, config_digest: `sha256:${"0".repeat(64)}`, domain_xml: "<x/>" },
    { ...vm, state: "sleeping" },
    { ...vm, labels: { "": "x" } },
    { ...vm, introspection: { memory: "/m" } },
    { ...vm, colour: "red" },
  ];
  for (const body of bad) assert.equal(NewVmRequest.safeParse(body).success, false, String(body));
});

Deno.test("QuoteQuery reads the nonce, registers and bank, and refuses what a quote cannot take", () => {
  assert.deepEqual(QuoteQuery.parse({ nonce: "00ff", registers: "0,8,23", alg: "sm3" }), {
    nonce: "00ff",
    registers: [0, 8, 23],
    alg: "sm3",
  });
  assert.deepEqual(QuoteQuery.parse({ nonce: "aa" }), { nonce: "aa", alg: "sha256" });
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
    assert.equal(QuoteQuery.safeParse(query).success, false, JSON.stringify(query));
  }
});
