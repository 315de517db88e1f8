import assert from "node:assert/strict";
import { checkComponents, parseExpectations } from "./expect.ts";
import { isVaspError } from "../engine/error.ts";

const A = "aa".repeat(32);
const B = "bb".repeat(32);

Deno.test("parseExpectations() reads registers and component digests, one or a list", () => {
  const e = parseExpectations(JSON.stringify({
    registers: { "2": A.toUpperCase() },
    components: { kernel: `sha256:${A}`, disk: [`sha256:${A}`, `sha256:${B}`] },
  }));
  assert.deepEqual(e, { registers: { 2: A }, components: { kernel: [A], disk: [A, B] } });
  assert.deepEqual(parseExpectations("{}"), { registers: {}, components: {} });
});

Deno.test("parseExpectations() refuses what it does not know, naming it", () => {
  const cases: [unknown, RegExp][] = [
    [[], /not a JSON object/],
    [{ component: {} }, /unknown member "component"/],
    [{ components: { kernal: `sha256:${A}` } }, /unknown component "kernal"/],
    [{ components: { kernel: A } }, /is not sha256:<64 hex>/],
    [{ registers: { "24": A } }, /register "24" is not 0\.\.23/],
    [{ registers: { "1": "ab" } }, /register 1 is not 64 hex digits/],
  ];
  for (const [value, message] of cases) {
    assert.throws(
      () => parseExpectations(JSON.stringify(value)),
      (e) => isVaspError(e, "usage_invalid") && message.test(e.message),
      JSON.stringify(value),
    );
  }
  assert.throws(() => parseExpectations("{"), /not JSON/);
});

Deno.test("checkComponents() wants every entry of a referenced register approved, and one at least", () => {
  const log = [
    { reg: 2, sha256: A, sm3: A, description: "vboot kernel /k" },
    { reg: 5, sha256: A, sm3: A, description: "vboot disk disk file /a rw" },
    { reg: 5, sha256: B, sm3: B, description: "vboot disk disk file /b rw" },
    { reg: 1, sha256: B, sm3: B, description: "vboot firmware /f (not measured: gone)" },
    { reg: 2, sha256: A, sm3: A, description: "vboot kernel /k" },
  ];
  const ok = checkComponents(log, { registers: {}, components: { kernel: [A, B], disk: [B, A] } });
  assert.deepEqual(ok.matched, ["kernel", "disk"]);
  assert.deepEqual(ok.mismatches, []);
  assert.deepEqual(ok.unmeasured, ["vboot firmware /f (not measured: gone)"]);
  const bad = checkComponents(log, {
    registers: {},
    components: { kernel: [B], disk: [A], initrd: [A] },
  });
  assert.deepEqual(bad.matched, []);
  assert.deepEqual(bad.mismatches.map((m) => m.message), [
    `kernel /k: sha256:${A} expected sha256:${B}`,
    `kernel /k: sha256:${A} expected sha256:${B}`,
    `disk disk file /b rw: sha256:${B} expected sha256:${A}`,
    `initrd: not measured (no entry in register 3), expected sha256:${A}`,
  ]);
});
