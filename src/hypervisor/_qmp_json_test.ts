import assert from "node:assert/strict";
import { MAX_INPUT_BYTES, parseQmp, QmpInputSplitter } from "./_qmp_json.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const split = (parts: string[]) => {
  const s = new QmpInputSplitter();
  return parts.flatMap((p) => s.push(enc(p))).map((
    i,
  ) => [i.kind, new TextDecoder().decode(i.bytes)]);
};

Deno.test("QmpInputSplitter splits back-to-back values, across chunks, braces in strings kept", () => {
  assert.deepEqual(
    split(['{"execute":"stop"}{"exe', 'cute":"cont","arguments":{"x":"}{\\""}}\n']),
    [
      ["value", '{"execute":"stop"}'],
      ["value", '{"execute":"cont","arguments":{"x":"}{\\""}}'],
    ],
  );
  assert.deepEqual(split(["{'a': '}'}"]), [["value", "{'a': '}'}"]]);
});

Deno.test("QmpInputSplitter hands back stray bytes at once and refuses endless input", () => {
  assert.deepEqual(split(["42 @", "{}"]), [["junk", "42"], ["junk", "@"], ["value", "{}"]]);
  const s = new QmpInputSplitter();
  assert.throws(() => s.push(enc("[".repeat(1025))), RangeError);
  const big = new QmpInputSplitter();
  assert.throws(
    () => big.push(new Uint8Array(MAX_INPUT_BYTES + 2).fill(0x20).fill(0x7b, 0, 1)),
    RangeError,
  );
});

Deno.test("parseQmp() reads QEMU's dialect and keeps each top-level member's source text", () => {
  const { value, raw } = parseQmp(`{'execute': "st\\u006fp", "id": 123456789012345678901}`);
  assert.deepEqual(value, { execute: "stop", id: 123456789012345678901 });
  assert.equal(raw.id, "123456789012345678901");
});

Deno.test("parseQmp() refuses what QEMU refuses: duplicate keys, \\u0000, control characters", () => {
  assert.throws(() => parseQmp('{"execute":"cont","execute":"stop"}'), /duplicate key/);
  assert.throws(() => parseQmp('{"a":"\\u0000"}'), /\\u0000/);
  assert.throws(() => parseQmp('{"a":"x\ny"}'), /control character/);
  assert.throws(() => parseQmp('{"a":1} x'), /stray 'x'/);
  assert.throws(() => parseQmp('{"a":tru}'), /JSON parse error/);
});
