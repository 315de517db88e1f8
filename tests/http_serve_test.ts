import assert from "node:assert/strict";
import { join } from "node:path";
import { claimSocket, isLoopback, parseListen } from "../src/server/listen.ts";
import { SqliteStore } from "../src/store/mod.ts";
import { event } from "./fixtures/http_app.ts";
import { startServe } from "./fixtures/serve_process.ts";
import { tempStateDir } from "./fixtures/state_dir.ts";

const ROOT = new URL("..", import.meta.url).pathname;

Deno.test("vasp serve answers on its Unix socket without a token and on loopback TCP with one, then stops cleanly on SIGTERM", async () => {
  await using dir = await tempStateDir();
  const socket = join(dir.path, "vasp.sock");
  const serve = await startServe(["--state-dir", dir.path, "--listen", "127.0.0.1:0"]);
  let stopped = false;
  try {
    const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(serve.output)?.[1]);
    assert.ok(port > 0, serve.output);
    const tokenFile = /operator token written to (\S+)/.exec(serve.output)?.[1];
    assert.equal(tokenFile, join(dir.path, "operator.token"));
    assert.equal((await Deno.stat(tokenFile!)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(socket)).mode! & 0o777, 0o600, "the operator socket");
    assert.equal((await Deno.stat(join(dir.path, "hook.sock"))).mode! & 0o777, 0o660);
    const token = (await Deno.readTextFile(tokenFile!)).trim();
    assert.ok(!serve.output.includes(token), "the token itself is never printed");
    // A first start has learned no host: it says that every start will be denied.
    assert.match(serve.output, /host expectations none .*deny every start/);

    using client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
    const decided = await fetch("http://localhost/v1/decide", {
      method: "POST",
      body: JSON.stringify(event("start")),
      client,
    });
    assert.equal(decided.status, 200);
    const decision = await decided.json();
    assert.equal(decision.allow, false, "an unknown VM with an unexpected host is denied");

    const base = `http://127.0.0.1:${port}`;
    assert.equal((await (await fetch(`${base}/healthz`)).json()).status, "ok");
    const refused = await fetch(`${base}/v1/vms`);
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
    const ready = await fetch(`${base}/readyz`, { headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual((await ready.json()).checks, { store: true, policies: true, asp: true });

    const done = await serve.stop();
    stopped = true;
    assert.equal(done.status.code, 0, done.stderr);
    assert.match(done.output, /stopping on SIGTERM\nstopped\n$/);
    await assert.rejects(Deno.lstat(socket), Deno.errors.NotFound);
    using store = SqliteStore.openIn(dir.path, { readOnly: true });
    const { records } = await store.queryAudit({ result: "deny" });
    assert.deepEqual(records.map((r) => r.decisionId), [decision.decision_id]);
    assert.equal((await store.verifyAudit()).ok, true);
  } finally {
    if (!stopped) await serve.stop();
  }
});

Deno.test("vasp serve replaces a stale socket file, refuses a live one, and writes the operator token only once", async () => {
  await using dir = await tempStateDir();
  const socket = join(dir.path, "vasp.sock");
  const first = await startServe(["--state-dir", dir.path, "--no-tcp"]);
  assert.match(first.output, /operator token written/);
  await using other = await tempStateDir();
  const rival = await startServe(["--state-dir", other.path, "--no-tcp", "--socket", socket]);
  const refused = await rival.failed();
  assert.equal(refused.status.code, 2, "a socket in use is an I/O error, exit 2");
  assert.match(refused.stderr, /another server listens on it \[socket_in_use\]/);
  assert.doesNotMatch(refused.stderr, /at |\.ts:/, "no stack trace");

  // A server that died leaves its socket file behind, with nothing listening on it.
  first.child.kill("SIGKILL");
  await first.failed();
  assert.ok((await Deno.lstat(socket)).isSocket);
  const second = await startServe(["--state-dir", dir.path, "--no-tcp"]);
  try {
    assert.match(second.output, /listening on unix:/);
    assert.doesNotMatch(second.output, /operator token written/);
  } finally {
    assert.equal((await second.stop()).status.code, 0);
  }
});

Deno.test("vasp serve --learn-host records the host parts it measured, and says when they match", async () => {
  await using dir = await tempStateDir();
  const kernel = join(dir.path, "vmlinuz-stand-in");
  await Deno.writeTextFile(kernel, "a host kernel image");
  const args = ["--state-dir", dir.path, "--no-tcp", "--host-kernel", kernel];
  const learning = await startServe([...args, "--learn-host"]);
  assert.match(learning.output, /host expectations 5 of 5 match/);
  assert.equal((await learning.stop()).status.code, 0);
  // The kernel changed since it was learned: the next start says which part differs.
  await Deno.writeTextFile(kernel, "another kernel");
  const changed = await startServe(args);
  try {
    assert.match(changed.output, /host expectations 4 of 5 match .*; DIFFERING: host-kernel/);
  } finally {
    assert.equal((await changed.stop()).status.code, 0);
  }
});

Deno.test("vasp serve refuses a non-loopback listen address unless --allow-remote says so", async () => {
  await using dir = await tempStateDir();
  const child = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "src/cli/main.ts",
      "serve",
      "--state-dir",
      dir.path,
      "--listen",
      "0.0.0.0:0",
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(child.code, 2);
  assert.match(new TextDecoder().decode(child.stderr), /not a loopback address.*--allow-remote/s);
});

Deno.test("listen addresses: HOST:PORT and [v6]:PORT parse, loopback is told apart, junk is a usage error", async () => {
  assert.deepEqual(parseListen("127.0.0.1:8787"), { hostname: "127.0.0.1", port: 8787 });
  assert.deepEqual(parseListen("[::1]:0"), { hostname: "::1", port: 0 });
  assert.deepEqual(parseListen("localhost:1"), { hostname: "localhost", port: 1 });
  for (const bad of ["8787", "127.0.0.1", "127.0.0.1:99999", "::1:80", "a b:1"]) {
    assert.throws(() => parseListen(bad), { code: "usage_invalid" }, bad);
  }
  assert.ok(isLoopback("127.4.5.6") && isLoopback("::1") && isLoopback("localhost"));
  assert.ok(!isLoopback("0.0.0.0") && !isLoopback("10.0.0.1") && !isLoopback("127.example.com"));
  await using dir = await tempStateDir();
  const file = join(dir.path, "not-a-socket");
  await Deno.writeTextFile(file, "precious");
  await assert.rejects(claimSocket(file), { code: "socket_in_use", message: /not a socket/ });
  assert.equal(await Deno.readTextFile(file), "precious");
  await claimSocket(join(dir.path, "absent.sock")); // nothing there: nothing to do
});
