import assert from "node:assert/strict";
import { parseQmp, QMP_LIMITS, QmpInputSplitter } from "./_qmp_json.ts";

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

Deno.test("QmpInputSplitter hands back stray bytes at once", () => {
  assert.deepEqual(split(["42 @", "{}"]), [["junk", "42"], ["junk", "@"], ["value", "{}"]]);
});

Deno.test("QmpInputSplitter refuses a value over a limit and drops it up to its last bracket", () => {
  // The smuggle: QEMU drops the message at its 2,097,152th token and runs what follows.
  const ids = "0,".repeat(QMP_LIMITS.tokens);
  assert.deepEqual(
    split([`{"execute":"query-status","id":[${ids}{"execute":"stop"}]}`, '{"execute":"cont"}']),
    [["refused", ""], ["value", '{"execute":"cont"}']],
  );
  const reason = (input: string) => new QmpInputSplitter().push(enc(input))[0]?.reason;
  assert.match(reason("[".repeat(QMP_LIMITS.depth + 1))!, /nesting depth limit exceeded/);
  assert.equal(
    split(["[".repeat(QMP_LIMITS.depth) + "]".repeat(QMP_LIMITS.depth)])[0]![0],
    "value",
  );
  assert.match(reason(`{"a":"${"x".repeat(QMP_LIMITS.bytes)}"}`)!, /token size limit exceeded/);
  // Brackets inside a dropped value's strings do not end it early.
  assert.deepEqual(
    split([`[${"[".repeat(QMP_LIMITS.depth)}"]]]]"`, "]".repeat(QMP_LIMITS.depth + 1), "{}"]),
    [["refused", ""], ["value", "{}"]],
  );
});

Deno.test("QmpInputSplitter counts tokens as QEMU's lexer does", () => {
  // Strings, numbers, literals and structural characters are one token each; white space none.
  const n = QMP_LIMITS.tokens;
  const exactly = `[${"1,".repeat((n - 3) / 2)}1]`; // n - 1 tokens: "[" + (n-3) + "1" + "]"
  assert.equal(split([exactly])[0]![0], "value");
  assert.equal(split([`[ ${'"a" , '.repeat(n / 2)}1]`])[0]![0], "refused");
  assert.equal(split([`[${"true,".repeat(n / 2 - 2)}1 ]`])[0]![0], "value"); // n - 1 tokens
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
