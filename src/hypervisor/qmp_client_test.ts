import assert from "node:assert/strict";
import { QmpClient } from "./qmp_client.ts";

const GREETING = {
  QMP: {
    version: { qemu: { major: 7, minor: 2, micro: 22 }, package: " Debian x " },
    capabilities: [],
  },
};

/**
 * A scripted QMP peer on a Unix socket: `script` gets each parsed command and a `send`
 * function; `hello` replaces the greeting.
 */
async function fakeQmp(
  script: (
    cmd: { execute: string; id?: string },
    send: (v: unknown) => Promise<void>,
  ) => Promise<void>,
  hello: string = `${JSON.stringify(GREETING)}\r\n`,
) {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/qmp.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const served = (async () => {
    const conn = await listener.accept();
    const encoder = new TextEncoder();
    const send = async (v: unknown) => {
      await conn.write(encoder.encode(`${JSON.stringify(v)}\r\n`)).catch(() => {});
    };
    await conn.write(encoder.encode(hello)).catch(() => {});
    let buffered = "";
    try {
      for await (const chunk of conn.readable) {
        buffered += new TextDecoder().decode(chunk);
        let nl;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          const cmd = JSON.parse(buffered.slice(0, nl));
          buffered = buffered.slice(nl + 1);
          if (cmd.execute === "qmp_capabilities") await send({ return: {}, id: cmd.id });
          else await script(cmd, send);
          if (cmd.execute === "hang-up") return conn.close();
        }
      }
    } catch { /* the client closed first */ }
  })();
  return {
    path,
    async [Symbol.asyncDispose]() {
      listener.close();
      await served;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("QmpClient matches answers by id, out of order, with events in between", async () => {
  const held: { id?: string }[] = [];
  await using server = await fakeQmp(async (cmd, send) => {
    if (cmd.execute === "slow") return void held.push(cmd);
    await send({ event: "STOP", timestamp: { seconds: 1, microseconds: 2 } });
    await send({ return: { status: "paused" }, id: cmd.id });
    for (const h of held.splice(0)) await send({ return: "slow done", id: h.id });
    await send({ event: "RESUME" });
  });
  await using qmp = await QmpClient.connect(server.path);
  assert.deepEqual(qmp.version?.qemu, { major: 7, minor: 2, micro: 22 });
  const slow = qmp.execute("slow");
  assert.deepEqual(await qmp.execute("query-status"), { status: "paused" });
  assert.equal(await slow, "slow done");
  assert.equal((await qmp.nextEvent("RESUME")).event, "RESUME");
  assert.equal((await qmp.nextEvent()).event, "STOP", "an event nobody waited for stays queued");
});

Deno.test("QmpClient turns a QMP error into qmp_failed with its class", async () => {
  await using server = await fakeQmp((cmd, send) =>
    send({
      error: { class: "CommandNotFound", desc: "The command nope has not been found" },
      id: cmd.id,
    })
  );
  await using qmp = await QmpClient.connect(server.path);
  await assert.rejects(() => qmp.hmp("info registers"), {
    name: "VaspError",
    code: "qmp_failed",
    message: /CommandNotFound: The command nope/,
  });
});

Deno.test("QmpClient fails pending and later commands with qmp_closed when QEMU goes away", async () => {
  await using server = await fakeQmp(() => Promise.resolve());
  await using qmp = await QmpClient.connect(server.path);
  await assert.rejects(() => qmp.execute("hang-up"), { code: "qmp_closed" });
  await assert.rejects(() => qmp.execute("query-status"), { code: "qmp_closed" });
  await assert.rejects(() => qmp.nextEvent("STOP"), { code: "qmp_closed" });
});

Deno.test("QmpClient refuses a peer that does not speak QMP", async () => {
  await using server = await fakeQmp(() => Promise.resolve(), "SSH-2.0-OpenSSH\r\n");
  await assert.rejects(() => QmpClient.connect(server.path), { code: "qmp_protocol_violated" });
});

Deno.test("QmpClient times out a command QEMU never answers, and a missing socket fails to connect", async () => {
  await using server = await fakeQmp(() => Promise.resolve());
  await using qmp = await QmpClient.connect(server.path);
  await assert.rejects(() => qmp.execute("query-status", undefined, { timeoutMs: 50 }), {
    code: "qmp_timeout",
    message: /"query-status".*50 ms/,
  });
  await assert.rejects(() => QmpClient.connect(`${server.path}.missing`), {
    code: "qmp_unreachable",
    message: /\.missing/,
  });
});
