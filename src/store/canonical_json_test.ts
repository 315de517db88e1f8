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

// RFC 8785 (JCS) test vectors, written from the RFC's examples.

/** An IEEE 754 double from its 16 hex digits, as RFC 8785 Appendix B lists them. */
function double(hex: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
}

Deno.test("canonicalJson() writes numbers as RFC 8785 Appendix B says", () => {
  const vectors: [string, string][] = [
    ["0000000000000000", "0"],
    ["8000000000000000", "0"], // minus zero
    ["0000000000000001", "5e-324"],
    ["8000000000000001", "-5e-324"],
    ["7fefffffffffffff", "1.7976931348623157e+308"],
    ["ffefffffffffffff", "-1.7976931348623157e+308"],
    ["4340000000000000", "9007199254740992"],
    ["c340000000000000", "-9007199254740992"],
    ["4430000000000000", "295147905179352830000"],
    ["44b52d02c7e14af5", "9.999999999999997e+22"],
    ["44b52d02c7e14af6", "1e+23"],
    ["44b52d02c7e14af7", "1.0000000000000001e+23"],
    ["444b1ae4d6e2ef4e", "999999999999999700000"],
    ["444b1ae4d6e2ef4f", "999999999999999900000"],
    ["444b1ae4d6e2ef50", "1e+21"],
    ["3eb0c6f7a0b5ed8c", "9.999999999999997e-7"],
    ["3eb0c6f7a0b5ed8d", "0.000001"],
    ["41b3de4355555553", "333333333.3333332"],
    ["41b3de4355555554", "333333333.33333325"],
    ["41b3de4355555555", "333333333.3333333"],
    ["41b3de4355555556", "333333333.3333334"],
    ["41b3de4355555557", "333333333.33333343"],
    ["becbf647612f3696", "-0.0000033333333333333333"],
    ["43143ff3c1cb0959", "1424953923781206.2"],
  ];
  for (const [bits, text] of vectors) {
    assert.equal(canonicalJson(double(bits)), text, bits);
    assert.equal(canonicalList([{ n: double(bits) }]), `[{"n":${text}}]`, bits);
  }
  // NaN and Infinity have no JSON form: the RFC says serialisation fails.
  for (const bits of ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"]) {
    assert.throws(() => canonicalJson(double(bits)), TypeError, bits);
  }
});

Deno.test("canonicalJson() sorts RFC 8785's property names by UTF-16 code units (§3.2.3)", () => {
  const input = JSON.parse(`{
    "\\u20ac": "Euro Sign",
    "\\r": "Carriage Return",
    "\\ufb33": "Hebrew Letter Dalet With Dagesh",
    "1": "One",
    "\\ud83d\\ude00": "Emoji: Grinning Face",
    "\\u0080": "Control",
    "\\u00f6": "Latin Small Letter O With Diaeresis"
  }`);
  const names = Object.keys(JSON.parse(canonicalJson(input)) as object);
  // JSON.parse would reorder "1" first again; read the order from the text instead.
  const order = [...canonicalJson(input).matchAll(/"([^"]*)":"([^"]*)"/g)].map((m) => m[2]);
  assert.deepEqual(order, [
    "Carriage Return",
    "One",
    "Control",
    "Latin Small Letter O With Diaeresis",
    "Euro Sign",
    "Emoji: Grinning Face", // U+1F600 as D83D DE00 sorts before U+FB33 by code units
    "Hebrew Letter Dalet With Dagesh",
  ]);
  assert.equal(names.length, 7);
  assert.equal(canonicalList([input]), `[${canonicalJson(input)}]`);
});

Deno.test("canonicalJson() gives RFC 8785's §3.2.2 example its exact output, UTF-8 bytes included", () => {
  const input = JSON.parse(String.raw`{
    "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
    "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
    "literals": [null, true, false]
  }`);
  const expected = String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,` +
    String.raw`1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`;
  assert.equal(canonicalJson(input), expected);
  const hex = Array.from(
    new TextEncoder().encode(canonicalJson(input)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join(" ");
  // "€" is E2 82 AC in UTF-8; the control character U+000F is escaped in lower-case hex.
  assert.match(
    hex,
    /22 e2 82 ac 24 5c 75 30 30 30 66 5c 6e 41 27 42 5c 22 5c 5c 5c 5c 5c 22 2f 22/,
  );
});

Deno.test("canonicalJson() escapes as RFC 8785 §3.2.2.2: short forms, \\u00xx, the rest as is", () => {
  const controls = Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i)).join("");
  const short: Record<number, string> = { 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r" };
  const want = Array.from(
    { length: 0x20 },
    (_, i) => short[i] ?? `\\u${i.toString(16).padStart(4, "0")}`,
  ).join("");
  assert.equal(canonicalJson(controls), `"${want}"`);
  assert.equal(canonicalJson('"\\/\u007f\u2028\u2029é😀'), '"\\"\\\\/\u007f\u2028\u2029é😀"');
  assert.equal(canonicalList([controls]), `["${want}"]`);
  // A lone surrogate is outside JCS's input (I-JSON): it is written escaped, as JSON.stringify
  // does, so hostile text still gets one stable form instead of failing an audit record.
  assert.equal(canonicalJson("\ud800"), '"\\ud800"');
});
