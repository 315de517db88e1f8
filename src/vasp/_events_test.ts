import assert from "node:assert/strict";
import { parseEvent } from "../engine/mod.ts";
import { snapshotStep } from "./_events.ts";

const event = (operation: string, details: Record<string, unknown>, phase?: string) =>
  parseEvent({
    operation,
    vm: { uuid: "6f1c2a9e-3b4d-4c5e-8f70-1a2b3c4d5e6f", name: "web-1" },
    source: "qmp-gate",
    details,
    ...(phase ? { phase } : {}),
  });

Deno.test("snapshotStep() reads a snapshot's action and name, saving when no action is given", () => {
  assert.deepEqual(snapshotStep(event("snapshot", { snapshot: "A" })), {
    action: "save",
    name: "A",
  });
  assert.deepEqual(snapshotStep(event("snapshot", { action: "delete", snapshot: "A" })), {
    action: "delete",
    name: "A",
  });
  assert.deepEqual(snapshotStep(event("snapshot", { action: "load" })), { action: "load" });
});

Deno.test("snapshotStep() takes a restore with action load and a start or restore naming a snapshot as a revert", () => {
  assert.deepEqual(snapshotStep(event("restore", { action: "load", snapshot: "B" })), {
    action: "load",
    name: "B",
  });
  assert.deepEqual(snapshotStep(event("start", { snapshot: "B" })), { action: "load", name: "B" });
  assert.deepEqual(snapshotStep(event("restore", { snapshot: "B" }, "begin")), {
    action: "load",
    name: "B",
  });
  assert.equal(snapshotStep(event("restore", {}, "begin")), undefined);
  assert.equal(snapshotStep(event("start", { domain_xml_b64: "" }, "prepare")), undefined);
  assert.equal(snapshotStep(event("save", { snapshot: "A" })), undefined);
});

Deno.test("snapshotStep() refuses an unknown action and a name that is not one", () => {
  for (
    const [details, message] of [
      [{ action: "rename" }, /details\.action of a snapshot must be save, load or delete/],
      [{ action: 1 }, /must be save, load or delete, got 1/],
      [{ snapshot: "" }, /details\.snapshot must be a snapshot name of 1 to 256 characters/],
      [{ snapshot: "x".repeat(257) }, /1 to 256 characters/],
      [{ snapshot: "a\u0000b" }, /without control characters/],
      [{ snapshot: 7 }, /got 7$/],
    ] as const
  ) {
    assert.throws(() => snapshotStep(event("snapshot", details)), {
      code: "event_invalid",
      message,
    });
  }
  assert.throws(() => snapshotStep(event("start", { snapshot: true })), { code: "event_invalid" });
  assert.equal(snapshotStep(event("snapshot", { snapshot: "x".repeat(256) }))?.name?.length, 256);
});
