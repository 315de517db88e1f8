import assert from "node:assert/strict";
import { QmpGate } from "../src/hypervisor/mod.ts";
import { VaspClient } from "../src/wire/mod.ts";
import { RawQmp, startBareQemu } from "./fixtures/bare_qemu.ts";
import { TestDecisionServer } from "./fixtures/decision_server.ts";
import { requireTools } from "./fixtures/tools.ts";

requireTools({ "qemu-system-x86_64": "qemu-system-x86" });

const VM = { uuid: "0f4c2a3e-5b6d-4e7f-8a9b-0c1d2e3f4a5b", name: "gate-test" };

/** QEMU behind the gate, the gate, and a test decision server; all torn down by dispose. */
async function setUp(options: { timeoutMs?: number } = {}) {
  const dir = await Deno.makeTempDir({ prefix: "vasp-gate-" });
  const logs: string[] = [];
  const server = new TestDecisionServer(`${dir}/vasp.sock`);
  const client = new VaspClient(server.path, { timeoutMs: options.timeoutMs ?? 2000 });
  const qemu = await startBareQemu(`${dir}/qemu.sock`, { args: ["-uuid", VM.uuid] });
  const gate = new QmpGate({
    upstream: qemu.qmpPath,
    vm: VM,
    decisions: client,
    log: (l) => logs.push(l),
  })
    .listen(`${dir}/gate.sock`);
  const clients: RawQmp[] = [];
  const connect = async () => {
    const qmp = await RawQmp.connect(`${dir}/gate.sock`);
    clients.push(qmp);
    const greeting = await qmp.next();
    assert.ok(
      greeting && "QMP" in greeting,
      `greeting passes through: ${JSON.stringify(greeting)}`,
    );
    assert.deepEqual(await qmp.execute({ execute: "qmp_capabilities" }), { return: {} });
    return qmp;
  };
  const status = async (qmp: RawQmp) =>
    ((await qmp.execute({ execute: "query-status" })).return as { status: string }).status;
  return {
    server,
    gate,
    qemu,
    logs,
    connect,
    status,
    async [Symbol.asyncDispose]() {
      for (const c of clients) await c.close();
      await gate.close();
      client.close();
      await qemu.close();
      await server.close().catch(() => {});
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const denyPause = (body: { operation: string }) =>
  body.operation === "pause" ? ["pausing gate-test is not allowed"] : [];

Deno.test({
  name: "the QMP gate in front of a real QEMU stops denied commands and passes allowed ones",
  async fn(t) {
    await using env = await setUp();
    const qmp = await env.connect();

    await t.step("query commands pass through without a decision", async () => {
      assert.equal(await env.status(qmp), "running");
      const hmp = await qmp.execute({
        execute: "human-monitor-command",
        arguments: { "command-line": "info status" },
      });
      assert.match(String(hmp.return), /VM status: running/);
      assert.equal(env.server.decisions.length, 0);
    });

    await t.step(
      "a denied stop gets a QMP error with its id and the guest keeps running",
      async () => {
        env.server.rule = denyPause;
        const reply = await qmp.execute({ execute: "stop", id: "s-1" });
        const error = reply.error as { class: string; desc: string };
        assert.equal(error.class, "GenericError");
        assert.match(
          error.desc,
          /^vASP denied stop: pausing gate-test is not allowed \(decision d-\d+\)$/,
        );
        assert.equal(reply.id, "s-1");
        assert.equal(await env.status(qmp), "running");
        const asked = env.server.decisions.at(-1)!;
        assert.equal(asked.operation, "pause");
        assert.deepEqual(asked.vm, VM);
        assert.equal(asked.source, "qmp-gate");
        assert.equal(asked.details.command, "stop");
      },
    );

    await t.step("an allowed stop pauses the guest and its STOP event is reported", async () => {
      env.server.rule = () => [];
      assert.deepEqual(await qmp.execute({ execute: "stop", id: 7 }), { return: {}, id: 7 });
      assert.equal(await env.status(qmp), "paused");
      await qmp.waitEvent("STOP");
      await env.gate.reportsIdle();
      const reported = env.server.events.find((e) => e.details.event === "STOP");
      assert.equal(reported?.operation, "pause");
      assert.equal(reported?.outcome, "completed");
      assert.deepEqual(reported?.vm, VM);
    });

    await t.step("cont is gated as resume and RESUME is reported", async () => {
      assert.deepEqual(await qmp.execute({ execute: "cont" }), { return: {} });
      assert.equal(env.server.decisions.at(-1)!.operation, "resume");
      assert.equal(await env.status(qmp), "running");
      await qmp.waitEvent("RESUME");
      await env.gate.reportsIdle();
      assert.ok(env.server.events.some((e) => e.operation === "resume"));
    });

    await t.step("pipelined commands keep their order around a denial", async () => {
      env.server.rule = async (body) => {
        await new Promise((r) => setTimeout(r, 50));
        return denyPause(body);
      };
      await qmp.send(
        '{"execute":"query-status","id":1}{"execute":"stop","id":2}\n{"execute":"query-name","id":3}',
      );
      const ids = [await qmp.next(), await qmp.next(), await qmp.next()].map((r) => r?.id);
      assert.deepEqual(ids, [1, 2, 3]);
      assert.equal(await env.status(qmp), "running");
    });

    await t.step("single-quoted and escaped command names are gated like plain ones", async () => {
      const before = env.server.decisions.length;
      await qmp.send(`{'execute': 'stop', 'id': 'q'}`);
      const quoted = await qmp.next();
      assert.match((quoted?.error as { desc: string }).desc, /^vASP denied stop/);
      assert.equal(quoted?.id, "q");
      await qmp.send(`{"execute": "st\\u006fp", "id": "u"}`);
      const escaped = await qmp.next();
      assert.match((escaped?.error as { desc: string }).desc, /^vASP denied stop/);
      assert.equal(env.server.decisions.length, before + 2);
      assert.equal(await env.status(qmp), "running");
    });

    await t.step("input QEMU would refuse is answered by the gate, which stays up", async () => {
      await qmp.send('{"execute":"stop","execute":"query-status"}');
      assert.match(((await qmp.next())?.error as { desc: string }).desc, /duplicate key/);
      await qmp.send("@");
      assert.match(((await qmp.next())?.error as { desc: string }).desc, /JSON parse error/);
      await qmp.send("[1, 2]");
      assert.match(((await qmp.next())?.error as { desc: string }).desc, /must be a JSON object/);
      assert.equal(await env.status(qmp), "running");
    });

    await t.step(
      "HMP savevm, info registers, an unknown HMP command and memory dumps need a decision",
      async () => {
        env.server.rule = () => ["no"];
        const hmp = (line: string) =>
          qmp.execute({ execute: "human-monitor-command", arguments: { "command-line": line } });
        assert.match(
          ((await hmp("savevm snap1")).error as { desc: string }).desc,
          /denied human-monitor-command savevm/,
        );
        assert.equal(env.server.decisions.at(-1)!.operation, "snapshot");
        await hmp("  frobnicate");
        assert.equal(env.server.decisions.at(-1)!.operation, "unknown");
        assert.equal(env.server.decisions.at(-1)!.details.hmp_command, "frobnicate");
        await hmp("info registers");
        assert.equal(env.server.decisions.at(-1)!.details.exposes_memory, true);
        await qmp.execute({
          execute: "pmemsave",
          arguments: { val: 0, size: 16, filename: "/dev/null" },
        });
        assert.equal(env.server.decisions.at(-1)!.operation, "save");
        assert.equal(env.server.decisions.at(-1)!.details.exposes_memory, true);
        await hmp("s");
        assert.equal(env.server.decisions.at(-1)!.operation, "pause");
        assert.equal(await env.status(qmp), "running");
      },
    );

    await t.step("the smuggle of issue 8 is refused with a QMP error and reported", async () => {
      const ids = "0,".repeat(1 << 20);
      await qmp.send(`{"execute":"query-status","id":[${ids}{"execute":"stop"}]}`);
      const reply = await qmp.next();
      assert.match(
        (reply?.error as { desc: string }).desc,
        /^vASP refused the input: JSON token count limit exceeded/,
      );
      assert.equal(await env.status(qmp), "running");
      await env.gate.reportsIdle();
      const event = env.server.events.at(-1)!;
      assert.equal(event.operation, "unknown");
      assert.equal(event.outcome, "failed");
      assert.match(String(event.details.refused), /token count limit/);
    });

    await t.step("a dead decision server denies (fail closed)", async () => {
      await qmp.execute({ execute: "cont" });
      await env.server.close();
      const reply = await qmp.execute({ execute: "stop", id: "dead" });
      assert.match(
        (reply.error as { desc: string }).desc,
        /^vASP denied stop: no decision \(decision_unavailable/,
      );
      assert.equal(reply.id, "dead");
      assert.equal(await env.status(qmp), "running");
    });

    await t.step("QEMU going away closes the client", async () => {
      await env.qemu.close();
      assert.equal(await qmp.next(), undefined);
      assert.ok(qmp.ended);
    });
  },
});

Deno.test({
  name: "the gate's lane passes allow-listed queries itself, in order with what the engine decides",
  async fn() {
    await using env = await setUp();
    const qmp = await env.connect();
    env.server.rule = () => [];
    for (let i = 0; i < 20; i++) {
      assert.deepEqual(await qmp.execute({ execute: "query-name", id: i }), {
        return: {},
        id: i,
      });
      if (i === 10) {
        assert.deepEqual(await qmp.execute({ execute: "stop" }), { return: {} });
        assert.equal(await env.status(qmp), "paused");
        assert.deepEqual(await qmp.execute({ execute: "cont" }), { return: {} });
      }
    }
    assert.equal(env.server.decisions.length, 2, "stop and cont were decided, no query was");
    await qmp.close();
    // The count is the gate's once the connection has ended.
    const deadline = Date.now() + 30_000;
    while (env.gate.lanePassed === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    // qmp_capabilities, the 20 queries and query-status (the events around stop and cont may
    // send a query the engine's way).
    assert.ok(env.gate.lanePassed >= 18, `the lane passed ${env.gate.lanePassed}`);
  },
});

Deno.test({
  name: "the QMP gate denies when the decision server answers too late",
  async fn() {
    await using env = await setUp({ timeoutMs: 100 });
    env.server.rule = async () => (await new Promise((r) => setTimeout(r, 400)), []);
    const qmp = await env.connect();
    const reply = await qmp.execute({ execute: "stop" });
    assert.match((reply.error as { desc: string }).desc, /no answer within 100 ms/);
    assert.equal(await env.status(qmp), "running");
    await new Promise((r) => setTimeout(r, 400)); // let the late answer land before teardown
  },
});

Deno.test({
  name: "the QMP gate denies on a malformed answer or an error status, naming the cause",
  async fn() {
    await using env = await setUp();
    const qmp = await env.connect();
    const desc = async () =>
      ((await qmp.execute({ execute: "stop" })).error as { desc: string }).desc;
    env.server.rule = () => Response.json({ allow: true });
    assert.match(await desc(), /answer_malformed/);
    env.server.rule = () =>
      Response.json({ code: "audit_write_failed", message: "disk full", decision_id: "d-x" }, {
        status: 503,
      });
    assert.match(await desc(), /no decision \(audit_write_failed: disk full\) \(decision d-x\)$/);
    assert.equal(await env.status(qmp), "running");
  },
});

Deno.test({
  name: "the QMP gate names the denying reasons of a denial, not the warnings beside them",
  async fn() {
    await using env = await setUp();
    env.server.rule = () =>
      Response.json({
        decision_id: "d-w",
        allow: false,
        reasons: [
          { policy: "p", rule: "fresh", message: "measurement is old", effect: "warn" },
          { policy: "p", rule: "bound", message: "no vASP bound", effect: "deny" },
        ],
        actions: [],
        policy_revision: "r",
        state: "running",
        transition: { from: "running", to: null },
      });
    const qmp = await env.connect();
    const reply = await qmp.execute({ execute: "stop" });
    assert.equal(
      (reply.error as { desc: string }).desc,
      "vASP denied stop: no vASP bound (decision d-w)",
    );
  },
});

Deno.test({
  name: "the QMP gate keeps serving after a client leaves while its decision is pending",
  async fn() {
    await using env = await setUp();
    env.server.rule = async () => (await new Promise((r) => setTimeout(r, 200)), []);
    const leaving = await env.connect();
    await leaving.send('{"execute":"stop"}');
    await leaving.close();
    // QEMU serves one monitor client at a time: the next greeting comes once the gate has
    // finished the first connection. Whether a command sent just before leaving runs is up
    // to QEMU (as on its own socket); the reply must not leak into the next session.
    const next = await env.connect();
    assert.ok(["running", "paused"].includes(await env.status(next)));
    assert.equal(await env.status(next), await env.status(next));
    assert.equal(env.server.decisions.length, 1);
  },
});

Deno.test({
  name: "the QMP gate does not report savevm's MIGRATION events as an outgoing migration",
  async fn() {
    requireTools({ "qemu-img": "qemu-utils" });
    const dir = await Deno.makeTempDir({ prefix: "vasp-gate-savevm-" });
    const disk = `${dir}/disk.qcow2`;
    const made = await new Deno.Command("qemu-img", {
      args: ["create", "-f", "qcow2", disk, "16M"],
      stdout: "null",
    }).output();
    assert.ok(made.success);
    const server = new TestDecisionServer(`${dir}/vasp.sock`);
    const client = new VaspClient(server.path);
    const qemu = await startBareQemu(`${dir}/qemu.sock`, {
      args: ["-uuid", VM.uuid, "-drive", `file=${disk},if=virtio`],
    });
    const gate = new QmpGate({ upstream: qemu.qmpPath, vm: VM, decisions: client, log: () => {} })
      .listen(`${dir}/gate.sock`);
    const qmp = await RawQmp.connect(`${dir}/gate.sock`);
    try {
      await qmp.next();
      await qmp.execute({ execute: "qmp_capabilities" });
      // libvirt turns migration events on; savevm then emits MIGRATION setup … completed.
      await qmp.execute({
        execute: "migrate-set-capabilities",
        arguments: { capabilities: [{ capability: "events", state: true }] },
      });
      const reply = await qmp.execute({
        execute: "human-monitor-command",
        arguments: { "command-line": "savevm s1" },
      });
      assert.equal(reply.return, "");
      const migration = await qmp.waitEvent("MIGRATION");
      assert.ok(migration, "QEMU emitted MIGRATION during savevm");
      await qmp.waitEvent("RESUME");
      await gate.reportsIdle();
      assert.deepEqual(server.events.filter((e) => e.operation.startsWith("migrate")), []);
      const snapshot = server.events.find((e) => e.operation === "snapshot");
      assert.equal(snapshot?.outcome, "completed");
      assert.equal(snapshot?.details.hmp_command, "savevm");
    } finally {
      await qmp.close();
      await gate.close();
      client.close();
      await qemu.close();
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
