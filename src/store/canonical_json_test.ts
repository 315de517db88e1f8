import assert from "node:assert/strict";
import { canonicalJson, canonicalList, digestInput, sha256Hex } from "./canonical_json.ts";
import { toHex } from "../codec/mod.ts";

Deno.test("canonicalJson() sorts keys at every depth and writes no whitespace", () => {
  assert.equal(
    canonicalJson({ b: [{ z: 1, a: "x" }], a: { d: null, c: true } }),
    '{"a":{"c":true,"d":null},"b":[{"a":"x","z":1}]}',
  );
});

Deno.test("canonicalJson() orders keys by UTF-16 code units", () => {
  assert.equal(
    canonicalJson({ "é": 1, "z": 2, "Z": 3, "10": 4, "9": 5 }),
    '{"10":4,"9":5,"Z":3,"z":2,"é":1}',
  );
});

Deno.test("canonicalJson() leaves out undefined members and uses toJSON", () => {
  assert.equal(
    canonicalJson({ a: undefined, t: new Date(Date.UTC(2025, 0, 2)) }),
    '{"t":"2025-01-02T00:00:00.000Z"}',
  );
});

Deno.test("canonicalJson() rejects what JSON cannot hold, naming the path", () => {
  assert.throws(() => canonicalJson({ a: [1, NaN] }), /NaN at \$\.a\[1\]/);
  assert.throws(() => canonicalJson({ n: 1n }), /bigint at \$\.n/);
  assert.throws(() => canonicalJson([undefined]), /undefined at \$\[0\]/);
  const cycle: Record<string, unknown> = {};
  cycle.self = { back: cycle };
  assert.throws(() => canonicalJson(cycle), /cycle at \$\.self\.back/);
});

Deno.test("canonicalJson() accepts the same object twice when it is not a cycle", () => {
  const shared = { x: 1 };
  assert.equal(canonicalJson([shared, shared]), '[{"x":1},{"x":1}]');
});

Deno.test("canonicalList() equals canonicalJson() for flat and for any other lists", () => {
  const lists: unknown[][] = [
    [],
    ["alert", "pause", 'q"\u2028é'],
    [{ rule: "r", policy: "p", message: "m\n", effect: "deny" }, { "é": "1", "Z": "2", "10": "3" }],
    [{ a: "x", skipped: undefined }, "s", {}],
    [{ a: 1 }, { b: null }, { c: ["x"] }, { d: { e: "f" } }, [1, "2"], null, true, 3.5],
    [{ t: new Date(Date.UTC(2025, 0, 2)) }, new Date(Date.UTC(2025, 0, 3))],
    [Object.assign(Object.create({ inherited: "i" }), { own: "o" })],
  ];
  for (const list of lists) assert.equal(canonicalList(list), canonicalJson(list));
  for (let n = 0; n < 200; n++) {
    const item: Record<string, string> = {};
    for (let k = 0; k < n % 7; k++) {
      item[String.fromCharCode(33 + ((n * 31 + k * 17) % 300))] = `${n}:${k}`;
    }
    const list = [item, String(n), { ...item, extra: `"${n}"` }];
    assert.equal(canonicalList(list), canonicalJson(list));
  }
});

Deno.test("canonicalList() rejects what canonicalJson() rejects, naming the path", () => {
  assert.throws(() => canonicalList([{ a: "x" }, { n: 1n }]), /bigint at \$\[1\]\.n/);
  assert.throws(() => canonicalList(["a", undefined]), /undefined at \$\[1\]/);
});

Deno.test("digestInput() does not depend on key order", () => {
  assert.equal(digestInput({ a: 1, b: [2] }), digestInput({ b: [2], a: 1 }));
  assert.notEqual(digestInput({ a: 1 }), digestInput({ a: 2 }));
});

Deno.test("sha256Hex() agrees with Web Crypto", async () => {
  const data = new TextEncoder().encode("vasp audit");
  const expected = toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
  assert.equal(sha256Hex(data), expected);
  assert.equal(sha256Hex("vasp audit"), expected);
});
