/**
 * Real Debian guests under QEMU: digests are stable within and across `nokaslr` boots, and a
 * KASLR boot, once its slide is found and its relocations undone, matches the references
 * learned on a `nokaslr` boot. Drives the `vasp measure` and `vasp refs` commands.
 */
import assert from "node:assert/strict";
import { GuestMemory } from "../ffi/mod.ts";
import { KernelMeasurer } from "../src/measure/mod.ts";
import { bootGuest, type Guest, loadGuestKernel } from "./fixtures/guest.ts";

async function vasp(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("deno", {
    args: ["run", "-A", "src/cli/main.ts", ...args],
    cwd: new URL("..", import.meta.url).pathname,
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

function guestArgs(guest: Guest, extra: string[] = []): string[] {
  return [
    ...["--memory", guest.ramPath, "--symbols", guest.assets.systemMap],
    ...["--vmlinuz", guest.assets.vmlinuz, "--qmp", guest.qmpPath],
    ...extra,
  ];
}

/** `vasp measure --json` on the guest: region name → digest, and the placement. */
async function measureCli(guest: Guest) {
  const run = await vasp(["measure", ...guestArgs(guest), "--json"]);
  assert.equal(run.code, 0, run.stderr);
  const json = JSON.parse(run.stdout);
  // The CLI writes digests as sha256:<hex>; the measurer's own are bare hex.
  for (const r of json.regions) assert.match(r.digest, /^sha256:[0-9a-f]{64}$/, r.name);
  const digests = Object.fromEntries(
    json.regions.map((r: { name: string; digest: string }) => [r.name, r.digest.slice(7)]),
  );
  return { json, digests };
}

Deno.test("real guests: stable digests across measurements and boots, KASLR normalised to nokaslr references", async (t) => {
  const refs = await Deno.makeTempDir({ prefix: "vasp-refs-" });
  try {
    const kernel = await loadGuestKernel();
    let first: Record<string, string> = {};

    await using a = await bootGuest();
    console.log(`nokaslr boot: ${a.bootMs.toFixed(0)} ms`);

    await t.step(
      "one boot measured three times gives identical digests for every region",
      async () => {
        using memory = GuestMemory.open(a.ramPath);
        const measurer = KernelMeasurer.create(memory, kernel.symbols, { image: kernel.image });
        assert.equal(measurer.layout.virtOffset, 0n);
        assert.equal(measurer.layout.physText, a.kernelCodePhys);
        const runs = [];
        for (let i = 0; i < 3; i++) runs.push(await measurer.measure());
        for (const run of runs) {
          assert.deepEqual(run.regions.filter((r) => r.digest === null).map((r) => r.error), []);
          assert.deepEqual(run.regions.map((r) => r.digest), runs[0]!.regions.map((r) => r.digest));
        }
        const names = runs[0]!.regions.map((r) => r.name);
        for (const n of ["kernel_text", "rodata.1", "sys_call_table", "idt_table"]) {
          assert.ok(names.includes(n), `${n} in ${names}`);
        }
        first = Object.fromEntries(runs[0]!.regions.map((r) => [r.name, r.digest!]));
      },
    );

    await t.step("vasp measure prints the same digests, and refs learn stores them", async () => {
      const { json, digests } = await measureCli(a);
      assert.deepEqual(digests, first);
      assert.equal(json.kaslr.virt_offset, "0x0");
      const learn = await vasp(["refs", "learn", ...guestArgs(a), "--references", refs]);
      assert.equal(learn.code, 0, learn.stderr);
      assert.match(learn.stdout, /learned \d+ regions for profile [0-9a-f]{32}/);
      assert.equal([...Deno.readDirSync(refs)].length, 1);
    });

    await t.step("vasp refs image gives those digests from the kernel package alone", async () => {
      const run = await vasp([
        "refs",
        "image",
        ...["--vmlinuz", a.assets.vmlinuz, "--symbols", a.assets.systemMap, "--json"],
      ]);
      assert.equal(run.code, 0, run.stderr);
      const json = JSON.parse(run.stdout);
      const { idt_table: _, ...booted } = first;
      assert.deepEqual(
        Object.fromEntries(
          json.regions.map((r: { name: string; digest: string }) => [r.name, r.digest]),
        ),
        booted,
      );
      assert.ok(json.sites.jump_label > 1000 && json.sites.ftrace > 10_000, run.stdout);
    });
    await a.close();

    await using b = await bootGuest();
    await t.step("a second nokaslr boot gives the same digests and passes refs check", async () => {
      assert.deepEqual((await measureCli(b)).digests, first);
      const check = await vasp(["refs", "check", ...guestArgs(b), "--references", refs]);
      assert.equal(check.code, 0, check.stdout + check.stderr);
      assert.match(check.stdout, /every region matches/);
    });
    await b.close();

    await using k = await bootGuest({ kaslr: true });
    console.log(`KASLR boot: ${k.bootMs.toFixed(0)} ms`);
    await t.step("a KASLR boot: the offsets found are the guest's own", async () => {
      const { json } = await measureCli(k);
      const text = k.kallsyms.get("_text")!;
      assert.equal(BigInt(json.kaslr.virt_offset), text - kernel.symbols.require("_text"));
      assert.equal(BigInt(json.kaslr.phys_text), k.kernelCodePhys);
      console.log(
        `KASLR: phys _text ${json.kaslr.phys_text}, virtual offset ${json.kaslr.virt_offset}`,
      );
    });

    await t.step(
      "a KASLR boot with its relocations undone matches the nokaslr references",
      async () => {
        const { digests } = await measureCli(k);
        assert.deepEqual(digests, first);
        const check = await vasp(["refs", "check", ...guestArgs(k), "--references", refs]);
        assert.equal(check.code, 0, check.stdout + check.stderr);
      },
    );

    await t.step(
      "without the vmlinuz a KASLR boot's raw text differs and learning is refused",
      async () => {
        const raw = ["--memory", k.ramPath, "--symbols", k.assets.systemMap, "--qmp", k.qmpPath];
        const check = await vasp(["refs", "check", ...raw, "--references", refs]);
        assert.equal(check.code, 1);
        assert.match(check.stdout, /DIFFERS kernel_text \(changed\)/);
        assert.doesNotMatch(check.stdout, /DIFFERS sys_call_table|DIFFERS idt_table/);
        const learn = await vasp(["refs", "learn", ...raw, "--references", refs]);
        assert.equal(learn.code, 1);
        assert.match(learn.stderr, /relocations were not undone \[reference_refused\]/);
      },
    );

    await t.step("refs check exits 1 naming the profile when it has no reference set", async () => {
      const check = await vasp([
        "refs",
        "check",
        ...guestArgs(k, ["--smp", "4"]),
        "--references",
        refs,
      ]);
      assert.equal(check.code, 1);
      assert.match(
        check.stderr,
        /No reference set for profile [0-9a-f]{32}.*\[reference_missing\]/,
      );
    });
    await k.close();

    await using max = await bootGuest({ kaslr: true, cpu: "max" });
    await t.step(
      "a -cpu max guest: 5-level paging, another profile, the same digests (patch sites masked)",
      async () => {
        const { json, digests } = await measureCli(max);
        assert.equal(json.paging, 5);
        assert.equal(json.profile.cpu, "max");
        // The CPU changes what boot-time patching writes (alternatives, returns, retpolines),
        // only at patch sites, which the text digest leaves out and checks one by one.
        assert.deepEqual(digests, first);
        assert.equal(json.findings.filter((f: { violation: boolean }) => f.violation).length, 0);
      },
    );
  } finally {
    await Deno.remove(refs, { recursive: true });
  }
});
