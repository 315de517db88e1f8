import assert from "node:assert/strict";
import {
  checkIdt,
  checkSyscallTable,
  decodeIdt,
  normaliseIdt,
  normaliseSyscallTable,
  type TextBounds,
} from "./tables.ts";
import { encodeGate, FAKE } from "./testing.ts";

const slide = 0x1e00000n;
const bounds: TextBounds = {
  start: FAKE.text,
  end: FAKE.etext,
  slide,
  earlyIdtHandlers: FAKE.earlyIdt,
};

Deno.test("decodeIdt() reads handler, selector, IST, type, DPL and present bit", () => {
  const idt = new Uint8Array(32);
  encodeGate(idt, 1, 0xffffffff81c00990n);
  idt[16 + 4] = 3;
  idt[16 + 5] = 0xee;
  const [g0, g1] = decodeIdt(idt);
  assert.equal(g0!.present, false);
  assert.deepEqual(g1, {
    vector: 1,
    handler: 0xffffffff81c00990n,
    selector: 0x10,
    ist: 3,
    type: 0xe,
    dpl: 3,
    present: true,
  });
});

Deno.test("checkIdt() flags a handler outside the text and notes untouched early stubs", () => {
  const idt = new Uint8Array(4096);
  for (let v = 0; v < 256; v++) encodeGate(idt, v, FAKE.text + 0x10n + slide);
  encodeGate(idt, 18, FAKE.earlyIdt + 18n * 9n + slide);
  encodeGate(idt, 0x80, 0xffffffffc0000000n);
  encodeGate(idt, 40, FAKE.earlyIdt + 40n * 9n + slide); // no stub above vector 31
  const findings = checkIdt(decodeIdt(idt), bounds);
  assert.deepEqual(findings.map((f) => [f.index, f.code, f.violation]), [
    [18, "early_idt_stub", false],
    [40, "handler_outside_text", true],
    [128, "handler_outside_text", true],
  ]);
  assert.match(findings[2]!.message, /vector 128 handler 0xffffffffc0000000 is outside/);
});

Deno.test("normaliseIdt() subtracts the slide from present gates only", () => {
  const idt = new Uint8Array(48);
  encodeGate(idt, 0, FAKE.text + 0x1234n + slide);
  encodeGate(idt, 2, 0x00007fff00000000n + slide);
  const expected = new Uint8Array(48);
  encodeGate(expected, 0, FAKE.text + 0x1234n);
  encodeGate(expected, 2, 0x00007fff00000000n);
  normaliseIdt(idt, slide);
  assert.deepEqual(idt, expected);
});

Deno.test("checkSyscallTable() names each entry outside the text, ignoring trailing padding", () => {
  const table = new Uint8Array(40);
  const v = new DataView(table.buffer);
  v.setBigUint64(0, FAKE.text + slide, true);
  v.setBigUint64(8, FAKE.etext + slide, true); // one past the end
  v.setBigUint64(16, FAKE.text + 0x40n + slide, true);
  const findings = checkSyscallTable("sys_call_table", table, bounds);
  assert.deepEqual(findings.map((f) => f.index), [1]);
  assert.match(findings[0]!.message, /sys_call_table\[1\] = 0xffffffff82e10000/);
});

Deno.test("normaliseSyscallTable() subtracts the slide from nonzero entries", () => {
  const table = new Uint8Array(16);
  new DataView(table.buffer).setBigUint64(0, FAKE.text + slide, true);
  normaliseSyscallTable(table, slide);
  assert.equal(new DataView(table.buffer).getBigUint64(0, true), FAKE.text);
  assert.equal(new DataView(table.buffer).getBigUint64(8, true), 0n);
});
