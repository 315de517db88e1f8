/**
 * The hooks against the real decision server: `vasp serve` with the default policy set, the
 * libvirt hook run as libvirt runs it, and the QMP gate in front of a real QEMU.
 */
import assert from "node:assert/strict";
import { QmpGate } from "../src/hypervisor/mod.ts";
import { VaspClient } from "../src/wire/mod.ts";
import { RawQmp, startBareQemu } from "./fixtures/bare_qemu.ts";
import { requireTools } from "./fixtures/tools.ts";

requireTools({ "qemu-system-x86_64": "qemu-system-x86" });

const ROOT = new URL("..", import.meta.url).pathname;
const HOOK = `${ROOT}native/build/vasp-hook`;
const XML = await Deno.readFile(`${ROOT}tests/fixtures/libvirt_domain.xml`);
const VM = { uuid: "6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c", name: "web-1" };

/** `vasp serve` on a Unix socket in a fresh state directory. */
async function serve() {
  const dir = await Deno.makeTempDir({ prefix: "vasp-serve-hooks-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/cli/main.ts", "serve", "--state-dir", dir, "--no-tcp"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("ready;")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`vasp serve ended before it was ready: ${out}`);
    out += value;
  }
  // The hooks use the hook socket, as deployed; the test reads the audit on the operator's.
  const socket = `${dir}/hook.sock`;
  const http = Deno.createHttpClient({ proxy: { transport: "unix", path: `${dir}/vasp.sock` } });
  return {
    dir,
    socket,
    /** The audit records of the test VM (read over the operator socket). */
    async audit(): Promise<Record<string, unknown>[]> {
      const res = await fetch(`http://localhost/v1/audit?vm=${VM.uuid}`, { client: http });
      return (await res.json()).records;
    },
    async [Symbol.asyncDispose]() {
      http.close();
      child.kill("SIGTERM");
      await reader.cancel().catch(() => {});
      await child.stderr.cancel().catch(() => {});
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function hook(socket: string, dir: string, op: string, sub: string) {
  const child = new Deno.Command(HOOK, {
    args: [VM.name, op, sub, "-"],
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      VASP_SOCKET: socket,
      VASP_HOOK_CONF: `${dir}/none.conf`,
      VASP_HOOK_PENDING: `${dir}/pending.jsonl`,
      VASP_BREAK_GLASS: `${dir}/none`,
      VASP_HOOK_RUN_DIR: `${dir}/run`,
    },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(XML);
  await writer.close();
  const out = await child.output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test({
  name: "the hooks speak the real decision API: libvirt hook and QMP gate against vasp serve",
  async fn(t) {
    await using server = await serve();

    await t.step("the hook enforces the engine's answer to prepare, reasons shown", async () => {
      const r = await hook(server.socket, server.dir, "prepare", "begin");
      const id = /denied by policy \(decision ([\w-]+)\)/.exec(r.stderr)?.[1];
      const record = (await server.audit()).find((rec) => rec.decision_id === id);
      // The answer the hook enforced is the one the engine recorded.
      assert.equal(record?.result, r.code === 0 ? "allow" : "deny", r.stderr);
      assert.equal(record?.source, "libvirt-hook");
      // An unregistered VM without a vASP instance is not allowed to start by the defaults.
      assert.equal(r.code, 1, r.stderr);
      for (const reason of record!.reasons as { message: string; effect: string }[]) {
        assert.ok(r.stderr.includes(`  - ${reason.message}`), reason.message);
      }
    });

    await t.step("the hook reports started as an event the engine records", async () => {
      const before = (await server.audit()).length;
      const r = await hook(server.socket, server.dir, "started", "begin");
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await server.audit()).length, before + 1);
    });

    await t.step("the gate asks the engine before stop and does what it answers", async () => {
      const dir = await Deno.makeTempDir({ prefix: "vasp-gate-serve-" });
      const client = new VaspClient(server.socket);
      await using qemu = await startBareQemu(`${dir}/qemu.sock`, { args: ["-uuid", VM.uuid] });
      const gate = new QmpGate({ upstream: qemu.qmpPath, vm: VM, decisions: client, log: () => {} })
        .listen(`${dir}/gate.sock`);
      const qmp = await RawQmp.connect(`${dir}/gate.sock`);
      try {
        await qmp.next();
        await qmp.execute({ execute: "qmp_capabilities" });
        const before = (await server.audit()).length;
        const reply = await qmp.execute({ execute: "stop" });
        const status = await qmp.execute({ execute: "query-status" });
        const paused = (status.return as { status: string }).status === "paused";
        // Allowed: QEMU paused; denied: a QMP error naming the engine's decision.
        if ("error" in reply) {
          assert.match(
            (reply.error as { desc: string }).desc,
            /^vASP denied stop: .+ \(decision [\w-]+\)$/,
          );
          assert.equal(paused, false);
        } else {
          assert.equal(paused, true);
          await qmp.waitEvent("STOP");
          await gate.reportsIdle();
        }
        // The decision, and after an allowed stop the STOP event, are in the audit log.
        assert.equal((await server.audit()).length, before + (paused ? 2 : 1));
      } finally {
        await qmp.close();
        await gate.close();
        client.close();
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
});
