import assert from "node:assert/strict";
import { planRegions } from "./regions.ts";
import { parseSymbolMap } from "./symbols.ts";
import { FAKE, fakeSymbols, fakeSystemMap } from "./testing.ts";

Deno.test("planRegions() cuts rodata around the syscall table and the ro_after_init window", () => {
  const plan = planRegions(fakeSymbols());
  const spans = plan.map((r) => [r.name, r.kind, r.linkedVa, r.len]);
  assert.deepEqual(spans, [
    ["kernel_text", "text", FAKE.text, Number(FAKE.etext - FAKE.text)],
    ["rodata.1", "rodata", FAKE.rodata, Number(FAKE.sct - FAKE.rodata)],
    ["rodata.2", "rodata", FAKE.sct + 72n, Number(FAKE.roAfterInit - FAKE.sct - 72n)],
    ["rodata.3", "rodata", FAKE.roAfterInitEnd, Number(FAKE.rodataEnd - FAKE.roAfterInitEnd)],
    ["sys_call_table", "syscall_table", FAKE.sct, 72],
    ["idt_table", "idt", FAKE.idt, 4096],
  ]);
});

Deno.test("planRegions() measures every syscall table the map has", () => {
  const map = `${fakeSystemMap()}\nffffffff81200600 D ia32_sys_call_table\nffffffff81200640 d x`;
  const names = planRegions(parseSymbolMap(map, "m")).map((r) => r.name);
  assert.ok(names.includes("ia32_sys_call_table"));
  assert.equal(names.filter((n) => n.startsWith("rodata.")).length, 4);
});

Deno.test("planRegions() refuses bounds out of order, naming them", () => {
  const map = fakeSystemMap().replace(/^\S+ T _etext$/m, "ffffffff80000000 T _etext");
  assert.throws(() => planRegions(parseSymbolMap(map, "m")), {
    code: "symbols_invalid",
    message: /"_stext".."_etext"/,
  });
});
