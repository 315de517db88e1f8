/**
 * Descriptor passing through the QMP gate, as libvirt does it for save, dump and migration:
 * `getfd`/`add-fd` with the descriptor attached (SCM_RIGHTS) to the command's bytes.
 */
import assert from "node:assert/strict";
import { QmpGate } from "../src/hypervisor/mod.ts";
import { VaspClient } from "../src/wire/mod.ts";
import { startBareQemu } from "./fixtures/bare_qemu.ts";
import { FdQmp } from "./fixtures/fd_qmp.ts";
import { TestDecisionServer } from "./fixtures/decision_server.ts";
import { requireTools } from "./fixtures/tools.ts";

requireTools({ "qemu-system-x86_64": "qemu-system-x86" });

const VM = { uuid: "7e9a1c3b-2d4f-4a6b-8c0d-1e3f5a7b9c2d", name: "fd-test" };
const openFds = () => [...Deno.readDirSync("/proc/self/fd")].length;

/** The descriptor this process holds for `path`. */
function fdOf(path: string): number {
  const target = Deno.realPathSync(path);
  return [...Deno.readDirSync("/proc/self/fd")].map((e) => Number(e.name)).find((n) => {
    try {
      return Deno.readLinkSync(`/proc/self/fd/${n}`) === target;
    } catch {
      return false;
    }
  })!;
}

Deno.test({
  name: "the QMP gate passes libvirt's descriptors to QEMU and closes those it does not pass",
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "vasp-gatefd-" });
    const server = new TestDecisionServer(`${dir}/vasp.sock`);
    const client = new VaspClient(server.path);
    const qemu = await startBareQemu(`${dir}/qemu.sock`, { args: ["-uuid", VM.uuid] });
    const gate = new QmpGate({ upstream: qemu.qmpPath, vm: VM, decisions: client, log: () => {} })
      .listen(`${dir}/gate.sock`);
    const qmp = await FdQmp.connect(`${dir}/gate.sock`);
    try {
      await t.step("getfd finds the descriptor sent with it, and a dump writes to it", async () => {
        using file = await Deno.open(`${dir}/dump`, { create: true, write: true });
        const reply = await qmp.execute(
          { execute: "getfd", arguments: { fdname: "dump" } },
          [fdOf(`${dir}/dump`)],
        );
        assert.deepEqual(reply, { return: {} });
        const dump = await qmp.execute({
          execute: "dump-guest-memory",
          arguments: { paging: false, protocol: "fd:dump" },
        });
        assert.deepEqual(dump, { return: {} });
        assert.equal(server.decisions.at(-1)?.details.command, "dump-guest-memory");
        file.close();
        assert.ok(Deno.statSync(`${dir}/dump`).size > 32 << 20, "QEMU wrote the guest's RAM");
      });

      await t.step(
        "a migrate into a passed file is decided as a save, not a migration",
        async () => {
          // virsh save: getfd with the file (or libvirt's pipe), then migrate to fd:NAME.
          using file = await Deno.open(`${dir}/state`, { create: true, write: true });
          await qmp.execute({ execute: "getfd", arguments: { fdname: "migrate" } }, [
            fdOf(`${dir}/state`),
          ]);
          file.close();
          await qmp.execute({
            execute: "migrate-set-capabilities",
            arguments: { capabilities: [{ capability: "events", state: true }] },
          });
          const reply = await qmp.execute({ execute: "migrate", arguments: { uri: "fd:migrate" } });
          assert.deepEqual(reply, { return: {} });
          const asked = server.decisions.at(-1)!;
          assert.equal(asked.operation, "save");
          assert.equal(asked.details.migrate_to, "file");
          for (;;) {
            const status = await qmp.execute({ execute: "query-migrate" });
            if ((status.return as { status: string }).status === "completed") break;
            await new Promise((r) => setTimeout(r, 50));
          }
          await gate.reportsIdle();
          assert.deepEqual(server.events.filter((e) => e.operation === "migrate-out"), []);
          assert.ok(Deno.statSync(`${dir}/state`).size > 100_000, "QEMU wrote its state");
        },
      );

      await t.step("a descriptor sent with a denied command is closed, not leaked", async () => {
        server.rule = () => ["no"];
        const before = openFds();
        for (let i = 0; i < 20; i++) {
          using f = await Deno.open(`${dir}/dump`);
          const reply = await qmp.execute({ execute: "stop", id: i }, [fdOf(`${dir}/dump`)]);
          assert.match((reply.error as { desc: string }).desc, /^vASP denied stop/);
          f.close();
        }
        assert.equal(openFds(), before);
      });

      await t.step(
        "without a descriptor, getfd fails in QEMU as it would without the gate",
        async () => {
          const reply = await qmp.execute({ execute: "getfd", arguments: { fdname: "none" } });
          assert.match((reply.error as { desc: string }).desc, /No file descriptor supplied/);
        },
      );
    } finally {
      qmp.close();
      await gate.close();
      client.close();
      await qemu.close();
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
