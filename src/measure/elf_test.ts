import assert from "node:assert/strict";
import { parseElf } from "./elf.ts";

/** An ELF64 with one PT_LOAD at 0xffffffff81000000 and one PT_NOTE holding a build ID. */
function elf(): Uint8Array {
  const file = new Uint8Array(0x200);
  const v = new DataView(file.buffer);
  file.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setBigUint64(0x20, 0x40n, true); // phoff
  v.setUint16(0x36, 56, true);
  v.setUint16(0x38, 2, true);
  const ph = (i: number, type: number, offset: number, vaddr: bigint, size: number) => {
    const at = 0x40 + i * 56;
    v.setUint32(at, type, true);
    v.setBigUint64(at + 8, BigInt(offset), true);
    v.setBigUint64(at + 16, vaddr, true);
    v.setBigUint64(at + 32, BigInt(size), true);
  };
  ph(0, 1, 0x100, 0xffffffff81000000n, 0x40);
  ph(1, 4, 0x180, 0xffffffff81000080n, 24);
  file.set(new TextEncoder().encode("hello"), 0x100);
  v.setUint32(0x180, 4, true); // namesz
  v.setUint32(0x184, 4, true); // descsz
  v.setUint32(0x188, 3, true); // NT_GNU_BUILD_ID
  file.set([0x47, 0x4e, 0x55, 0, 0xde, 0xad, 0xbe, 0xef], 0x18c);
  return file;
}

Deno.test("parseElf() reads bytes by virtual address, the build ID and the end of the data", () => {
  const image = parseElf(elf(), "vmlinux.bin");
  assert.equal(new TextDecoder().decode(image.bytesAt(0xffffffff81000000n, 5)), "hello");
  assert.equal(image.bytesAt(0xffffffff8100003cn, 8), undefined, "crosses the segment's end");
  assert.equal(image.buildId, "deadbeef");
  assert.equal(image.end, 0x198);
});

Deno.test("parseElf() refuses a non-ELF and a segment past the end of the file", () => {
  assert.throws(() => parseElf(new Uint8Array(64), "x"), {
    code: "kernel_image_invalid",
    message: /no ELF magic/,
  });
  const bad = elf();
  new DataView(bad.buffer).setBigUint64(0x40 + 32, 0x10000n, true);
  assert.throws(() => parseElf(bad, "x"), { message: /segment 0 past the end/ });
});
