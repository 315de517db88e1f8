import assert from "node:assert/strict";
import { VaspError } from "./error.ts";
import { parseEvent } from "./event.ts";

const UUID = "4C1F6A4E-8F0B-4D8E-9A77-2A3E5F1C0B9D";

function rejects(value: unknown, field: string, text: RegExp) {
  assert.throws(
    () => parseEvent(value),
    (e) =>
      e instanceof VaspError && e.code === "event_invalid" && e.details.field === field &&
      text.test(e.message),
  );
}

Deno.test("parseEvent() accepts a well-formed event, lower-cases the UUID and defaults details", () => {
  assert.deepEqual(
    parseEvent({ operation: "start", vm: { uuid: UUID, name: "web-1" }, source: "api" }),
    {
      operation: "start",
      vm: { uuid: UUID.toLowerCase(), name: "web-1" },
      source: "api",
      details: {},
    },
  );
});

Deno.test("parseEvent() keeps phase and details", () => {
  const event = parseEvent({
    operation: "migrate-out",
    vm: { uuid: UUID, name: "db" },
    source: "qmp-gate",
    phase: "failed",
    details: { command: "migrate" },
  });
  assert.equal(event.phase, "failed");
  assert.deepEqual(event.details, { command: "migrate" });
});

Deno.test("parseEvent() rejects bad input naming the field and the value", () => {
  const vm = { uuid: UUID, name: "web-1" };
  rejects([], "", /must be a JSON object/);
  rejects({ operation: "reboot", vm, source: "api" }, "operation", /Unknown operation "reboot"/);
  rejects({ operation: "start", vm: "web-1", source: "api" }, "vm", /"vm" must be an object/);
  rejects({ operation: "start", vm: { uuid: "x", name: "a" }, source: "api" }, "vm.uuid", /"x"/);
  rejects(
    { operation: "start", vm: { uuid: UUID, name: "" }, source: "api" },
    "vm.name",
    /name ""/,
  );
  rejects({ operation: "start", vm, source: "cron" }, "source", /source "cron"/);
  rejects({ operation: "start", vm, source: "api", phase: 3 }, "phase", /phase 3/);
  rejects({ operation: "start", vm, source: "api", details: [1] }, "details", /"details"/);
  rejects(
    { operation: "start", vm, source: "api", extra: 1 },
    "extra",
    /Unknown event field "extra"/,
  );
});
