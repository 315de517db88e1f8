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
    ["quit", "shutdown", "quit"],
  ];
  for (const [command, operation, phase] of cases) {
    const g = classifyCommand(command, undefined);
    assert.equal(g?.operation, operation, command);
    assert.equal(g?.phase, phase, command);
    assert.equal(g?.details.command, command);
  }
  assert.equal(classifyCommand("snapshot-delete", {})?.details.action, "delete");
  assert.equal(classifyCommand("dump-guest-memory", {})?.details.exposes_memory, true);
  for (const pass of ["query-status", "qmp_capabilities", "query-name", "getfd", "add-fd"]) {
    assert.equal(classifyCommand(pass, {}), undefined, pass);
  }
});

Deno.test("classifyCommand() passes only the allow-list and asks about the rest by what it does", () => {
  const op = (command: string, args: unknown = {}) => classifyCommand(command, args)?.operation;
  assert.equal(op("drive-backup"), "disk-export");
  assert.equal(op("nbd-server-start"), "disk-export");
  assert.equal(op("block-export-add"), "disk-export");
  assert.equal(op("send-key"), "guest-input");
  assert.equal(op("inject-nmi"), "guest-input");
  assert.equal(op("device_add", { driver: "virtio-net-pci" }), "device-attach");
  assert.equal(
    classifyCommand("device_add", { driver: "virtio-net-pci" })?.details.exposes_memory,
    undefined,
  );
  for (
    const [command, args] of [
      ["device_add", { driver: "vhost-user-fs-pci" }],
      ["device_add", { driver: "vfio-user-pci" }],
      ["netdev_add", { type: "vhost-user" }],
      ["object-add", { "qom-type": "filter-dump", id: "f" }],
      ["object-add", { "qom-type": "memory-backend-file", share: true }],
    ] as const
  ) {
    assert.equal(
      classifyCommand(command, args)?.details.exposes_memory,
      true,
      JSON.stringify(args),
    );
  }
  assert.equal(op("set-action", { panic: "none" }), "unknown");
  assert.equal(op("x-query-virtio-queue-element"), "unknown");
  assert.equal(op("qom-set", { path: "/machine", property: "x", value: 1 }), "unknown");
  assert.equal(
    op("qom-set", { path: "b", property: "guest-stats-polling-interval", value: 5 }),
    undefined,
  );
  assert.equal(op("blockdev-snapshot-sync"), "snapshot");
  assert.equal(classifyCommand("blockdev-snapshot-sync", {})?.details.disk_only, true);
  const tx = (...types: string[]) =>
    op("transaction", { actions: types.map((type) => ({ type })) });
  assert.equal(tx("block-dirty-bitmap-add", "block-dirty-bitmap-disable"), undefined);
  assert.equal(tx("blockdev-snapshot-sync", "block-dirty-bitmap-add"), "snapshot");
  assert.equal(tx("blockdev-backup", "block-dirty-bitmap-add"), "disk-export");
  assert.equal(tx("x-frobnicate"), "unknown");
});

Deno.test("classifyCommand() names the internal snapshot a QMP snapshot job works on", () => {
  const job = (command: string) =>
    classifyCommand(command, { "job-id": "j", tag: "snap-1", "vmstate": "d0", devices: ["d0"] });
  assert.deepEqual(
    ["snapshot-save", "snapshot-load", "snapshot-delete"].map((c) => job(c)?.details.snapshot),
    ["snap-1", "snap-1", "snap-1"],
  );
  assert.equal(job("snapshot-load")?.operation, "restore");
  assert.equal(
    classifyCommand("blockdev-snapshot-sync", { tag: "t" })?.details.snapshot,
    undefined,
  );
});

Deno.test("classifyCommand() reads HMP command lines as QEMU does, aliases included", () => {
  assert.equal(hmp("info status"), undefined);
  assert.equal(hmp("info"), undefined);
  assert.equal(hmp("   info registers")?.details.exposes_memory, true);
  assert.equal(hmp("info tlb")?.details.exposes_memory, true);
  assert.equal(hmp("info jit")?.operation, "unknown");
  assert.equal(hmp("s")?.operation, "pause");
  assert.equal(hmp("\tc")?.operation, "resume");
  assert.equal(hmp("q")?.operation, "shutdown");
  assert.equal(hmp("q")?.phase, "quit");
  assert.equal(hmp("savevm before-upgrade")?.details.action, "save");
  assert.equal(hmp("savevm before-upgrade")?.details.snapshot, "before-upgrade");
  assert.equal(hmp("loadvm x")?.details.snapshot, "x");
  // libvirt quotes the name: `savevm "s1"` names s1, as QEMU reads it.
  assert.equal(hmp('savevm "s1"')?.details.snapshot, "s1");
  assert.equal(hmp('savevm  "a \\"b\\" c"')?.details.snapshot, 'a "b" c');
  assert.equal(hmp('delvm "open')?.details.snapshot, undefined);
  assert.equal(hmp("savevm")?.details.snapshot, undefined, "QEMU names it: refused later");
  assert.equal(hmp("loadvm x")?.operation, "restore");
  assert.equal(hmp("delvm x")?.details.action, "delete");
  assert.equal(hmp("xp /16x 0")?.details.exposes_memory, true);
  assert.equal(hmp("xp /16x 0")?.details.unclassified, undefined);
  assert.equal(hmp("nmi")?.operation, "guest-input");
  assert.equal(hmp("device_add vhost-user-fs-pci")?.details.exposes_memory, true);
  const unknown = hmp("frobnicate 1");
  assert.equal(unknown?.operation, "unknown");
  assert.equal(unknown?.details.hmp_command, "frobnicate");
  assert.equal(unknown?.label, "human-monitor-command frobnicate");
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
  // virsh destroy (SIGTERM) and quit are forced power-offs, not the end of the VM's life.
  for (const reason of ["host-qmp-quit", "host-signal"]) {
    assert.deepEqual(classifyEvent("SHUTDOWN", { guest: false, reason }, undefined), {
      operation: "shutdown",
      phase: "forced",
      outcome: "completed",
    });
  }
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

Deno.test("classifyCommand() takes a migrate into a file or pipe for a save, into a socket for a migration", () => {
  const kinds = new Map([["file", "file"], ["pipe", "pipe"], ["sock", "socket"]] as const);
  const options = { fdKind: (name: string) => kinds.get(name as "file") };
  const migrate = (uri: string) => classifyCommand("migrate", { uri }, options);
  // virsh save, managedsave and dump (without --memory-only) migrate into a pipe or file.
  assert.equal(migrate("fd:pipe")?.operation, "save");
  assert.equal(migrate("fd:pipe")?.details.migrate_to, "pipe");
  assert.equal(migrate("fd:file")?.operation, "save");
  assert.equal(migrate("exec:cat > /tmp/x")?.operation, "save");
  assert.equal(migrate("fd:sock")?.operation, "migrate-out");
  assert.equal(migrate("tcp:10.0.0.2:49152")?.operation, "migrate-out");
  // A descriptor the gate did not see pass is taken for the stricter case, a migration.
  assert.equal(migrate("fd:unseen")?.operation, "migrate-out");
  assert.equal(migrate("fd:unseen")?.details.migrate_to, "unknown");
});
