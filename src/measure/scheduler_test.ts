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
      return measurementOf(state.digest);
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
      calls.push(`decide ${details.outcome} differs=${(details.differs as string[]).join(",")}`);
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
