import assert from "node:assert/strict";
import {
  checkTransition,
  enterQuarantine,
  LIFECYCLE_STATES,
  type LifecycleState,
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
  assert.deepEqual(operationsFrom("quarantined"), ["destroy", "measurement"]);
});

Deno.test("a destroyed VM can only be defined again", () => {
  assert.deepEqual(operationsFrom("destroyed"), ["define"]);
});

Deno.test("an outgoing migration ends shut off when completed and running when it fails", () => {
  assert.deepEqual(checkTransition("migrating", "migrate-out", { phase: "completed" }), {
    exists: true,
    from: "migrating",
    to: "shut-off",
  });
  for (const phase of ["failed", "cancelled"]) {
    const got = checkTransition("migrating", "migrate-out", { phase });
    assert.equal(got.exists && got.to, "running", phase);
  }
  const early = checkTransition("running", "migrate-out", { phase: "completed" });
  assert.equal(!early.exists && early.reason, "no migrate-out completed from state running");
});

Deno.test("a phase that is not an outcome is treated as a request", () => {
  assert.deepEqual(checkTransition("running", "migrate-out", { phase: "begin" }), {
    exists: true,
    from: "running",
    to: "migrating",
  });
  assert.equal(checkTransition("defined", "start", { phase: "completed" }).exists, true);
});

Deno.test("enterQuarantine() quarantines any live VM and refuses a destroyed one", () => {
  for (const state of LIFECYCLE_STATES.filter((s) => s !== "destroyed")) {
    assert.equal(enterQuarantine(state), "quarantined");
  }
  assert.throws(
    () => enterQuarantine("destroyed"),
    (e) => e instanceof VaspError && e.code === "invalid_transition",
  );
});

Deno.test("releaseQuarantine() leaves the VM paused and refuses a VM not in quarantine", () => {
  assert.equal(releaseQuarantine("quarantined"), "paused");
  assert.throws(
    () => releaseQuarantine("running"),
    (e) => e instanceof VaspError && e.code === "invalid_transition" && /running/.test(e.message),
  );
});
