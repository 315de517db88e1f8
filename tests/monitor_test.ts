/**
 * The measurement monitor of the real server on a real guest: a Debian kernel booted under
 * QEMU with shared RAM, references learned explicitly with `vasp refs learn` into the state
 * directory, the project's default policies. The clean guest measures ok; a rootkit's write
 * into the syscall table through the RAM file gets the VM quarantined and paused over QMP
 * within a few intervals, with the differing region named in the audit log. One boot.
 */
import assert from "node:assert/strict";
import { GuestMemory } from "../ffi/mod.ts";
import { QmpClient } from "../src/hypervisor/qmp_client.ts";
import { KernelMeasurer } from "../src/measure/mod.ts";
import { bootGuest, learnReferences, loadGuestKernel } from "./fixtures/guest.ts";
import { tempStateDir } from "./fixtures/state_dir.ts";
import { type Answer, startVaspServer, type VaspServer } from "./fixtures/vasp_server.ts";

const VM = "3d5e7f90-1a2b-4c3d-8e4f-5a6b7c8d9e0f";
const INTERVAL_MS = 300;

/** Polls `probe` until `done` holds of its answer, or fails with the last answer. */
async function until(
  what: string,
  probe: () => Promise<Answer>,
  done: (a: Answer) => boolean,
  timeoutMs = 30_000,
): Promise<Answer> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await probe();
    if (done(answer)) return answer;
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${timeoutMs} ms; last ${JSON.stringify(answer.json)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function u64(value: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, value, true);
  return b;
}

async function event(s: VaspServer, operation: string, body: Record<string, unknown>) {
  return await s.call("POST", `/v1/${operation}`, {
    body: { vm: { uuid: VM, name: "guest-1" }, source: "libvirt-hook", details: {}, ...body },
  });
}

Deno.test("the monitor finds a running guest clean, and quarantines and pauses it within a few intervals of a rootkit's write into its syscall table", async (t) => {
  const kernel = await loadGuestKernel();
  await using dir = await tempStateDir();
  await using guest = await bootGuest({ kaslr: true });

  await t.step("references are learned explicitly into the state directory", async () => {
    await learnReferences(dir.path, guest);
  });

  await using s = await startVaspServer(dir.path, { monitor: { pollMs: 100 } });
  await t.step("the VM is registered with its introspection settings and started", async () => {
    const registered = await s.call("POST", "/v1/vms", {
      body: {
        uuid: VM,
        name: "guest-1",
        config_digest: `sha256:${"cd".repeat(32)}`,
        introspection: {
          memory: guest.ramPath,
          symbols: kernel.assets.systemMap,
          vmlinuz: kernel.assets.vmlinuz,
          qmp: guest.qmpPath,
          interval_ms: INTERVAL_MS,
        },
      },
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.json));
    assert.equal(registered.json.introspection.interval_ms, INTERVAL_MS);
    const start = await event(s, "decide", { operation: "start", phase: "prepare" });
    assert.equal(start.json.allow, true, JSON.stringify(start.json.reasons));
    const started = await event(s, "events", {
      operation: "start",
      phase: "started",
      outcome: "completed",
    });
    assert.equal(started.json.state, "running");
  });

  await t.step(
    "every region of the clean guest is recorded ok, and the measurement extends register 8",
    async () => {
      const measured = await until(
        "clean measurements",
        () => s.call("GET", `/v1/vms/${VM}/measurements`),
        (a) => a.json.measurements?.length > 0,
      );
      const statuses = measured.json.measurements.map((m: { region: string; status: string }) =>
        `${m.region}:${m.status}`
      );
      assert.ok(statuses.includes("sys_call_table:ok"), statuses.join(" "));
      assert.deepEqual(statuses.filter((x: string) => !x.endsWith(":ok")), []);
      // The monitor records the measurements first, then extends the register: wait for both.
      const quote = await until(
        "register 8 extended",
        () => s.call("GET", `/v1/vms/${VM}/quote?nonce=00ff&registers=8`),
        (a) => a.json.event_log?.some((e: { reg: number }) => e.reg === 8),
      );
      const runtime = quote.json.event_log.filter((e: { reg: number }) => e.reg === 8);
      assert.equal(runtime.length, 1);
      assert.match(runtime[0].description, /^runtime measurement ok sha256:[0-9a-f]{64}$/);
      // ... and then asks for the measurement decision.
      await until(
        "the monitor's measurement decision",
        () => s.call("GET", `/v1/audit?vm=${VM}&result=allow`),
        (a) =>
          a.json.records.some((r: { operation: string; source: string }) =>
            r.operation === "measurement" && r.source === "monitor"
          ),
      );
    },
  );

  await t.step(
    "a rootkit's write into the syscall table quarantines the VM and pauses it over QMP",
    async () => {
      using memory = GuestMemory.open(guest.ramPath);
      const measurer = KernelMeasurer.create(memory, kernel.symbols, { image: kernel.image });
      const sct = (await measurer.measure()).regions.find((r) => r.name === "sys_call_table")!;
      const hook = kernel.symbols.require("__x64_sys_ni_syscall") + measurer.layout.virtOffset;
      using ram = await Deno.open(guest.ramPath, { read: true, write: true });
      await ram.seek(Number(sct.phys), Deno.SeekMode.Start);
      assert.equal(await ram.write(u64(hook)), 8);

      const quarantined = await until(
        "quarantine",
        () => s.call("GET", `/v1/vms/${VM}`),
        (a) => a.json.state === "quarantined",
        10 * INTERVAL_MS + 5000,
      );
      assert.equal(quarantined.json.state, "quarantined");

      await until(
        "QMP stop",
        async () => {
          await using qmp = await QmpClient.connect(guest.qmpPath);
          const status = await qmp.execute<{ status: string; running: boolean }>("query-status");
          return { status: 200, json: status };
        },
        (a) => a.json.status === "paused",
        5000,
      );

      const denied = await s.call("GET", `/v1/audit?vm=${VM}&result=deny`);
      const record = denied.json.records.find((r: { operation: string }) =>
        r.operation === "measurement"
      );
      assert.equal(record?.source, "monitor");
      assert.deepEqual(record.actions, ["alert", "quarantine"]);
      const reason = record.reasons.find((r: { policy: string }) =>
        r.policy === "runtime-integrity"
      );
      assert.match(reason?.message ?? "", /differ from their reference: sys_call_table$/);

      const measurements = await s.call("GET", `/v1/vms/${VM}/measurements`);
      const sctNow = measurements.json.measurements.find((m: { region: string }) =>
        m.region === "sys_call_table"
      );
      assert.equal(sctNow.status, "differs");
      assert.notEqual(sctNow.digest, sctNow.reference);
      assert.ok(s.logged.some((l) => /guest-1.*stopped through QMP/.test(l)), s.logged.join("\n"));
      const metrics = await s.call("GET", "/metrics");
      assert.match(
        String(metrics.json),
        /vasp_monitor_actions_total\{action="pause",result="ok"\} 1/,
      );
      assert.match(String(metrics.json), /vasp_measurements_total\{outcome="differs"\}/);
      // The resumed guest would be running a hooked kernel: the quarantine holds.
      const resume = await event(s, "decide", { operation: "resume", source: "qmp-gate" });
      assert.equal(resume.json.allow, false);
      // The instance holds the evidence: its runtime register was extended with the change.
      // The monitor records the measurements first, then extends the register: wait for both.
      const quote = await until(
        "register 8 extended",
        () => s.call("GET", `/v1/vms/${VM}/quote?nonce=00ff&registers=8`),
        (a) => a.json.event_log?.some((e: { reg: number }) => e.reg === 8),
      );
      const runtime = quote.json.event_log.filter((e: { reg: number }) => e.reg === 8);
      assert.match(runtime.at(-1)?.description ?? "", /^runtime measurement differs sha256:/);
    },
  );
});
