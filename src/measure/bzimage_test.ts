import assert from "node:assert/strict";
import { parseBzImage } from "./bzimage.ts";

/** A minimal bzImage: setup header, then a payload starting with `magic`. */
function bzImage(magic: number[], options: { protocol?: number; size?: number } = {}) {
  const setupSects = 4;
  const payloadOffset = 0x100;
  const payload = [...magic, 1, 2, 3, 4, 5, 6, 7, 8];
  const file = new Uint8Array((setupSects + 1) * 512 + payloadOffset + payload.length + 4);
  const v = new DataView(file.buffer);
  file[0x1f1] = setupSects;
  v.setUint32(0x202, 0x53726448, true);
  v.setUint16(0x206, options.protocol ?? 0x20f, true);
  v.setUint32(0x230, 0x200000, true);
  file[0x234] = 1;
  v.setUint32(0x248, payloadOffset, true);
  v.setUint32(0x24c, payload.length + 4, true);
  v.setBigUint64(0x258, 0x1000000n, true);
  const start = (setupSects + 1) * 512 + payloadOffset;
  file.set(payload, start);
  v.setUint32(start + payload.length, options.size ?? 123456, true);
  return { file, payloadLength: payload.length };
}

Deno.test("parseBzImage() reads the header, the payload and the appended size", () => {
  const { file, payloadLength } = bzImage([0x02, 0x21, 0x4c, 0x18]);
  const bz = parseBzImage(file, "vmlinuz");
  assert.equal(bz.compression, "lz4");
  assert.equal(bz.protocol, 0x20f);
  assert.equal(bz.relocatable, true);
  assert.equal(bz.alignment, 0x200000);
  assert.equal(bz.preferredAddress, 0x1000000n);
  assert.equal(bz.decompressedSize, 123456);
  assert.equal(bz.payload.length, payloadLength, "the 4-byte size is not part of the stream");
});

Deno.test("parseBzImage() recognises every compression the kernel build offers", () => {
  const magics: [string, number[]][] = [
    ["gzip", [0x1f, 0x8b]],
    ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
    ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
    ["bzip2", [0x42, 0x5a, 0x68]],
    ["lzma", [0x5d, 0x00, 0x00]],
    ["lzo", [0x89, 0x4c, 0x5a, 0x4f]],
  ];
  for (const [name, magic] of magics) {
    const bz = parseBzImage(bzImage(magic).file, name);
    assert.equal(bz.compression, name);
  }
  const gz = bzImage([0x1f, 0x8b]);
  assert.equal(
    parseBzImage(gz.file, "gz").payload.length,
    gz.payloadLength + 4,
    "gzip keeps its trailer",
  );
});

Deno.test("parseBzImage() refuses a non-bzImage, an old protocol and an unknown payload", () => {
  assert.throws(() => parseBzImage(new Uint8Array(100), "tiny"), {
    code: "kernel_image_invalid",
    message: /"tiny".*only 100 bytes/,
  });
  const noMagic = bzImage([0x1f, 0x8b]).file;
  noMagic[0x202] = 0;
  assert.throws(() => parseBzImage(noMagic, "x"), {
    code: "kernel_image_invalid",
    message: /HdrS/,
  });
  assert.throws(() => parseBzImage(bzImage([0x1f, 0x8b], { protocol: 0x207 }).file, "old"), {
    message: /protocol 0x207/,
  });
  assert.throws(() => parseBzImage(bzImage([0xde, 0xad, 0xbe, 0xef]).file, "x"), {
    message: /unknown payload compression \(magic de ad be ef/,
  });
});
