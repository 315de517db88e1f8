import assert from "node:assert/strict";
import { join } from "node:path";
import { startVaspServer } from "./fixtures/vasp_server.ts";
import { tempStateDir } from "./fixtures/state_dir.ts";
import { requireTools } from "./fixtures/tools.ts";

const VM = "4c1f6a4e-8f0b-4d8e-9a77-2a3e5f1c0b9d";
const VM_2 = "9d2e7b10-1c3a-4f5e-8a6b-0c1d2e3f4a5b";
const DIGEST = `sha256:${"ab".repeat(32)}`;
const NOBODY = 65534; // nobody:nogroup on Debian

function decideBody(uuid: string, extra: Record<string, unknown> = {}) {
  return JSON.stringify({
    operation: "start",
    phase: "prepare",
    vm: { uuid, name: "web-1" },
    source: "libvirt-hook",
    details: {},
    ...extra,
  });
}

/** A request over a Unix socket: status and JSON. */
async function over(socket: string, method: string, path: string, body?: string) {
  using client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
  const res = await fetch(`http://localhost${path}`, { method, body, client });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

/** curl over a Unix socket as another user, the way a hook or QEMU's gate would connect. */
async function curlAs(uid: number, gid: number, socket: string, path: string, body: string) {
  const out = await new Deno.Command("setpriv", {
    args: [
      `--reuid=${uid}`,
      `--regid=${gid}`,
      "--clear-groups",
      ...["curl", "--silent", "--show-error", "--unix-socket", socket, "--max-time", "30"],
      ...["-H", "content-type: application/json", "--data-binary", body],
      ...["-w", "\n%{http_code}", `http://localhost${path}`],
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  return {
    code: out.code,
    status: text.split("\n").at(-1),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("the hook socket decides and reports and may do nothing else; the operator socket may do everything", async (t) => {
  await using dir = await tempStateDir();
  await using s = await startVaspServer(dir.path);
  const { socket, hookSocket } = s.server.listeners;
  assert.equal(socket, join(dir.path, "vasp.sock"));
  assert.equal(hookSocket, join(dir.path, "hook.sock"));
  assert.equal((await Deno.stat(socket!)).mode! & 0o777, 0o600);
  assert.equal((await Deno.stat(hookSocket!)).mode! & 0o777, 0o660);
  for (const uuid of [VM, VM_2]) {
    const made = await s.call("POST", "/v1/vms", {
      body: { uuid, name: "web-1", config_digest: DIGEST },
    });
    assert.equal(made.status, 201, JSON.stringify(made.json));
  }

  await t.step("the hook socket decides and reports events", async () => {
    const decided = await over(hookSocket!, "POST", "/v1/decide", decideBody(VM));
    assert.equal(decided.status, 200, JSON.stringify(decided.json));
    assert.match(decided.json.decision_id, /^[0-9a-f-]{36}$/);
    const reported = await over(
      hookSocket!,
      "POST",
      "/v1/events",
      decideBody(VM, { outcome: "completed" }),
    );
    assert.equal(reported.status, 200, JSON.stringify(reported.json));
    assert.equal((await over(hookSocket!, "GET", "/readyz")).status, 200);
  });

  await t.step(
    "everything an operator does is 403 over the hook socket, and changes nothing",
    async () => {
      for (
        const [method, path, body] of [
          ["DELETE", `/v1/vms/${VM}`],
          ["POST", `/v1/vms/${VM}/release`],
          ["POST", "/v1/policies/reload"],
          ["POST", "/v1/vms", JSON.stringify({ uuid: VM_2, name: "x", config_digest: DIGEST })],
          ["PUT", `/v1/vms/${VM}/introspection`, "{}"],
          ["GET", "/v1/vms"],
          ["GET", `/v1/vms/${VM}`],
          ["GET", "/v1/audit"],
          ["GET", "/v1/policies"],
          ["GET", "/metrics"],
        ] as const
      ) {
        const res = await over(hookSocket!, method, path, body);
        assert.equal(res.status, 403, `${method} ${path}: ${JSON.stringify(res.json)}`);
        assert.equal(res.json.code, "role_forbidden");
        assert.match(res.json.message, /caller on the hook socket may not/);
      }
      assert.equal((await s.call("GET", `/v1/vms/${VM}`)).status, 200, "the VM is still there");
    },
  );

  await t.step("the operator socket removes a VM without a token", async () => {
    const removed = await over(socket!, "DELETE", `/v1/vms/${VM}`);
    assert.ok(removed.status === 200 || removed.status === 204, JSON.stringify(removed.json));
    assert.equal((await s.call("GET", `/v1/vms/${VM}`)).status, 404);
  });

  await t.step("over TCP the token's role decides, as before", async () => {
    const hook = s.token("hook");
    assert.equal((await s.call("DELETE", `/v1/vms/${VM_2}`, { token: hook })).status, 403);
    const operator = s.token("operator");
    const removed = await s.call("DELETE", `/v1/vms/${VM_2}`, { token: operator });
    assert.ok(removed.status === 200 || removed.status === 204, JSON.stringify(removed.json));
  });
});

Deno.test("another user in the hook socket's group reaches the hook socket and not the operator socket", async () => {
  requireTools({ setpriv: "util-linux", curl: "curl" });
  if (Deno.uid() !== 0) throw new Error("this test changes user: run it as root");
  await using dir = await tempStateDir();
  // The sockets' directory as a deployment has it (deploy/libvirt/README.md): traversable by
  // the hook socket's group; the state directory itself stays 0700.
  const run = join(dir.path, "run");
  await Deno.mkdir(run, { mode: 0o711 });
  await Deno.chmod(run, 0o711);
  await Deno.chmod(dir.path, 0o711);
  await Deno.mkdir(join(dir.path, "state"), { mode: 0o700 });
  await using s = await startVaspServer(join(dir.path, "state"), {
    socket: join(run, "vasp.sock"),
    hookSocket: join(run, "hook.sock"),
  });
  const { socket, hookSocket } = s.server.listeners;
  await Deno.chown(hookSocket!, null, NOBODY);
  const made = await s.call("POST", "/v1/vms", {
    body: { uuid: VM, name: "web-1", config_digest: DIGEST },
  });
  assert.equal(made.status, 201);

  const decided = await curlAs(NOBODY, NOBODY, hookSocket!, "/v1/decide", decideBody(VM));
  assert.equal(decided.code, 0, decided.stderr);
  assert.equal(decided.status, "200");
  const operator = await curlAs(NOBODY, NOBODY, socket!, "/v1/decide", decideBody(VM));
  assert.notEqual(operator.code, 0, "the operator socket refuses another user");
  assert.match(operator.stderr, /Permission denied|Couldn't connect/);
  // Outside the group: not even the hook socket.
  const stranger = await curlAs(NOBODY, 1, hookSocket!, "/v1/decide", decideBody(VM));
  assert.notEqual(stranger.code, 0, "a user outside the group cannot connect");
});
