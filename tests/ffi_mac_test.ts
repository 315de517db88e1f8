import assert from "node:assert/strict";
import { GuestMemory, MAC_LEN, macBatch, NativeError } from "../ffi/mod.ts";
import { toHex } from "../src/codec/mod.ts";

const MIB = 1 << 20;

async function ramFile(len: number): Promise<{ path: string; bytes: Uint8Array<ArrayBuffer> }> {
  const bytes = new Uint8Array(len);
  for (let i = 0; i < len; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
  const path = await Deno.makeTempFile({ prefix: "vasp-mac-" });
  await Deno.writeFile(path, bytes);
  return { path, bytes };
}

Deno.test("GuestMemory.mac() tags regions as macBatch() tags copies of the same bytes, and a write changes only its region's tag", async () => {
  const { path, bytes } = await ramFile(4 * MIB);
  try {
    using ram = GuestMemory.open(path);
    const regions = [
      { addr: 0x1000n, len: 3 * MIB },
      { addr: 0x3f0000n, len: 0x10000 },
      { addr: 0x100n, len: 1 },
    ];
    const tags = await ram.mac(regions);
    const copies = regions.map((r) => ram.readPhys(r.addr, r.len) as Uint8Array<ArrayBuffer>);
    assert.deepEqual(tags.map((t) => toHex(t.tag!)), macBatch(copies).map(toHex));
    assert.ok(tags.every((t) => t.tag!.length === MAC_LEN && t.error === null));
    // Not a plain hash of the bytes: a MAC of other bytes never equals it.
    assert.notEqual(toHex(tags[0]!.tag!), toHex(tags[1]!.tag!));

    using file = await Deno.open(path, { write: true });
    await file.seek(0x3f8000, Deno.SeekMode.Start);
    await file.write(new Uint8Array([bytes[0x3f8000]! ^ 1]));
    const after = await ram.mac(regions);
    assert.deepEqual(after.map((t, i) => toHex(t.tag!) === toHex(tags[i]!.tag!)), [
      true,
      false,
      true,
    ]);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("GuestMemory.mac() reports a region outside guest RAM with its error and tags the rest", async () => {
  const { path } = await ramFile(MIB);
  try {
    using ram = GuestMemory.open(path);
    const [inside, outside] = await ram.mac([
      { addr: 0n, len: 4096 },
      { addr: BigInt(MIB - 16), len: 32 },
    ]);
    assert.equal(inside!.error, null);
    assert.equal(outside!.tag, null);
    assert.ok(outside!.error instanceof NativeError);
    assert.equal(outside!.error.code, "value_out_of_range");
    await assert.rejects(
      ram.mac([{ addr: 0xffffffff81000000n, len: 16, virtual: true }]),
      TypeError,
    );
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("the MAC key is drawn per process: another process tags the same bytes differently", async () => {
  const data = new TextEncoder().encode("kernel text");
  const ours = toHex(macBatch([data])[0]!);
  assert.equal(ours, toHex(macBatch([data])[0]!));
  const code = `import { macBatch } from "${new URL("../ffi/mod.ts", import.meta.url).href}";
    import { toHex } from "${new URL("../src/codec/mod.ts", import.meta.url).href}";
    console.log(toHex(macBatch([new TextEncoder().encode("kernel text")])[0]));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const theirs = new TextDecoder().decode(out.stdout).trim();
  assert.match(theirs, /^[0-9a-f]{32}$/);
  assert.notEqual(theirs, ours);
});

Deno.test("a process that exits while MACs run on a worker thread exits cleanly (OpenSSL's exit-time teardown is off)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vasp-exit-" });
  try {
    const ram = `${dir}/ram`;
    await Deno.writeFile(ram, new Uint8Array(64 << 20));
    const child = `${dir}/child.ts`;
    // Batches of small regions: each region sets up its MAC afresh, so an exit lands in the
    // middle of OpenSSL's bookkeeping. Before the fix, 5 such exits in 30 crashed.
    await Deno.writeTextFile(
      child,
      `import { GuestMemory } from ${
        JSON.stringify(new URL("../ffi/mod.ts", import.meta.url).href)
      };
const ram = GuestMemory.open(${JSON.stringify(ram)});
const regions = Array.from({ length: 16384 }, (_, i) => ({ addr: BigInt(i) * 4096n, len: 4096 }));
const go = () => ram.mac(regions).then(go, () => {});
go();
await new Promise((r) => setTimeout(r, Number(Deno.args[0])));
Deno.exit(0);
`,
    );
    const crashed: string[] = [];
    for (let i = 0; i < 24; i++) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", child, String(5 + i * 3)],
        stdout: "null",
        stderr: "piped",
      }).output();
      if (out.code !== 0 || out.signal) {
        crashed.push(`${out.signal ?? out.code}: ${new TextDecoder().decode(out.stderr).trim()}`);
      }
    }
    assert.deepEqual(crashed, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
