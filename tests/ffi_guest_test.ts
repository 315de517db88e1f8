import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { GuestMemory, type GuestRegion, NativeError } from "../ffi/mod.ts";
import { toHex } from "../src/codec/mod.ts";

const KIB = 1024;
const MIB = 1 << 20;
const GIB = 1n << 30n;
const TEXT = 0xffffffff81000000n;

/** Synthetic guest RAM with page tables built by hand, tables allocated from 0x1000 up. */
class Image {
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly #view: DataView;
  #nextTable = 0x1000;

  constructor(len: number) {
    this.bytes = new Uint8Array(len);
    this.#view = new DataView(this.bytes.buffer);
  }

  table(): bigint {
    const t = this.#nextTable;
    this.#nextTable += 4096;
    return BigInt(t);
  }

  fill(offset: number, len: number): void {
    for (let i = 0; i < len; i += 65536) {
      crypto.getRandomValues(this.bytes.subarray(offset + i, offset + Math.min(len, i + 65536)));
    }
  }

  /** Maps gva to gpa with one page of pageSize bytes, creating tables on the way. */
  map(root: bigint, levels: 4 | 5, gva: bigint, gpa: number, pageSize: number): void {
    let table = root;
    for (let level = levels; level > 0; level--) {
      const shift = 12n + 9n * BigInt(level - 1);
      const at = Number(table + 8n * ((gva >> shift) & 511n));
      if (1n << shift === BigInt(pageSize)) {
        this.#view.setBigUint64(at, BigInt(gpa) | 3n | (level > 1 ? 0x80n : 0n), true);
        return;
      }
      let entry = this.#view.getBigUint64(at, true);
      if (!(entry & 1n)) this.#view.setBigUint64(at, entry = this.table() | 3n, true);
      table = entry & 0x000ffffffffff000n;
    }
  }
}

/** An image with a 2 MiB page at TEXT and three scattered 4 KiB pages after it. */
function kernelImage(levels: 4 | 5): { image: Image; cr3: bigint } {
  const image = new Image(8 * MIB);
  const cr3 = image.table();
  image.map(cr3, levels, TEXT, 4 * MIB, 2 * MIB);
  for (let i = 0; i < 3; i++) {
    image.map(cr3, levels, TEXT + 0x200000n + BigInt(i * 4096), 3 * MIB - i * 8192, 4 * KIB);
  }
  image.fill(2 * MIB, 6 * MIB);
  return { image, cr3 };
}

/** The bytes readVirt must return for TEXT + 2 MiB - 100, 100 + 2 pages + 50 bytes. */
function straddle(image: Image): Uint8Array {
  const b = image.bytes;
  return new Uint8Array([
    ...b.subarray(6 * MIB - 100, 6 * MIB),
    ...b.subarray(3 * MIB, 3 * MIB + 4096),
    ...b.subarray(3 * MIB - 8192, 3 * MIB - 4096),
    ...b.subarray(3 * MIB - 16384, 3 * MIB - 16384 + 50),
  ]);
}
const STRADDLE = { addr: TEXT + 0x200000n - 100n, len: 100 + 2 * 4096 + 50 };

async function withRam(image: Image, fn: (path: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "vasp-guest-test-" });
  try {
    const path = `${dir}/guest.ram`;
    await Deno.writeFile(path, image.bytes);
    await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const digestOf = (alg: string, bytes: Uint8Array) => createHash(alg).update(bytes).digest("hex");
const hex = (b: Uint8Array | null) => b && toHex(b);
const nativeError = (code: string, message: RegExp) => (e: unknown) =>
  e instanceof NativeError && e.code === code && message.test(e.message);

Deno.test("GuestMemory reads guest-physical bytes and refuses a read past the end whole", async () => {
  const image = new Image(1 * MIB);
  image.fill(0, MIB);
  await withRam(image, (path) => {
    using ram = GuestMemory.open(path);
    assert.equal(ram.size, BigInt(MIB));
    assert.deepEqual(ram.readPhys(0x1234n, 100), image.bytes.subarray(0x1234, 0x1234 + 100));
    assert.equal(ram.readPhys(0n, 0).length, 0);
    assert.throws(
      () => ram.readPhys(BigInt(MIB - 8), 16),
      nativeError(
        "value_out_of_range",
        /guest-physical 0xffff8 \(16 bytes\) lies outside guest RAM/,
      ),
    );
    assert.throws(() => ram.readPhys(-1n, 1), RangeError);
    assert.throws(() => ram.readPhys(0n, 1.5), RangeError);
  });
});

Deno.test("GuestMemory translates and reads through 4-level tables with 2 MiB and 4 KiB pages", async () => {
  const { image, cr3 } = kernelImage(4);
  await withRam(image, (path) => {
    using ram = GuestMemory.open(path);
    assert.equal(ram.translate(TEXT + 0x123n, { cr3 }), BigInt(4 * MIB + 0x123));
    assert.equal(ram.translate(TEXT + 0x201010n, { cr3, paging: 4 }), BigInt(3 * MIB - 8192 + 16));
    assert.deepEqual(ram.readVirt(STRADDLE.addr, STRADDLE.len, { cr3 }), straddle(image));
    assert.throws(
      () => ram.translate(TEXT + 0x203000n, { cr3 }),
      nativeError("page_walk_failed", /0xffffffff81203000: PT entry 3 at 0x[0-9a-f]+: not present/),
    );
    assert.throws(
      () => ram.translate(0x800000000000n, { cr3 }),
      nativeError("page_walk_failed", /not canonical under 4-level paging/),
    );
    // @ts-expect-error: paging is 4 or 5
    assert.throws(() => ram.translate(TEXT, { cr3, paging: 3 }), RangeError);
    // @ts-expect-error: cr3 is required
    assert.throws(() => ram.readVirt(TEXT, 1, {}), TypeError);
  });
});

Deno.test("GuestMemory walks 5-level tables to addresses beyond 48 bits", async () => {
  const image = new Image(1 * MIB);
  const cr3 = image.table();
  image.map(cr3, 5, 0xff80000000000000n, 0, 2 * MIB);
  image.map(cr3, 5, 0x800000001000n, 0x70000, 4 * KIB);
  image.fill(0x70000, 4096);
  await withRam(image, (path) => {
    using ram = GuestMemory.open(path);
    assert.equal(ram.translate(0xff800000000fffffn, { cr3, paging: 5 }), 0xfffffn);
    assert.equal(ram.translate(0x800000001abcn, { cr3, paging: 5 }), 0x70abcn);
    assert.deepEqual(
      ram.readVirt(0x800000001010n, 64, { cr3, paging: 5 }),
      image.bytes.subarray(0x70010, 0x70050),
    );
  });
});

Deno.test("measure() gives node:crypto's digests for physical and virtual regions", async () => {
  const { image, cr3 } = kernelImage(5);
  const regions: GuestRegion[] = [
    { addr: BigInt(4 * MIB + 5), len: 2 * MIB - 5 },
    { ...STRADDLE, virtual: true },
    { ...STRADDLE, virtual: true, alg: "sm3" },
    { addr: 0x500n, len: 1, alg: "sm3" },
  ];
  const want = [
    digestOf("sha256", image.bytes.subarray(4 * MIB + 5, 6 * MIB)),
    digestOf("sha256", straddle(image)),
    digestOf("sm3", straddle(image)),
    digestOf("sm3", image.bytes.subarray(0x500, 0x501)),
  ];
  await withRam(image, async (path) => {
    using ram = GuestMemory.open(path);
    const results = await ram.measure(regions, { cr3, paging: 5 });
    assert.deepEqual(results.map((r) => [hex(r.digest), r.error]), want.map((w) => [w, null]));
    assert.deepEqual(await ram.measure([]), []);
  });
});

Deno.test("measure() reports each failed region with its own error and keeps the rest", async () => {
  const image = new Image(64 * KIB);
  image.fill(0x8000, 4096);
  const cr3 = image.table();
  await withRam(image, async (path) => {
    using ram = GuestMemory.open(path);
    const results = await ram.measure([
      { addr: 0x8000n, len: 4096 },
      { addr: TEXT, len: 16, virtual: true },
      { addr: 0x8000n, len: 0 },
    ], { cr3 });
    assert.equal(hex(results[0]!.digest), digestOf("sha256", image.bytes.subarray(0x8000, 0x9000)));
    assert.equal(results[0]!.error, null);
    assert.equal(results[1]!.digest, null);
    assert.ok(
      nativeError(
        "page_walk_failed",
        /region 1 \(guest-virtual 0xffffffff81000000, 16 bytes\): page walk of 0xffffffff81000000: PML4 entry 511 at 0x1ff8: not present/,
      )(results[1]!.error),
    );
    assert.ok(
      nativeError("argument_invalid", /region 2 \(guest-physical 0x8000, 0 bytes\)/)(
        results[2]!.error,
      ),
    );
  });
});

Deno.test("measure() refuses bad region lists before reading guest memory", async () => {
  const image = new Image(64 * KIB);
  await withRam(image, async (path) => {
    using ram = GuestMemory.open(path);
    await assert.rejects(
      ram.measure([{ addr: TEXT, len: 1, virtual: true }]),
      /needs options\.cr3/,
    );
    // @ts-expect-error: the algorithm name is checked at compile time too
    await assert.rejects(ram.measure([{ addr: 0n, len: 1, alg: "md5" }]), TypeError);
    const many = Array.from({ length: 65537 }, () => ({ addr: 0n, len: 1 }));
    await assert.rejects(
      ram.measure(many),
      nativeError("argument_invalid", /65537 regions exceed the limit of 65536/),
    );
  });
});

Deno.test("GuestMemory places RAM above 4 GiB after the PCI hole when below4g is set", async () => {
  const image = new Image(3 * MIB);
  image.fill(0, 3 * MIB);
  await withRam(image, (path) => {
    using ram = GuestMemory.open(path, { below4g: BigInt(2 * MIB) });
    assert.deepEqual(ram.readPhys(0x1000n, 16), image.bytes.subarray(0x1000, 0x1010));
    assert.deepEqual(
      ram.readPhys(4n * GIB + 0x10n, 16),
      image.bytes.subarray(2 * MIB + 0x10, 2 * MIB + 0x20),
    );
    assert.throws(
      () => ram.readPhys(BigInt(2 * MIB), 8),
      nativeError("value_out_of_range", /0x200000 \(8 bytes\) lies in the PCI hole/),
    );
    assert.throws(
      () => ram.readPhys(4n * GIB + BigInt(MIB) - 4n, 8),
      nativeError("value_out_of_range", /outside guest RAM/),
    );
    assert.throws(
      () => GuestMemory.open(path, { below4g: BigInt(4 * MIB) }),
      nativeError("argument_invalid", /below_4g 0x400000 exceeds/),
    );
  });
});

Deno.test("GuestMemory.open() names a missing or unusable file in a stable error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vasp-guest-test-" });
  try {
    assert.throws(
      () => GuestMemory.open(`${dir}/missing.ram`),
      nativeError("io_failed", /missing\.ram/),
    );
    assert.throws(() => GuestMemory.open(dir), nativeError("io_failed", /not a regular file/));
    await Deno.writeFile(`${dir}/empty.ram`, new Uint8Array(0));
    assert.throws(
      () => GuestMemory.open(`${dir}/empty.ram`),
      nativeError("argument_invalid", /is empty/),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a RAM file truncated while open gives value_out_of_range, not a crash", async () => {
  const image = new Image(1 * MIB);
  await withRam(image, async (path) => {
    using ram = GuestMemory.open(path);
    await Deno.truncate(path, 4096);
    assert.equal(ram.readPhys(0n, 4096).length, 4096);
    assert.throws(
      () => ram.readPhys(0x80000n, 8),
      nativeError("value_out_of_range", /shrank from 1048576 to 4096 bytes/),
    );
    const [result] = await ram.measure([{ addr: 0x80000n, len: 8 }]);
    assert.equal(result!.error?.code, "value_out_of_range");
  });
});

Deno.test("a closed GuestMemory throws handle_closed, and closing twice is harmless", async () => {
  const image = new Image(64 * KIB);
  await withRam(image, async (path) => {
    let kept: GuestMemory;
    {
      using ram = GuestMemory.open(path);
      kept = ram;
      assert.equal(ram.size, BigInt(64 * KIB));
    }
    assert.throws(() => kept.size, nativeError("handle_closed", /guest\.ram" is closed/));
    kept.close();
    const ram = GuestMemory.open(path);
    ram.close();
    ram.close();
    assert.throws(() => ram.readPhys(0n, 1), nativeError("handle_closed", /is closed/));
    await assert.rejects(
      ram.measure([{ addr: 0n, len: 1 }]),
      nativeError("handle_closed", /is closed/),
    );
  });
});

Deno.test("calls during measure() throw handle_busy, and close() then takes effect when it settles", async () => {
  const image = new Image(4 * MIB);
  image.fill(0, 4 * MIB);
  await withRam(image, async (path) => {
    const ram = GuestMemory.open(path);
    const pending = ram.measure([{ addr: 0n, len: 4 * MIB }]);
    assert.throws(() => ram.readPhys(0n, 1), nativeError("handle_busy", /busy with a measurement/));
    const second = ram.measure([{ addr: 0n, len: 1 }]);
    ram.close(); // still in flight: nothing has been awaited yet
    assert.throws(() => ram.size, nativeError("handle_closed", /is closed/));
    await assert.rejects(second, nativeError("handle_busy", /busy/));
    const [result] = await pending;
    assert.equal(hex(result!.digest), digestOf("sha256", image.bytes));
    assert.throws(() => ram.size, nativeError("handle_closed", /is closed/));
    ram.close();
  });
});
