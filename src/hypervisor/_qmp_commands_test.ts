import assert from "node:assert/strict";
import { classifyCommand, classifyEvent } from "./_qmp_commands.ts";

const hmp = (line: string) => classifyCommand("human-monitor-command", { "command-line": line });

Deno.test("classifyCommand() maps life-cycle commands to operations and passes queries", () => {
  const cases: [string, string, string | undefined][] = [
    ["stop", "pause", undefined],
    ["cont", "resume", undefined],
    ["migrate", "migrate-out", undefined],
    ["migrate-incoming", "migrate-in", undefined],
    ["snapshot-load", "restore", undefined],
    ["system_reset", "start", "reset"],
    ["system_powerdown", "shutdown", undefined],
    ["quit", "destroy", undefined],
  ];
  for (const [command, operation, phase] of cases) {
    const g = classifyCommand(command, undefined);
    assert.equal(g?.operation, operation, command);
    assert.equal(g?.phase, phase, command);
    assert.equal(g?.details.command, command);
  }
  assert.equal(classifyCommand("snapshot-delete", {})?.details.action, "delete");
  assert.equal(classifyCommand("dump-guest-memory", {})?.details.exposes_memory, true);
  for (const pass of ["query-status", "qmp_capabilities", "query-name", "device_add"]) {
    assert.equal(classifyCommand(pass, {}), undefined, pass);
  }
});

Deno.test("classifyCommand() reads HMP command lines as QEMU does, aliases included", () => {
  assert.equal(hmp("info status"), undefined);
  assert.equal(hmp("   info registers"), undefined);
  assert.equal(hmp("s")?.operation, "pause");
  assert.equal(hmp("\tc")?.operation, "resume");
  assert.equal(hmp("q")?.operation, "destroy");
  assert.equal(hmp("savevm before-upgrade")?.details.action, "save");
  assert.equal(hmp("loadvm x")?.operation, "restore");
  assert.equal(hmp("delvm x")?.details.action, "delete");
  assert.equal(hmp("xp /16x 0")?.details.exposes_memory, true);
  assert.equal(hmp("xp /16x 0")?.details.unclassified, undefined);
  const unknown = hmp("nmi");
  assert.equal(unknown?.operation, "save");
  assert.equal(unknown?.details.unclassified, true);
  assert.equal(unknown?.label, "human-monitor-command nmi");
  assert.equal(classifyCommand("human-monitor-command", {}), undefined);
});

Deno.test("classifyEvent() reports state-moving events and tells migration direction apart", () => {
  assert.deepEqual(classifyEvent("STOP", undefined, undefined), {
    operation: "pause",
    outcome: "completed",
  });
  assert.equal(
    classifyEvent("SHUTDOWN", { guest: true, reason: "guest-shutdown" }, undefined)?.operation,
    "shutdown",
  );
  assert.equal(
    classifyEvent("SHUTDOWN", { guest: false, reason: "host-qmp-quit" }, undefined)?.operation,
    "destroy",
  );
  assert.deepEqual(classifyEvent("MIGRATION", { status: "completed" }, "in"), {
    operation: "migrate-in",
    outcome: "completed",
  });
  assert.equal(classifyEvent("MIGRATION", { status: "failed" }, "out")?.outcome, "failed");
  assert.equal(
    classifyEvent("MIGRATION", { status: "completed" }, "out")?.operation,
    "migrate-out",
  );
  assert.equal(classifyEvent("MIGRATION", { status: "active" }, "out"), undefined);
  assert.equal(classifyEvent("BLOCK_JOB_READY", {}, undefined), undefined);
});

Deno.test("classifyEvent() does not take savevm's MIGRATION events for a migration", () => {
  // savevm runs QEMU's migration code to write the snapshot and emits its status events.
  assert.equal(classifyEvent("MIGRATION", { status: "completed" }, undefined), undefined);
  assert.equal(classifyEvent("MIGRATION", { status: "failed" }, undefined), undefined);
});
