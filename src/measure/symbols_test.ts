import assert from "node:assert/strict";
import { parseSymbolMap } from "./symbols.ts";
import { FAKE, fakeSymbols } from "./testing.ts";

Deno.test("parseSymbolMap() reads System.map and kallsyms lines, module names included", () => {
  const syms = parseSymbolMap(
    "ffffffff81000000 T _text\nffffffffc0002000 t helper\t[virtio_net]\n\n",
    "kallsyms",
  );
  assert.equal(syms.require("_text"), 0xffffffff81000000n);
  assert.equal(syms.get("helper"), 0xffffffffc0002000n);
  assert.equal(syms.get("absent"), undefined);
  assert.equal(syms.size, 2);
});

Deno.test("parseSymbolMap() names the line it cannot parse", () => {
  assert.throws(
    () => parseSymbolMap("ffffffff81000000 T _text\nnot a symbol line\n", "bad.map"),
    { name: "VaspError", code: "symbols_invalid", message: /line 2 of "bad.map"/ },
  );
});

Deno.test("parseSymbolMap() refuses an empty file and kallsyms read without privilege", () => {
  assert.throws(() => parseSymbolMap("\n", "empty"), { code: "symbols_invalid" });
  assert.throws(
    () => parseSymbolMap("0000000000000000 T _text\n0000000000000000 T _stext\n", "kallsyms"),
    { code: "symbols_invalid", message: /all zero|Every address/ },
  );
});

Deno.test("require() names the missing symbol and the file", () => {
  assert.throws(() => fakeSymbols().require("idt_descr"), {
    code: "symbol_missing",
    message: /"idt_descr" is not in "fake System.map"/,
  });
});

Deno.test("nextAfter() gives the next image address, skipping per-CPU and equal addresses", () => {
  const syms = fakeSymbols();
  assert.equal(syms.nextAfter(FAKE.text), FAKE.text + 0x1000n);
  assert.equal(syms.nextAfter(FAKE.sct), FAKE.sct + 9n * 8n);
  assert.equal(syms.nextAfter(FAKE.end), undefined);
  assert.equal(syms.nextAfter(0n), FAKE.text);
});

Deno.test("isCodeSymbol() is true only at the start of a text symbol", () => {
  const syms = fakeSymbols();
  assert.equal(syms.isCodeSymbol(FAKE.text + 0x1000n), true);
  assert.equal(syms.isCodeSymbol(FAKE.text + 0x1001n), false);
  assert.equal(syms.isCodeSymbol(FAKE.sct), false);
});
