/**
 * A real Debian userspace with systemd, booted under KASLR, measured from outside while it
 * does what real guests do: boot to multi-user, flip static keys (schedstats, RPS, a
 * tracepoint, which also retargets a static call, a cpuset cgroup), load and unload a
 * module, trace every function with ftrace. None of it is a violation: the text, with its patch sites masked,
 * keeps the digest the kernel package gives, and the sites' state is reported as facts.
 * Then real tampering, with the guest paused so that it never runs the forged bytes: a
 * 5-byte inline hook at a syscall handler's entry, a jump label aimed away from its target,
 * a syscall-table entry, an IDT gate. Each is caught by the next measurement and named.
 *
 * Through the legitimate part the real server's monitor measures the VM every 300 ms under
 * the default policies, with references learned from this guest: it allows every
 * measurement and quarantines nothing, and the VM, labelled as not to be traced, gets the
 * kernel-tracing policy's alert while ftrace is on.
 */
import assert from "node:assert/strict";
import { GuestMemory } from "../ffi/mod.ts";
import { QmpClient } from "../src/hypervisor/qmp_client.ts";
import {
  judge,
  type KernelMeasurement,
  KernelMeasurer,
  loadPatchSites,
} from "../src/measure/mod.ts";
import { bootDebianGuest } from "./fixtures/debian_guest.ts";
import { learnReferences, loadGuestKernel } from "./fixtures/guest.ts";
import { tempStateDir } from "./fixtures/state_dir.ts";
import { poll, startVaspServer } from "./fixtures/vasp_server.ts";

const VM = "5a1c3e7f-2b4d-4e6f-8a0b-1c2d3e4f5a6b";

/** Violations by code and message, and the regions that do not match the kernel image. */
function summary(m: KernelMeasurement) {
  const verdicts = judge(undefined, m, { profileId: "package" });
  return {
    violations: m.findings.filter((f) => f.violation).map((f) => `${f.code}: ${f.message}`),
    notOk: verdicts.filter((v) => v.status !== "ok" && v.region !== "idt_table")
      .map((v) => `${v.region}: ${v.status} ${v.detail}`),
  };
}

const CLEAN = { violations: [], notOk: [] };
/** A module of the kernel package that loads under TCG. */
const MODULE = "dummy";

Deno.test({
  name: "a systemd guest's own self-patching is no violation; a rootkit's patching is named",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const kernel = await loadGuestKernel();
    await using guest = await bootDebianGuest({ kaslr: true });
    using memory = GuestMemory.open(guest.ramPath);
    const measurer = KernelMeasurer.create(memory, kernel.symbols, { image: kernel.image });
    const slide = measurer.layout.virtOffset;
    const sites = loadPatchSites(kernel.image, kernel.symbols);
    // Turning the function tracer on patches 35,000 sites under TCG: slow on a busy machine.
    const run = async (script: string) => {
      const r = await guest.exec(script, { timeoutMs: 300_000 });
      assert.equal(r.code, 0, `"${script}" failed: ${r.output}`);
      return r.output;
    };
    const measure = () => measurer.measure();
    /** Runs a script while measuring back to back; the violations seen meanwhile. */
    const measuredWhile = async (script: string) => {
      let running = true;
      const seen: string[] = [];
      const racing = (async () => {
        for (let n = 0; running || n === 0; n++) {
          seen.push(...summary(await measure()).violations);
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      try {
        await run(script);
      } finally {
        running = false;
        await racing;
      }
      return seen;
    };
    // systemd mounts tracefs; mount it where it did not.
    await run("mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing");

    await using dir = await tempStateDir();
    await learnReferences(dir.path, guest);
    const server = await startVaspServer(dir.path, { monitor: { pollMs: 100 } });
    const registered = await server.call("POST", "/v1/vms", {
      body: {
        uuid: VM,
        name: "debian-1",
        config_digest: `sha256:${"cd".repeat(32)}`,
        labels: { "vasp.io/kernel-tracing": "deny" },
        introspection: {
          memory: guest.ramPath,
          symbols: kernel.assets.systemMap,
          vmlinuz: kernel.assets.vmlinuz,
          qmp: guest.qmpPath,
          interval_ms: 300,
        },
      },
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.json));
    const hook = { vm: { uuid: VM, name: "debian-1" }, source: "libvirt-hook", details: {} };
    const prepare = await server.call("POST", "/v1/decide", {
      body: { ...hook, operation: "start", phase: "prepare" },
    });
    assert.equal(prepare.json.allow, true, JSON.stringify(prepare.json));
    const started = await server.call("POST", "/v1/events", {
      body: { ...hook, operation: "start", phase: "started", outcome: "completed" },
    });
    assert.equal(started.json.state, "running", JSON.stringify(started.json));
    /** The monitor's measurement decisions in the audit log. */
    const decisions = async () =>
      ((await server.call("GET", `/v1/audit?vm=${VM}`)).json.records as {
        operation: string;
        result: string;
        reasons: { policy: string; message: string }[];
      }[]).filter((r) => r.operation === "measurement");
    await poll(
      "the monitor's first decision",
      async () => (await decisions()).length > 0 || undefined,
    );

    let booted!: KernelMeasurement;
    await t.step("booted to multi-user, it measures as the kernel package says", async () => {
      assert.match(guest.systemState, /^(running|degraded)$/);
      assert.equal((await run("cat /proc/1/comm")).trim(), "systemd");
      assert.equal((await run("systemctl is-active multi-user.target")).trim(), "active");
      booted = await measure();
      assert.deepEqual(summary(booted), CLEAN);
      for (const r of booted.regions.filter((r) => r.kind !== "idt")) {
        assert.equal(r.digest, r.expected, `${r.name}: the booted guest equals the package`);
      }
      assert.equal(booted.sites?.state.ftraceEnabledSites, 0);
      assert.ok(booted.sites!.state.jumpLabelsOn > 0);
    });

    const text = (m: KernelMeasurement) => m.regions.find((r) => r.name === "kernel_text")!;
    const on = (m: KernelMeasurement) => m.sites!.state.jumpLabelsOn;

    await t.step("sysctl kernel.sched_schedstats flips a static key, and back", async () => {
      await run("sysctl -w kernel.sched_schedstats=1");
      const flipped = await measure();
      assert.deepEqual(summary(flipped), CLEAN);
      assert.ok(on(flipped) > on(booted), `${on(flipped)} > ${on(booted)} jump labels on`);
      assert.equal(text(flipped).digest, text(booted).digest);
      await run("sysctl -w kernel.sched_schedstats=0");
      assert.equal(on(await measure()), on(booted));
    });

    await t.step(
      "RPS on a device and a tracepoint flip keys and retarget a static call",
      async () => {
        const before = await measure();
        await run(
          "echo 1 > /sys/class/net/lo/queues/rx-0/rps_cpus && mount -t tracefs nodev " +
            "/sys/kernel/tracing 2>/dev/null; echo 1 > /sys/kernel/tracing/events/sched/sched_switch/enable",
        );
        const busy = await measure();
        assert.deepEqual(summary(busy), CLEAN);
        assert.ok(on(busy) > on(before));
        assert.ok(
          busy.sites!.state.staticCallsRetargeted > before.sites!.state.staticCallsRetargeted,
        );
        await run(
          "echo 0 > /sys/kernel/tracing/events/sched/sched_switch/enable && " +
            "echo 0 > /sys/class/net/lo/queues/rx-0/rps_cpus",
        );
        assert.deepEqual(summary(await measure()), CLEAN);
      },
    );

    await t.step(
      "a cgroup under the cpuset controller flips cpuset's static keys, and back",
      async () => {
        const before = await measure();
        await run(
          "echo +cpuset > /sys/fs/cgroup/cgroup.subtree_control && mkdir /sys/fs/cgroup/vasp-test",
        );
        const grouped = await measure();
        assert.deepEqual(summary(grouped), CLEAN);
        assert.ok(on(grouped) > on(before), `${on(grouped)} > ${on(before)} jump labels on`);
        await run(
          "rmdir /sys/fs/cgroup/vasp-test && echo -cpuset > /sys/fs/cgroup/cgroup.subtree_control",
        );
        assert.equal(on(await measure()), on(before));
      },
    );

    await t.step("a module loaded and unloaded", async () => {
      await run(`modprobe ${MODULE} && grep -q "^${MODULE} " /proc/modules`);
      assert.deepEqual(summary(await measure()), CLEAN);
      await run(`rmmod ${MODULE} && ! grep -q "^${MODULE} " /proc/modules`);
      assert.deepEqual(summary(await measure()), CLEAN);
    });

    await t.step(
      "the function tracer on every function, then off: a fact, no violation, also mid-rewrite",
      async () => {
        // Measured back to back while the kernel rewrites 35,000 sites: copies catch sites
        // holding its INT3 over half-written tails, which are in flux, not violations.
        assert.deepEqual(
          await measuredWhile("echo function > /sys/kernel/tracing/current_tracer"),
          [],
        );
        const traced = await measure();
        assert.deepEqual(summary(traced), CLEAN);
        assert.ok(traced.sites!.state.ftraceEnabledSites > sites.counts.ftrace / 2);
        assert.notEqual(traced.sites!.state.ftraceTracer, "ftrace_stub");
        // The monitor sees it too: an alert for this VM, not a violation.
        await poll(
          "the kernel-tracing alert",
          async () =>
            (await decisions()).some((d) =>
              d.result === "allow" &&
              d.reasons.some((r) =>
                r.policy === "kernel-tracing" &&
                /^debian-1 is traced: ftrace is on at \d+ function entries/.test(r.message)
              )
            ) || undefined,
        );
        assert.deepEqual(await measuredWhile("echo nop > /sys/kernel/tracing/current_tracer"), []);
        const off = await measure();
        assert.deepEqual(summary(off), CLEAN);
        assert.equal(off.sites!.state.ftraceEnabledSites, 0);
        assert.equal(text(off).digest, text(booted).digest);
      },
    );

    await t.step(
      "through all of it the monitor allowed every measurement and quarantined nothing",
      async () => {
        const all = await decisions();
        assert.ok(all.length >= 3, `${all.length} decisions`);
        assert.deepEqual(all.filter((d) => d.result !== "allow"), []);
        assert.deepEqual(
          all.flatMap((d) => d.reasons.map((r) => r.policy)).filter((p) => p !== "kernel-tracing"),
          [],
        );
        assert.equal((await server.call("GET", `/v1/vms/${VM}`)).json.state, "running");
        await using status = await QmpClient.connect(guest.qmpPath);
        assert.equal((await status.execute<{ status: string }>("query-status")).status, "running");
      },
    );
    // The monitor would quarantine the tampered VM; what is tested below is the naming.
    await server[Symbol.asyncDispose]();

    // Tampering: the guest is paused while the forged bytes are in its RAM.
    await using qmp = await QmpClient.connect(guest.qmpPath);
    await qmp.execute("stop");
    using ram = await Deno.open(guest.ramPath, { read: true, write: true });
    const phys = (linked: bigint) =>
      measurer.layout.physText + (linked - kernel.symbols.require("_text"));
    /** Writes bytes at a link-time address's physical place, measures, restores. */
    async function tampered(linked: bigint, bytes: Uint8Array): Promise<string[]> {
      const at = phys(linked);
      const old = memory.readPhys(at, bytes.length);
      await ram.seek(Number(at), Deno.SeekMode.Start);
      await ram.write(bytes);
      const found = summary(await measure()).violations;
      await ram.seek(Number(at), Deno.SeekMode.Start);
      await ram.write(old);
      assert.deepEqual(summary(await measure()), CLEAN, "restoring the bytes clears it");
      return found;
    }
    const jmp = (from: bigint, to: bigint) => {
      const b = new Uint8Array(5);
      b[0] = 0xe9;
      new DataView(b.buffer).setInt32(1, Number(to - (from + 5n)), true);
      return b;
    };

    await t.step("a 5-byte inline hook at __x64_sys_getdents64 is named", async () => {
      const fn = kernel.symbols.require("__x64_sys_getdents64");
      const found = await tampered(fn, jmp(fn, 0xffffffffc0100000n - slide));
      assert.equal(found.length, 1, found.join("\n"));
      assert.match(
        found[0]!,
        /^patch_site_invalid: ftrace site __x64_sys_getdents64\+0x0 holds e9 .* \(jmp 0xffffffffc0100000, outside kernel text\)/,
      );
    });

    await t.step("a jump label aimed away from its table's target is named", async () => {
      const site = sites.sites.find((s) => s.kind === "jump_label" && s.len === 5)!;
      const va = sites.start + BigInt(site.offset);
      const found = await tampered(va, jmp(va, site.target! + 0x10n));
      assert.equal(found.length, 1, found.join("\n"));
      assert.match(
        found[0]!,
        new RegExp(
          `^patch_site_invalid: jump label site ${
            kernel.symbols.locate(va).replace("+", "\\+")
          } holds e9 `,
        ),
      );
    });

    await t.step("a syscall-table entry and an IDT gate are named", async () => {
      const sct = kernel.symbols.require("sys_call_table");
      const entry = new Uint8Array(8);
      new DataView(entry.buffer).setBigUint64(
        0,
        kernel.symbols.require("__x64_sys_ni_syscall") + slide,
        true,
      );
      const hooked = await tampered(sct + 8n * 217n, entry);
      assert.match(
        hooked.join("\n"),
        /region_changed: sys_call_table\+0x6c8: 8 bytes changed .*sys_ni_syscall\+0x0\)/,
      );
      const gate = memory.readPhys(phys(kernel.symbols.require("idt_table")) + 64n, 8);
      new DataView(gate.buffer).setUint16(6, 0xc000, true);
      const idt = await tampered(kernel.symbols.require("idt_table") + 64n, gate);
      assert.match(idt.join("\n"), /handler_outside_text: .*vector 4 /);
    });
    await qmp.execute("cont");
  },
});
