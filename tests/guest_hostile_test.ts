/**
 * Hostile guest memory at the level of src/measure: copies of a real guest's RAM, truncated,
 * shrunk under an open mapping, with garbage or self-referencing page tables, or random. Each
 * gives a clean error (or failed regions) in bounded time, never a crash or a hang.
 */
import assert from "node:assert/strict";
import { GuestMemory } from "../ffi/mod.ts";
import { QmpClient } from "../src/hypervisor/qmp_client.ts";
import { KernelMeasurer } from "../src/measure/mod.ts";
import { bootGuest, loadGuestKernel } from "./fixtures/guest.ts";

/** Fails when `fn` takes longer than `ms`; returns its result. */
async function bounded<T>(ms: number, fn: () => T | Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await fn();
  const took = performance.now() - started;
  assert.ok(took < ms, `took ${took.toFixed(0)} ms, bound ${ms} ms`);
  return result;
}

Deno.test("hostile guest memory gives clean errors in bounded time", async (t) => {
  const kernel = await loadGuestKernel();
  const dir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "vasp-hostile-" });
  try {
    const good = `${dir}/good.ram`;
    {
      await using guest = await bootGuest();
      await using qmp = await QmpClient.connect(guest.qmpPath);
      await qmp.execute("stop");
      await Deno.copyFile(guest.ramPath, good);
    }
    let physText = 0n;
    let pgt = 0n;
    {
      using memory = GuestMemory.open(good);
      const measurer = KernelMeasurer.create(memory, kernel.symbols, { image: kernel.image });
      physText = measurer.layout.physText;
      pgt = measurer.cr3;
    }
    const variant = async (name: string, change: (f: Deno.FsFile) => Promise<void>) => {
      const path = `${dir}/${name}.ram`;
      await Deno.copyFile(good, path);
      using file = await Deno.open(path, { read: true, write: true });
      await change(file);
      return path;
    };
    const writeAt = async (f: Deno.FsFile, at: bigint, bytes: Uint8Array) => {
      await f.seek(Number(at), Deno.SeekMode.Start);
      await f.write(bytes);
    };

    await t.step("a RAM file cut off inside the kernel: kaslr_not_found", async () => {
      const path = await variant("truncated", (f) => f.truncate(Number(physText) + (8 << 20)));
      using memory = GuestMemory.open(path);
      await bounded(2000, () =>
        assert.throws(() => KernelMeasurer.create(memory, kernel.symbols), {
          code: "kaslr_not_found",
        }));
    });

    await t.step("a RAM file that shrinks while mapped: every region fails, no crash", async () => {
      const path = await variant("shrinking", () => Promise.resolve());
      using memory = GuestMemory.open(path);
      const measurer = KernelMeasurer.create(memory, kernel.symbols, { image: kernel.image });
      await Deno.truncate(path, 16 << 20);
      const m = await bounded(2000, () => measurer.measure());
      assert.deepEqual(m.regions.filter((r) => r.digest !== null).map((r) => r.name), []);
      for (const r of m.regions) {
        assert.match(r.error!, /value_out_of_range|page_walk_failed/, r.name);
      }
    });

    await t.step("garbage page tables: the kernel mapping is refused", async () => {
      const junk = crypto.getRandomValues(new Uint8Array(4096));
      const path = await variant("garbage", (f) => writeAt(f, pgt, junk));
      using memory = GuestMemory.open(path);
      await bounded(
        2000,
        () =>
          assert.throws(() => KernelMeasurer.create(memory, kernel.symbols, { cr3: pgt }), {
            code: "kernel_mapping_mismatch",
            message: /do not map _text/,
          }),
      );
    });

    for (const [label, flags] of [["", 0x63n], [" with large-page bits", 0xe3n]] as const) {
      await t.step(
        `page tables that point to themselves${label}: the walk ends, mapping refused`,
        async () => {
          const self = new Uint8Array(4096);
          const view = new DataView(self.buffer);
          for (let i = 0; i < 512; i++) view.setBigUint64(i * 8, pgt | flags, true);
          const path = await variant("selfref", (f) => writeAt(f, pgt, self));
          using memory = GuestMemory.open(path);
          for (const paging of [4, 5] as const) {
            await bounded(2000, () =>
              assert.throws(
                () => KernelMeasurer.create(memory, kernel.symbols, { cr3: pgt, paging }),
                { code: "kernel_mapping_mismatch" },
              ));
          }
        },
      );
    }

    await t.step(
      "tables turned self-referencing under a measurer: regions change or fail, bounded",
      async () => {
        const path = await variant("selfref-live", () => Promise.resolve());
        using memory = GuestMemory.open(path);
        const measurer = KernelMeasurer.create(memory, kernel.symbols, { image: kernel.image });
        const before = await measurer.measure();
        const self = new Uint8Array(4096);
        const view = new DataView(self.buffer);
        for (let i = 0; i < 512; i++) view.setBigUint64(i * 8, pgt | 0x63n, true);
        {
          using f = await Deno.open(path, { write: true });
          await writeAt(f, pgt, self);
        }
        const after = await bounded(5000, () => measurer.measure());
        for (const [i, r] of after.regions.entries()) {
          assert.notEqual(
            r.digest,
            before.regions[i]!.digest,
            `${r.name} must not keep its digest`,
          );
        }
      },
    );

    await t.step("random RAM: kaslr_not_found in bounded time", async () => {
      const path = `${dir}/random.ram`;
      const bytes = new Uint8Array(64 << 20);
      for (let i = 0; i < bytes.length; i += 65536) {
        crypto.getRandomValues(bytes.subarray(i, i + 65536));
      }
      await Deno.writeFile(path, bytes);
      using memory = GuestMemory.open(path);
      await bounded(3000, () =>
        assert.throws(() => KernelMeasurer.create(memory, kernel.symbols), {
          code: "kaslr_not_found",
        }));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
