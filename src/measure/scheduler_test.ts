import assert from "node:assert/strict";
import { type KernelMeasurement, unslidMeasurement } from "./measurement.ts";
import {
  type GuestSession,
  MeasurementMonitor,
  type MonitorPorts,
  type MonitorTarget,
} from "./scheduler.ts";
import { testReferenceSet } from "./testing.ts";

const DIGEST = "a".repeat(64);
const TARGET: MonitorTarget = { uuid: "u-1", name: "web-1", intervalMs: 1000, key: "k1" };
const REFERENCE = testReferenceSet([
  { name: "sys_call_table", linkedVa: "0x0", len: 8, digest: DIGEST },
]);

function measurementOf(digest: string): KernelMeasurement {
  return unslidMeasurement([{
    name: "sys_call_table",
    kind: "syscall_table",
    linkedVa: 0n,
    va: 0n,
    phys: 0n,
    len: 8,
    digest,
    error: null,
  }]);
}

/** Ports that record what the monitor did; the guest's digest and the decision are set by the test. */
function fakePorts() {
  const calls: string[] = [];
  const state = {
    digest: DIGEST,
    ftrace: undefined as number | undefined,
    openFails: false,
    actions: [] as string[],
    targets: [TARGET],
    gate: undefined as Promise<void> | undefined,
    opened: 0,
    closed: 0,
  };
  const session = (): GuestSession => ({
    profileId: REFERENCE.profileId,
    async measure() {
      await state.gate;
      calls.push("measure");
      const m = measurementOf(state.digest);
      if (state.ftrace === undefined) return m;
      const counts = { jump_label: 1, ftrace: 2 } as NonNullable<
        KernelMeasurement["sites"]
      >["counts"];
      return {
        ...m,
        sites: {
          counts,
          state: {
            jumpLabelsOn: 1,
            ftraceEnabledSites: state.ftrace,
            ftraceTracer: state.ftrace ? "function_trace_call" : "ftrace_stub",
            staticCallsRetargeted: 0,
            staticCallsIntoModules: 0,
            sitesInFlux: 0,
          },
        },
      };
    },
    close: () => void state.closed++,
  });
  const ports: MonitorPorts = {
    targets: () => Promise.resolve(state.targets),
    open() {
      state.opened++;
      return state.openFails ? Promise.reject(new Error("RAM gone")) : Promise.resolve(session());
    },
    reference: () => Promise.resolve(REFERENCE),
    regions: () => Promise.resolve(["sys_call_table"]),
    record(_t, verdicts) {
      calls.push(`record ${verdicts.map((v) => `${v.region}:${v.status}`).join(",")}`);
      return Promise.resolve();
    },
    extend(_t, _text, description) {
      calls.push(`extend ${description.split(" ")[2]}`);
      return Promise.resolve();
    },
    decide(_t, details) {
      calls.push(
        `decide ${details.outcome} differs=${(details.differs as string[]).join(",")}` +
          (details.ftrace_enabled_sites === undefined
            ? ""
            : ` ftrace=${details.ftrace_enabled_sites} ${details.ftrace_tracer}`),
      );
      return Promise.resolve({
        decisionId: "d",
        allow: state.actions.length === 0,
        actions: state.actions,
      });
    },
    enforce(_t, action) {
      calls.push(`enforce ${action}`);
      return Promise.resolve();
    },
    alert(_t, _message, kind) {
      calls.push(`alert ${kind}`);
    },
  };
  return { ports, calls, state };
}

Deno.test("the monitor records every measurement but extends and asks for a decision only when the outcome changes", async () => {
  const { ports, calls, state } = fakePorts();
  let now = 0;
  const monitor = new MeasurementMonitor(ports, { now: () => now });
  await monitor.measureNow(TARGET.uuid);
  now = 5000;
  await monitor.measureNow(TARGET.uuid);
  assert.deepEqual(calls, [
    "measure",
    "record sys_call_table:ok",
    "extend ok",
    "decide ok differs=",
    "measure",
    "record sys_call_table:ok",
  ]);
  calls.length = 0;
  state.digest = "b".repeat(64);
  state.actions = ["alert", "quarantine"];
  await monitor.measureNow(TARGET.uuid);
  assert.deepEqual(calls, [
    "measure",
    "record sys_call_table:differs",
    "extend differs",
    "decide differs differs=sys_call_table",
    "alert alert",
    "enforce pause",
  ]);
  await monitor.stop();
  assert.equal(state.opened, 1);
  assert.equal(state.closed, 1);
});

Deno.test("the monitor keeps one measurement in flight per VM and waits for its interval", async () => {
  const { ports, calls, state } = fakePorts();
  let now = 0;
  const monitor = new MeasurementMonitor(ports, { now: () => now });
  const gate = Promise.withResolvers<void>();
  state.gate = gate.promise;
  await monitor.tick();
  await monitor.tick();
  now = 10_000;
  await monitor.tick();
  gate.resolve();
  await monitor.measureNow(TARGET.uuid);
  assert.equal(calls.filter((c) => c === "measure").length, 2);
  calls.length = 0;
  now += 999; // the second measurement set the next one 1000 ms after itself
  await monitor.tick();
  await monitor.stop();
  assert.deepEqual(calls, []);
});

Deno.test("a guest that cannot be opened is recorded as an error, decided once, and opened again next time", async () => {
  const { ports, calls, state } = fakePorts();
  let now = 0;
  const monitor = new MeasurementMonitor(ports, { now: () => now });
  state.openFails = true;
  state.actions = ["kill"];
  await monitor.measureNow(TARGET.uuid);
  now = 5000;
  await monitor.measureNow(TARGET.uuid);
  assert.deepEqual(calls, [
    "record sys_call_table:error",
    "extend error",
    "decide error differs=",
    "enforce kill",
    "record sys_call_table:error",
  ]);
  assert.equal(state.opened, 2);
  state.targets = [];
  await monitor.tick();
  await monitor.measureNow(TARGET.uuid);
  await monitor.stop();
  assert.equal(calls.length, 5, "a VM no longer a target is not measured");
});

Deno.test("an enforcement that fails is raised and decided again at the next measurement", async () => {
  const { ports, calls, state } = fakePorts();
  let now = 0;
  let failures = 1;
  const monitor = new MeasurementMonitor({
    ...ports,
    enforce(t, action) {
      if (failures-- > 0) return Promise.reject(new Error("QMP gone"));
      return ports.enforce(t, action);
    },
  }, { now: () => now });
  state.actions = ["pause"];
  await monitor.measureNow(TARGET.uuid);
  now = 5000;
  await monitor.measureNow(TARGET.uuid);
  await monitor.stop();
  assert.deepEqual(calls.filter((c) => !c.startsWith("measure") && !c.startsWith("record")), [
    "extend ok",
    "decide ok differs=",
    "alert failure",
    "decide ok differs=",
    "enforce pause",
  ]);
});

/** Timers on a fake clock: the test fires them by moving the clock. */
function fakeClock() {
  const clock = { now: 0 };
  let next = 1;
  const pending = new Map<number, { fn: () => void; at: number }>();
  const timers = {
    set(fn: () => void, ms: number) {
      pending.set(next, { fn, at: clock.now + ms });
      return next++;
    },
    clear(handle: unknown) {
      pending.delete(handle as number);
    },
  };
  /** Lets every promise the fake ports resolved run to its end. */
  const settle = () => new Promise((r) => setTimeout(r, 0));
  /** Fires every timer due by `to`, earliest first, moving the clock to each. */
  async function advance(to: number): Promise<void> {
    for (;;) {
      const due = [...pending].filter(([, t]) => t.at <= to).sort((a, b) => a[1].at - b[1].at);
      if (due.length === 0) break;
      const [handle, t] = due[0]!;
      pending.delete(handle);
      clock.now = Math.max(clock.now, t.at);
      t.fn();
      await settle();
    }
    clock.now = Math.max(clock.now, to);
  }
  const wakeAt = () => [...pending.values()].map((t) => t.at).sort((a, b) => a - b);
  return { clock, timers, settle, advance, wakeAt };
}

function target(n: number, intervalMs: number): MonitorTarget {
  return { uuid: `u-${n}`, name: `vm-${n}`, intervalMs, key: `k${n}` };
}

/** Ports for many VMs: which VM was measured when, and what each measurement cost. */
function fleetPorts(clock: { now: number }, targets: MonitorTarget[], costMs = 0) {
  const { ports } = fakePorts();
  const measured: { uuid: string; at: number }[] = [];
  const delayed: { uuid: string; waitMs: number }[] = [];
  let listings = 0;
  const live = new Map(targets.map((t) => [t.uuid, t]));
  const fleet: MonitorPorts = {
    ...ports,
    targets() {
      listings++;
      return Promise.resolve([...live.values()]);
    },
    target: (uuid) => Promise.resolve(live.get(uuid)),
    open: (t) =>
      Promise.resolve({
        profileId: REFERENCE.profileId,
        measure() {
          measured.push({ uuid: t.uuid, at: clock.now });
          clock.now += costMs;
          return Promise.resolve(measurementOf(DIGEST));
        },
        close() {},
      }),
    record: () => Promise.resolve(),
    extend: () => Promise.resolve(),
    decide: () => Promise.resolve({ decisionId: "d", allow: true, actions: [] }),
    delayed: (t, waitMs) => void delayed.push({ uuid: t.uuid, waitMs }),
  };
  return { ports: fleet, measured, delayed, live, listings: () => listings };
}

Deno.test("the monitor wakes only when a VM is due and reads the whole list only every pollMs", async () => {
  const { clock, timers, advance, settle, wakeAt } = fakeClock();
  const vms = [target(1, 1000), target(2, 1000), target(3, 5000)];
  const fleet = fleetPorts(clock, vms);
  const monitor = new MeasurementMonitor(fleet.ports, {
    now: () => clock.now,
    timers,
    random: () => 0.5,
    jitterMs: 20,
  });
  monitor.start();
  await settle();
  assert.deepEqual(fleet.measured.map((m) => `${m.uuid}@${m.at}`).sort(), [
    "u-1@0",
    "u-2@0",
    "u-3@0",
  ]);
  // One wake-up for the next due VMs (interval + half the jitter), one for the catch-up list.
  assert.deepEqual(wakeAt(), [1010, 10_000]);
  await advance(4999);
  assert.deepEqual(fleet.measured.slice(3).map((m) => `${m.uuid}@${m.at}`).sort(), [
    "u-1@1010",
    "u-1@2020",
    "u-1@3030",
    "u-1@4040",
    "u-2@1010",
    "u-2@2020",
    "u-2@3030",
    "u-2@4040",
  ]);
  assert.equal(fleet.listings(), 1, "no listing between the catch-up reads");
  assert.equal(monitor.stats.wakeups, 4);
  await advance(10_000);
  assert.equal(fleet.listings(), 2);
  assert.ok(fleet.measured.some((m) => m.uuid === "u-3" && m.at === 5010));
  await monitor.stop();
  assert.deepEqual(wakeAt(), [], "stop() clears every timer");
});

Deno.test("a changed VM is read alone: a new one is measured at once, a stopped one no more", async () => {
  const { clock, timers, advance, settle } = fakeClock();
  const fleet = fleetPorts(clock, [target(1, 1000)]);
  const monitor = new MeasurementMonitor(fleet.ports, { now: () => clock.now, timers });
  monitor.start();
  await settle();
  clock.now = 300;
  fleet.live.set("u-2", target(2, 1000));
  await monitor.changed("u-2");
  await settle();
  assert.deepEqual(fleet.measured.map((m) => `${m.uuid}@${m.at}`), ["u-1@0", "u-2@300"]);
  fleet.live.delete("u-1");
  await monitor.changed("u-1");
  await advance(5000);
  assert.ok(fleet.measured.slice(2).every((m) => m.uuid === "u-2"));
  assert.equal(fleet.measured.filter((m) => m.uuid === "u-2").length, 5);
  assert.equal(fleet.listings(), 1);
  await monitor.stop();
});

Deno.test("each next measurement starts within [interval, interval + jitterMs] of the last", async () => {
  const { clock, timers, advance, settle } = fakeClock();
  const fleet = fleetPorts(clock, [target(1, 1000), target(2, 250)]);
  let seed = 7;
  const random = () => (seed = (seed * 48271) % 0x7fffffff) / 0x7fffffff;
  const monitor = new MeasurementMonitor(fleet.ports, {
    now: () => clock.now,
    timers,
    random,
    jitterMs: 50,
  });
  monitor.start();
  await settle();
  await advance(60_000);
  await monitor.stop();
  for (const [uuid, interval] of [["u-1", 1000], ["u-2", 250]] as const) {
    const starts = fleet.measured.filter((m) => m.uuid === uuid).map((m) => m.at);
    const gaps = starts.slice(1).map((at, i) => at - starts[i]!);
    assert.ok(gaps.length >= 50, `${uuid}: ${gaps.length} measurements`);
    assert.ok(gaps.every((g) => g >= interval && g <= interval + 50), `${uuid}: ${gaps}`);
    // The jitter is used, not always 0 or always the bound.
    assert.ok(new Set(gaps).size > 5, `${uuid}: ${gaps}`);
  }
});

Deno.test("the CPU budget bounds measurement time per second; VMs over it are delayed and told", async () => {
  const { clock, timers, advance, settle } = fakeClock();
  // Ten VMs at 1 s costing 30 ms each want 300 ms a second; the budget allows 100.
  const vms = Array.from({ length: 10 }, (_, i) => target(i, 1000));
  const fleet = fleetPorts(clock, vms, 30);
  const monitor = new MeasurementMonitor(fleet.ports, {
    now: () => clock.now,
    timers,
    budgetMs: 100,
    maxConcurrent: 1,
    jitterMs: 0,
  });
  monitor.start();
  await settle();
  await advance(20_000);
  await monitor.stop();
  const spent = (from: number, to: number) =>
    30 * fleet.measured.filter((m) => m.at >= from && m.at < to).length;
  // A full bucket (100) at the start, then 100 a second, overdrawn by at most one measurement.
  assert.ok(spent(0, 20_000) <= 100 + 20 * 100 + 30, `spent ${spent(0, 20_000)} ms`);
  assert.ok(spent(0, 20_000) >= 19 * 100, `spent ${spent(0, 20_000)} ms: starved`);
  for (let s = 1; s < 19; s++) {
    assert.ok(
      spent(s * 1000, (s + 1) * 1000) <= 100 + 30,
      `second ${s}: ${spent(s * 1000, (s + 1) * 1000)}`,
    );
  }
  assert.ok(monitor.stats.delayed > 0);
  assert.equal(fleet.delayed.length, monitor.stats.delayed);
  assert.ok(fleet.delayed.every((d) => d.waitMs > 0), JSON.stringify(fleet.delayed));
  // Every VM still gets measured: none is starved by the others.
  for (const vm of vms) {
    assert.ok(fleet.measured.filter((m) => m.uuid === vm.uuid).length >= 5, vm.uuid);
  }
});

Deno.test("measureNow() measures at once even when the budget is spent", async () => {
  const { clock, timers, settle } = fakeClock();
  const fleet = fleetPorts(clock, [target(1, 1000), target(2, 1000)], 500);
  const monitor = new MeasurementMonitor(fleet.ports, {
    now: () => clock.now,
    timers,
    budgetMs: 100,
    maxConcurrent: 1,
  });
  monitor.start();
  await settle();
  assert.equal(fleet.measured.length, 1, "the first measurement overdrew the budget");
  await monitor.measureNow("u-2");
  assert.deepEqual(fleet.measured.map((m) => m.uuid), ["u-1", "u-2"]);
  assert.equal(monitor.stats.delayed, 0, "a forced measurement is not a delayed one");
  await monitor.stop();
});

Deno.test("the text's patch-site facts reach the decision, and a new fact is decided again with the same digests", async () => {
  const { ports, calls, state } = fakePorts();
  const monitor = new MeasurementMonitor(ports, { now: () => 0 });
  state.ftrace = 0;
  await monitor.measureNow(TARGET.uuid);
  state.ftrace = 2;
  await monitor.measureNow(TARGET.uuid);
  await monitor.measureNow(TARGET.uuid);
  await monitor.stop();
  assert.deepEqual(calls.filter((c) => c.startsWith("decide")), [
    "decide ok differs= ftrace=0 ftrace_stub",
    "decide ok differs= ftrace=2 function_trace_call",
  ]);
  assert.equal(calls.filter((c) => c.startsWith("extend")).length, 1);
});
