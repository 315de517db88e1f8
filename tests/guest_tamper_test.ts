/**
 * A simulated rootkit on a real, running KASLR guest: 8-byte writes through the shared RAM
 * file into a syscall-table entry, an IDT gate and the kernel text. Each write is reported as
 * exactly its region, and restoring the bytes brings the reference back.
 */
import assert from "node:assert/strict";
import { GuestMemory } from "../ffi/mod.ts";
import { QmpClient } from "../src/hypervisor/qmp_client.ts";
import {
  compareToReference,
  type KernelMeasurement,
  KernelMeasurer,
  makeProfile,
  referenceFromMeasurement,
} from "../src/measure/mod.ts";
import { readBuildId, readCommandLine } from "../src/measure/guest_info.ts";
import { bootGuest, loadGuestKernel } from "./fixtures/guest.ts";

function region(m: KernelMeasurement, name: string) {
  const r = m.regions.find((x) => x.name === name);
  assert.ok(r, `region ${name}`);
  return r;
}

function u64(value: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, value, true);
  return b;
}

Deno.test("a rootkit's 8-byte writes into a running guest are reported as exactly their region", async (t) => {
  const kernel = await loadGuestKernel();
  await using guest = await bootGuest({ kaslr: true });
  using memory = GuestMemory.open(guest.ramPath);
  const measurer = KernelMeasurer.create(memory, kernel.symbols, { image: kernel.image });
  const slide = measurer.layout.virtOffset;
  const clean = await measurer.measure();
  const profile = makeProfile({
    kernel: measurer.layout.banner,
    qemu: "test",
    cpu: "qemu64",
    smp: 1,
    cmdline: guest.cmdline,
  });
  const reference = referenceFromMeasurement(clean, { profile, learnedAt: "test" });
  using ram = await Deno.open(guest.ramPath, { read: true, write: true });

  /** Writes bytes at a guest-physical address; returns what was there. */
  async function poke(phys: bigint, bytes: Uint8Array): Promise<Uint8Array> {
    const old = memory.readPhys(phys, bytes.length);
    await ram.seek(Number(phys), Deno.SeekMode.Start);
    assert.equal(await ram.write(bytes), bytes.length);
    return old;
  }

  let located: string[] = [];
  /**
   * Measures and returns the differing regions and the violations, by name; keeps the
   * messages of the changes located against the kernel image in `located`.
   */
  async function changes() {
    const c = compareToReference(reference, await measurer.measure());
    located = c.violations.filter((f) => f.code === "region_changed").map((f) => f.message);
    return {
      differs: c.differences.map((d) => `${d.region}:${d.status}`),
      violations: c.violations.map((f) => `${f.region}:${f.code}${f.index ?? ""}`),
    };
  }

  await t.step("the untouched guest matches the reference learned from it", async () => {
    assert.deepEqual(await changes(), { differs: [], violations: [] });
  });

  const sct = region(clean, "sys_call_table");
  await t.step(
    "a syscall entry pointed at other kernel code changes sys_call_table only",
    async () => {
      const target = kernel.symbols.require("__x64_sys_ni_syscall") + slide;
      const old = await poke(sct.phys, u64(target));
      assert.deepEqual(await changes(), {
        differs: ["sys_call_table:changed"],
        violations: ["sys_call_table:region_changed"],
      });
      assert.match(
        located[0]!,
        /^sys_call_table\+0x0: 8 bytes changed from the kernel image, now 0xffffffff8[0-9a-f]+ \(\w*_sys_ni_syscall\+0x0\)$/,
      );
      await poke(sct.phys, old);
      assert.deepEqual(await changes(), { differs: [], violations: [] });
    },
  );

  await t.step("a syscall entry pointed outside the text is also a violation", async () => {
    const old = await poke(sct.phys + 8n * 59n, u64(0xffffffffc0ffee00n));
    assert.deepEqual(await changes(), {
      differs: ["sys_call_table:changed"],
      violations: ["sys_call_table:handler_outside_text59", "sys_call_table:region_changed"],
    });
    assert.match(
      located[0]!,
      /^sys_call_table\+0x1d8: 8 bytes changed .*, outside the kernel image\)$/,
    );
    await poke(sct.phys + 8n * 59n, old);
    assert.deepEqual(await changes(), { differs: [], violations: [] });
  });

  await t.step("an IDT gate redirected changes idt_table only and names the vector", async () => {
    // Vector 4 (#OF) cannot fire in 64-bit mode, so the running guest is not disturbed.
    const gate = region(clean, "idt_table").phys + 16n * 4n;
    const bytes = memory.readPhys(gate, 8);
    const view = new DataView(bytes.buffer);
    view.setUint16(0, 0x1000, true); // handler bits 15..0
    view.setUint16(6, 0xc000, true); // handler bits 31..16: 0xffffffffc0001000
    const old = await poke(gate, bytes);
    assert.deepEqual(await changes(), {
      differs: ["idt_table:changed"],
      violations: ["idt_table:handler_outside_text4"],
    });
    await poke(gate, old);
    assert.deepEqual(await changes(), { differs: [], violations: [] });
  });

  await t.step("one patched byte of kernel text changes kernel_text only", async () => {
    const text = region(clean, "kernel_text");
    // Inter-function int3 padding: never executed, so the running guest is not disturbed.
    const bytes = memory.readPhys(text.phys, text.len);
    const pad = bytes.findIndex((_, i) => bytes.subarray(i, i + 16).every((b) => b === 0xcc));
    assert.ok(pad > 0);
    const at = text.phys + BigInt(pad + 8);
    const old = await poke(at, new Uint8Array([0x90]));
    assert.deepEqual(await changes(), {
      differs: ["kernel_text:changed"],
      violations: ["kernel_text:region_changed"],
    });
    const named = kernel.symbols.locate(kernel.symbols.require("_stext") + BigInt(pad + 8));
    assert.equal(located[0], `${named}: 1 byte changed from the kernel image, now 90`);
    await poke(at, old);
    assert.deepEqual(await changes(), { differs: [], violations: [] });
  });

  await t.step(
    "text and rodata are hashed again only when their MAC changed, and a reverted write restores the digest",
    async () => {
      const quiet = await measurer.measure();
      assert.deepEqual(quiet.rehashed, []);
      assert.deepEqual(quiet.regions.map((r) => r.digest), clean.regions.map((r) => r.digest));
      const rodata = region(clean, "rodata.3");
      const at = rodata.phys + BigInt(rodata.len - 1);
      const old = await poke(at, new Uint8Array([memory.readPhys(at, 1)[0]! ^ 0xff]));
      const poked = await measurer.measure();
      assert.deepEqual(poked.rehashed, ["rodata.3"]);
      assert.notEqual(region(poked, "rodata.3").digest, rodata.digest);
      await poke(at, old);
      const restored = await measurer.measure();
      assert.deepEqual(restored.rehashed, ["rodata.3"]);
      assert.deepEqual(
        restored.regions.map((r) => r.digest),
        clean.regions.map((r) => r.digest),
      );
    },
  );

  await t.step(
    "the CPU's IDTR from QMP reaches idt_table; a forged one is a violation",
    async () => {
      await using qmp = await QmpClient.connect(guest.qmpPath);
      const regs = await qmp.hmp("info registers");
      const idtr = BigInt(`0x${/IDT=\s*([0-9a-f]+)/.exec(regs)![1]}`);
      const cr3 = BigInt(`0x${/CR3=([0-9a-f]+)/.exec(regs)![1]}`);
      const viaQmp = KernelMeasurer.create(memory, kernel.symbols, {
        image: kernel.image,
        cr3,
        idtr,
      });
      assert.equal(viaQmp.layout.physText, measurer.layout.physText);
      const good = await viaQmp.measure();
      assert.deepEqual(good.findings.filter((f) => f.violation), []);
      assert.deepEqual(good.regions.map((r) => r.digest), clean.regions.map((r) => r.digest));
      const forged = KernelMeasurer.create(memory, kernel.symbols, {
        image: kernel.image,
        idtr: region(clean, "sys_call_table").va,
      });
      const codes = (await forged.measure()).findings.filter((f) => f.violation).map((f) => f.code);
      assert.deepEqual(codes, ["idtr_mismatch"]);
    },
  );

  await t.step("the command line and build ID read from guest RAM are the guest's own", () => {
    assert.equal(readCommandLine(memory, { measurer, symbols: kernel.symbols }), guest.cmdline);
    assert.equal(
      readBuildId(memory, { measurer, symbols: kernel.symbols }),
      kernel.image.elf.buildId,
    );
  });
});
