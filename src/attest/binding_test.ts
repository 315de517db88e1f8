import assert from "node:assert/strict";
import { encodeBinding, parseBinding } from "./binding.ts";
import { writeTlv } from "../codec/mod.ts";

const BINDING = {
  vmUuid: "0f8fad5b-d9cb-469f-a165-70867728950e",
  instanceId: "0123456789abcdef0123456789abcdef",
  configDigest: new Uint8Array(32).fill(9),
};
const utf8 = (s: string) => new TextEncoder().encode(s);
const seq = (...parts: Uint8Array[]) =>
  writeTlv(0x30, new Uint8Array(parts.flatMap((p) => Array.from(p))));

Deno.test("parseBinding() reads back what encodeBinding() wrote", () => {
  assert.deepEqual(parseBinding(encodeBinding(BINDING)), BINDING);
});

Deno.test("parseBinding() refuses malformed values with binding_malformed", async (t) => {
  const cases: [string, Uint8Array][] = [
    ["trailing bytes", new Uint8Array([...encodeBinding(BINDING), 0])],
    ["a missing field", seq(writeTlv(0x0c, utf8(BINDING.vmUuid)), writeTlv(0x0c, utf8("00")))],
    [
      "an upper-case UUID",
      seq(
        writeTlv(0x0c, utf8(BINDING.vmUuid.toUpperCase())),
        writeTlv(0x0c, utf8(BINDING.instanceId)),
        writeTlv(0x04, BINDING.configDigest),
      ),
    ],
    [
      "a short digest",
      seq(
        writeTlv(0x0c, utf8(BINDING.vmUuid)),
        writeTlv(0x0c, utf8(BINDING.instanceId)),
        writeTlv(0x04, new Uint8Array(31)),
      ),
    ],
    [
      "a digest as a UTF8String",
      seq(
        writeTlv(0x0c, utf8(BINDING.vmUuid)),
        writeTlv(0x0c, utf8(BINDING.instanceId)),
        writeTlv(0x0c, new Uint8Array(32)),
      ),
    ],
    ["a truncated SEQUENCE", encodeBinding(BINDING).subarray(0, 20)],
  ];
  for (const [name, der] of cases) {
    await t.step(name, () => {
      assert.throws(() => parseBinding(der), { name: "VaspError", code: "binding_malformed" });
    });
  }
});
