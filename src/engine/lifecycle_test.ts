import assert from "node:assert/strict";
import {
  checkTransition,
  enterQuarantine,
  LIFECYCLE_STATES,
  type LifecycleState,
  observeTransition,
  type Operation,
  OPERATIONS,
  operationsFrom,
  releaseQuarantine,
} from "./lifecycle.ts";
import { VaspError } from "./error.ts";

// The expected life cycle, written out independently of the implementation's table: for each
// operation, the state each starting state leads to ("=" keeps it), absent when it does not
// exist. "unknown" is a VM vASP has no record of.
const EXPECTED: Record<Operation, Record<string, string>> = {
  define: { unknown: "defined", defined: "defined", "shut-off": "defined", destroyed: "defined" },
  start: { unknown: "running", defined: "running", "shut-off": "running" },
  pause: { running: "paused" },
  resume: { paused: "running" },
  save: { running: "saved", paused: "saved" },
  restore: { unknown: "running", saved: "running", running: "=", paused: "=" },
  snapshot: { running: "=", paused: "=", defined: "=", "shut-off": "=" },
  "migrate-out": { running: "migrating", paused: "migrating" },
  "migrate-in": { unknown: "running", defined: "running", "shut-off": "running" },
  shutdown: { running: "shut-off", paused: "shut-off" },
  destroy: {
    unknown: "destroyed",
    defined: "destroyed",
    running: "destroyed",
    paused: "destroyed",
    saved: "destroyed",
    migrating: "destroyed",
    "shut-off": "destroyed",
    quarantined: "destroyed",
  },
  measurement: { running: "=", paused: "=", migrating: "=", quarantined: "=" },
  "disk-export": { running: "=", paused: "=" },
  "device-attach": { running: "=", paused: "=" },
  "guest-input": { running: "=", paused: "=" },
  unknown: { running: "=", paused: "=", migrating: "=", quarantined: "=" },
};

const FROM: (LifecycleState | null)[] = [null, ...LIFECYCLE_STATES];

Deno.test("checkTransition() gives exactly the expected transition for every state and operation", () => {
  for (const op of OPERATIONS) {
    for (const from of FROM) {
      const expected = EXPECTED[op][from ?? "unknown"];
      const got = checkTransition(from, op);
      if (expected === undefined) {
        assert.equal(got.exists, false, `${op} from ${from} must not exist`);
      } else {
        assert.deepEqual(
          got,
          { exists: true, from, to: expected === "=" ? from : expected },
          `${op} from ${from}`,
        );
      }
    }
  }
});

Deno.test("checkTransition() explains a missing transition with the operation and the state", () => {
  const quarantined = checkTransition("quarantined", "resume");
  assert.equal(quarantined.exists, false);
  assert.equal(!quarantined.exists && quarantined.reason, "no resume from state quarantined");
  const unknown = checkTransition(null, "pause");
  assert.equal(!unknown.exists && unknown.reason, "no pause for an unregistered VM");
});

Deno.test("a quarantined VM can only be destroyed or measured", () => {
  assert.deepEqual(operationsFrom("quarantined"), ["destroy", "measurement", "unknown"]);
});

Deno.test("a destroyed VM can only be defined again", () => {
  assert.deepEqual(operationsFrom("destroyed"), ["define"]);
});

Deno.test("sub-steps named by phase keep the state where the operation itself would move it", () => {
  const to = (from: LifecycleState | null, op: Operation, phase?: string, details = {}) => {
    const got = checkTransition(from, op, { phase, details });
    return got.exists ? got.to : `none: ${got.reason}`;
  };
  assert.equal(to("running", "start", "reset"), "running");
  assert.equal(to("paused", "start", "reset"), "paused");
  assert.equal(to("shut-off", "start", "reset"), "none: no start reset from state shut-off");
  assert.equal(to("running", "resume", "wakeup"), "running");
  assert.equal(to("migrating", "migrate-out", "continue"), "migrating");
  assert.equal(to("running", "shutdown", "request"), "running");
  assert.equal(to("running", "save", undefined, { exposes_memory: true }), "running");
  assert.equal(to("running", "save"), "saved");
  assert.equal(to("quarantined", "save", undefined, { exposes_memory: true }), "quarantined");
  assert.equal(to("quarantined", "save"), "none: no save from state quarantined");
  assert.equal(to(null, "migrate-in", "recover"), "running");
  // libvirt's own step names are the operation itself.
  assert.equal(to("defined", "start", "prepare"), "running");
  assert.equal(to("running", "migrate-out", "begin"), "migrating");
});

Deno.test("observeTransition() ends an outgoing migration shut off, or running when it failed", () => {
  assert.deepEqual(observeTransition("migrating", "migrate-out", { outcome: "completed" }), {
    from: "migrating",
    to: "shut-off",
    expected: true,
  });
  assert.deepEqual(observeTransition("migrating", "migrate-out", { outcome: "failed" }), {
    from: "migrating",
    to: "running",
    expected: true,
  });
  assert.equal(
    observeTransition("migrating", "migrate-out", { outcome: "completed", phase: "continue" }).to,
    "migrating",
  );
});

Deno.test("observeTransition() follows the hypervisor and flags steps the life cycle lacks", () => {
  const seen = (from: LifecycleState | null, op: Operation, phase?: string) => {
    const o = observeTransition(from, op, { outcome: "completed", phase });
    return `${o.to} ${o.expected ? "expected" : "unexpected"}`;
  };
  assert.equal(seen("running", "pause"), "paused expected");
  assert.equal(seen("paused", "resume"), "running expected");
  assert.equal(seen("running", "resume"), "running expected");
  assert.equal(seen("saved", "pause"), "paused unexpected");
  assert.equal(seen("running", "start", "reset"), "running expected");
  assert.equal(seen("running", "shutdown", "stopped"), "shut-off expected");
  assert.equal(seen("shut-off", "shutdown", "release"), "shut-off expected");
  assert.equal(seen(null, "start", "started"), "running expected");
  assert.equal(seen("paused", "destroy"), "destroyed expected");
});

Deno.test("observeTransition() moves nothing on libvirt's stopped and release for a VM that did not run", () => {
  for (const phase of ["stopped", "release"]) {
    // After a denied first start, a denied restore, a save, or for a VM vASP does not know.
    for (const from of ["defined", "saved", "shut-off", "destroyed", null] as const) {
      assert.deepEqual(
        observeTransition(from, "shutdown", { outcome: "completed", phase }),
        { from, to: from, expected: true },
        `${phase} from ${from}`,
      );
    }
    assert.equal(
      observeTransition("paused", "shutdown", { outcome: "completed", phase }).to,
      "shut-off",
    );
  }
  // Without libvirt's phase, a completed shutdown still lands shut off.
  assert.equal(observeTransition("defined", "shutdown", { outcome: "completed" }).to, "shut-off");
});

Deno.test("observeTransition() keeps a quarantined VM quarantined until it is destroyed", () => {
  const q = (op: Operation) => observeTransition("quarantined", op, { outcome: "completed" });
  assert.deepEqual(q("pause"), { from: "quarantined", to: "quarantined", expected: true });
  assert.deepEqual(q("resume"), { from: "quarantined", to: "quarantined", expected: false });
  assert.deepEqual(q("migrate-out"), { from: "quarantined", to: "quarantined", expected: false });
  assert.deepEqual(q("destroy"), { from: "quarantined", to: "destroyed", expected: true });
});

Deno.test("observeTransition() leaves the state alone when an operation failed", () => {
  assert.deepEqual(observeTransition("running", "pause", { outcome: "failed" }), {
    from: "running",
    to: "running",
    expected: true,
  });
  assert.equal(observeTransition(null, "migrate-in", { outcome: "failed" }).to, null);
});

Deno.test("enterQuarantine() quarantines any live VM and refuses a destroyed one", () => {
  for (const state of LIFECYCLE_STATES.filter((s) => s !== "destroyed")) {
    assert.equal(enterQuarantine(state), "quarantined");
  }
  assert.throws(
    () => enterQuarantine("destroyed"),
    (e) => e instanceof VaspError && e.code === "transition_invalid",
  );
});

Deno.test("releaseQuarantine() leaves the VM paused and refuses a VM not in quarantine", () => {
  assert.equal(releaseQuarantine("quarantined"), "paused");
  assert.throws(
    () => releaseQuarantine("running"),
    (e) => e instanceof VaspError && e.code === "transition_invalid" && /running/.test(e.message),
  );
});

Deno.test("libvirt's first cont (phase launch) moves nothing: started does", () => {
  for (const from of ["defined", "shut-off", "saved", "running"] as const) {
    const check = checkTransition(from, "resume", { phase: "launch" });
    assert.deepEqual(check, { exists: true, from, to: from });
    assert.equal(
      observeTransition(from, "resume", { outcome: "completed", phase: "launch" }).to,
      from,
    );
  }
  assert.equal(checkTransition("quarantined", "resume", { phase: "launch" }).exists, false);
  assert.equal(checkTransition("defined", "resume").exists, false);
});

Deno.test("a forced shutdown (virsh destroy, quit) ends a VM shut-off, not destroyed", () => {
  for (const phase of ["forced", "quit"]) {
    assert.equal(
      observeTransition("running", "shutdown", { outcome: "completed", phase }).to,
      "shut-off",
    );
    assert.equal(
      observeTransition("quarantined", "shutdown", { outcome: "completed", phase }).to,
      "quarantined",
    );
  }
});

Deno.test("a cont after a save to a pipe (virsh dump) runs the VM again", () => {
  assert.deepEqual(checkTransition("saved", "resume", { phase: "after-save" }), {
    exists: true,
    from: "saved",
    to: "running",
  });
  // QEMU killed after its save: the VM stays saved.
  assert.equal(
    observeTransition("saved", "shutdown", { outcome: "completed", phase: "forced" }).to,
    "saved",
  );
});
