import assert from "node:assert/strict";
import { join } from "node:path";
import { startVaspServer } from "./fixtures/vasp_server.ts";
import { tempStateDir } from "./fixtures/state_dir.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const FLOOD = join(ROOT, "tests/fixtures/flood.ts");
const VM = "4c1f6a4e-8f0b-4d8e-9a77-2a3e5f1c0b9d";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What the libvirt hook sends for `prepare`, with the domain XML in base64 as it does. */
function hookEvent(domainXml = "<domain><name>web-1</name></domain>"): string {
  const bytes = encoder.encode(domainXml);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return JSON.stringify({
    operation: "start",
    phase: "prepare",
    vm: { uuid: VM, name: "web-1" },
    source: "libvirt-hook",
    details: { domain_xml_b64: btoa(binary) },
  });
}

/**
 * A decision over a Unix socket; the bound is generous (twice the libvirt hook's default
 * timeout of 5 s): what is tested is that an answer comes while a flood is on, not how fast.
 */
async function decideOver(
  socket: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  using client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
  const res = await fetch("http://localhost/v1/decide", {
    method: "POST",
    body: hookEvent(),
    client,
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, json: await res.json() };
}

/** One raw exchange: writes `request`, returns everything read until the server closes. */
async function raw(conn: Deno.Conn, request: string | Uint8Array): Promise<string> {
  const bytes = typeof request === "string" ? encoder.encode(request) : request;
  try {
    for (let n = 0; n < bytes.length;) n += await conn.write(bytes.subarray(n));
  } catch { /* the server answered and closed before the whole request was sent */ }
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  try {
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      chunks.push(buf.slice(0, n));
    }
  } catch { /* reset by the server */ }
  try {
    conn.close();
  } catch { /* closed */ }
  return chunks.map((c) => decoder.decode(c)).join("");
}

function openFds(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

async function waitFor(what: string, check: () => boolean, limitMs = 120_000): Promise<void> {
  // A guard against hanging forever, not a timing assertion.
  const deadline = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** `vasp serve` in a child whose open-file limit is `files` (as a systemd unit's default). */
async function serveWithFileLimit(stateDir: string, files: number) {
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      `ulimit -n ${files} && exec "$0" "$@"`,
      Deno.execPath(),
      ...["run", "-A", "src/cli/main.ts", "serve", "--state-dir", stateDir],
      ...["--listen", "127.0.0.1:0"],
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let output = "";
  while (!output.includes("ready;")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`vasp serve ended before it was ready: ${output}`);
    output += value;
  }
  const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1]);
  const stderr = new Response(child.stderr).text();
  let exited = false;
  child.status.then(() => exited = true);
  return {
    child,
    port,
    get exited() {
      return exited;
    },
    async stop() {
      if (!exited) child.kill("SIGTERM");
      for (let r = await reader.read(); !r.done; r = await reader.read()) output += r.value;
      return { status: await child.status, output, stderr: await stderr };
    },
  };
}

function flood(mode: string, port: number, count: number, seconds: number) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", FLOOD, mode, String(port), String(count), String(seconds)],
    stdout: "piped",
    stderr: "piped",
  }).output().then((out) => {
    const text = decoder.decode(out.stdout).trim();
    if (out.code !== 0) throw new Error(`flood ${mode} failed: ${decoder.decode(out.stderr)}`);
    return JSON.parse(text) as {
      opened: number;
      refused: number;
      closedByServer: number;
      statuses: Record<string, number>;
    };
  });
}

Deno.test("a local flood without a token (7,500 half-open connections, a slow-loris, large bodies) leaves vasp serve running and answering hooks on the hook socket", async () => {
  await using dir = await tempStateDir();
  // 1024 open files: the soft limit a systemd service gets by default.
  const serve = await serveWithFileLimit(dir.path, 1024);
  const hookSocket = join(dir.path, "hook.sock");
  let stopped = false;
  try {
    assert.equal((await decideOver(hookSocket)).status, 200);
    const pid = serve.child.pid;
    const floods = Promise.all([
      flood("halfopen", serve.port, 2500, 25),
      flood("halfopen", serve.port, 2500, 25),
      flood("halfopen", serve.port, 2500, 25),
      flood("slowloris", serve.port, 300, 25),
      flood("bodies", serve.port, 40, 25),
    ]);
    // The flood is on once the server holds a listener's worth of connections.
    await waitFor("the flood to arrive", () => serve.exited || openFds(pid) > 250);
    for (let i = 0; i < 5; i++) {
      assert.ok(!serve.exited, "vasp serve is still running");
      const answer = await decideOver(hookSocket);
      assert.equal(answer.status, 200, JSON.stringify(answer.json));
      assert.equal(answer.json.allow, false, "an unknown VM is denied, and answered");
      assert.ok(openFds(pid) < 1024 * 0.6, "the flood never holds most of the descriptors");
    }
    const [a, b, c, loris, bodies] = await floods;
    assert.ok(a.opened + b.opened + c.opened > 2500, "the flood connected");
    assert.ok(a.closedByServer + b.closedByServer + c.closedByServer > 0);
    assert.ok(loris.opened > 0);
    for (const status of Object.keys(bodies.statuses)) {
      assert.ok(["401", "none", "reset"].includes(status), `bodies answered ${status}`);
    }
    assert.ok(!serve.exited, "vasp serve survived the flood");
    // When the flood has gone, so are its connections, and TCP answers again.
    await waitFor("the flood's connections to close", () => openFds(pid) < 100);
    const health = await fetch(`http://127.0.0.1:${serve.port}/healthz`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
    assert.equal((await decideOver(hookSocket)).status, 200);
    const done = await serve.stop();
    stopped = true;
    assert.equal(done.status.code, 0, done.stderr);
    assert.doesNotMatch(done.stderr, /Uncaught|Too many open files/);
  } finally {
    if (!stopped) await serve.stop();
  }
});

Deno.test("a listener out of descriptors keeps accepting once they come back: accept errors are handled", async () => {
  await using dir = await tempStateDir();
  const script = `
    import { startServer } from "${join(ROOT, "src/server/mod.ts")}";
    const server = await startServer({
      stateDir: ${JSON.stringify(join(dir.path, "state"))},
      policies: { dir: ${JSON.stringify(join(ROOT, "policies"))} },
      host: { kernel: null, qemu: null },
      monitor: null,
      tcp: { hostname: "127.0.0.1", port: 0 },
      // A cap above the open-file limit, so that accept itself fails with EMFILE.
      limits: { tcp: { maxConnections: 5000 } },
    });
    console.log("port", server.listeners.tcp.port);
    Deno.addSignalListener("SIGTERM", async () => { await server.shutdown(); Deno.exit(0); });
  `;
  const child = new Deno.Command("sh", {
    args: ["-c", `ulimit -n 256 && exec "$0" "$@"`, Deno.execPath(), "eval", "--ext=ts", script],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let output = "";
  while (!/port \d+/.test(output)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the server ended before it listened: ${output}`);
    output += value;
  }
  const port = Number(/port (\d+)/.exec(output)![1]);
  const stderr = new Response(child.stderr).text();
  let exited = false;
  child.status.then(() => exited = true);
  try {
    const flooded = await flood("halfopen", port, 1000, 8);
    assert.ok(flooded.opened > 256, "more connections than the server has descriptors");
    assert.ok(!exited, "the server survived EMFILE");
    await waitFor("the flood's connections to close", () => openFds(child.pid) < 100);
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(res.status, 200);
    await res.body?.cancel();
    assert.equal((await decideOver(join(dir.path, "state", "hook.sock"))).status, 200);
  } finally {
    if (!exited) child.kill("SIGTERM");
    await child.status;
    await reader.cancel().catch(() => {});
  }
  const log = await stderr;
  assert.match(log, /cannot accept a connection.*Too many open files/);
  assert.doesNotMatch(log, /Uncaught/);
});

Deno.test("silent, partial and slow requests are closed by their timeouts, and a full listener refuses the next connection", async (t) => {
  await using dir = await tempStateDir();
  await using s = await startVaspServer(dir.path, {
    monitor: null,
    limits: {
      tcp: { idleTimeoutMs: 300, headerTimeoutMs: 300, bodyTimeoutMs: 300, maxConnections: 1000 },
    },
  });
  const port = s.server.listeners.tcp!.port;
  const connect = () => Deno.connect({ hostname: "127.0.0.1", port });

  await t.step("a connection that says nothing is closed", async () => {
    assert.equal(await raw(await connect(), ""), "");
  });
  await t.step("a partial request head is closed", async () => {
    assert.equal(await raw(await connect(), "POST /v1/decide HTTP/1.1\r\nHost: x\r\n"), "");
  });
  await t.step("a head sent a byte at a time is closed before it is complete", async () => {
    const conn = await connect();
    const head = encoder.encode(`GET /healthz HTTP/1.1\r\nX-Slow: ${"a".repeat(4000)}\r\n\r\n`);
    const closed = raw(conn, "");
    let sent = 0;
    let open = true;
    closed.then(() => open = false);
    while (open && sent < head.length) {
      await conn.write(head.subarray(sent, sent + 1)).catch(() => open = false);
      sent++;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(await closed, "");
    assert.ok(sent < head.length, "the server closed it before the head was complete");
  });
  await t.step("a body that stops coming is closed", async () => {
    const answer = await raw(
      await connect(),
      'POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"operation"',
    );
    assert.equal(answer, "");
  });
  await t.step("after all that the listener still answers", async () => {
    const answer = await raw(await connect(), "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert.match(answer, /^HTTP\/1\.1 200 /);
  });
});

Deno.test("a listener at its connection cap closes the next connection, and the other listeners answer", async () => {
  await using dir = await tempStateDir();
  await using s = await startVaspServer(dir.path, {
    monitor: null,
    limits: { tcp: { maxConnections: 4 } },
  });
  const port = s.server.listeners.tcp!.port;
  const held = await Promise.all(
    Array.from({ length: 4 }, () => Deno.connect({ hostname: "127.0.0.1", port })),
  );
  await waitFor("four open connections", () => s.server.listeners.connections().tcp.open === 4);
  const fifth = await Deno.connect({ hostname: "127.0.0.1", port });
  assert.equal(await raw(fifth, "GET /healthz HTTP/1.1\r\n\r\n"), "", "closed unanswered");
  assert.equal(s.server.listeners.connections().tcp.refused, 1);
  assert.equal((await decideOver(s.server.listeners.hookSocket!)).status, 200);
  for (const conn of held) conn.close();
  await waitFor("the slots to free", () => s.server.listeners.connections().tcp.open === 0);
  const again = await fetch(`http://127.0.0.1:${port}/healthz`);
  assert.equal(again.status, 200);
  await again.body?.cancel();
});

Deno.test("bodies: a domain XML with a 60 KB description is decided; over 1 MiB is 413 and recorded; ambiguous framing is 400", async (t) => {
  await using dir = await tempStateDir();
  await using s = await startVaspServer(dir.path, { monitor: null });
  const hookSocket = s.server.listeners.hookSocket!;
  const connect = () => Deno.connect({ transport: "unix", path: hookSocket });
  const post = (body: string, headers = "") =>
    `POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${headers}` +
    `Connection: close\r\n\r\n${body}`;

  await t.step("a 60 KB <description> (an 80 KB body from the hook) is answered", async () => {
    const xml = `<domain><name>web-1</name><description>${
      "d".repeat(60_000)
    }</description></domain>`;
    const body = hookEvent(xml);
    assert.ok(body.length > 80_000);
    using client = Deno.createHttpClient({ proxy: { transport: "unix", path: hookSocket } });
    const res = await fetch("http://localhost/v1/decide", { method: "POST", body, client });
    const json = await res.json();
    assert.equal(res.status, 200, JSON.stringify(json));
    assert.equal(typeof json.allow, "boolean");
  });
  await t.step(
    "a body over 1 MiB is 413 body_too_large, with a decision ID in the audit log",
    async () => {
      const body = hookEvent(`<domain>${"d".repeat(800_000)}</domain>`);
      assert.ok(body.length > 1024 * 1024);
      const answer = await raw(await connect(), post(body, `Content-Length: ${body.length}\r\n`));
      assert.match(answer, /^HTTP\/1\.1 413 /);
      const json = JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4));
      assert.equal(json.code, "body_too_large");
      const audit = await s.call("GET", "/v1/audit");
      assert.ok(
        audit.json.records.some((r: { decision_id: string }) => r.decision_id === json.decision_id),
        "the refusal is in the audit log",
      );
    },
  );
  await t.step("a chunked body over 1 MiB is 413", async () => {
    const chunk = "x".repeat(512 * 1024);
    const size = chunk.length.toString(16);
    const body = `${size}\r\n${chunk}\r\n${size}\r\n${chunk}\r\n1\r\nx\r\n0\r\n\r\n`;
    const answer = await raw(await connect(), post(body, "Transfer-Encoding: chunked\r\n"));
    assert.match(answer, /^HTTP\/1\.1 413 /);
    assert.match(answer, /"code":"body_too_large"/);
  });
  await t.step("a small chunked body is read whole", async () => {
    const body = hookEvent();
    const chunked = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    const answer = await raw(await connect(), post(chunked, "Transfer-Encoding: chunked\r\n"));
    assert.match(answer, /^HTTP\/1\.1 200 /);
  });
  for (
    const [what, headers] of [
      [
        "Content-Length and Transfer-Encoding",
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
      ],
      ["two different Content-Length", "Content-Length: 5\r\nContent-Length: 6\r\n"],
      ["a Transfer-Encoding other than chunked", "Transfer-Encoding: gzip, chunked\r\n"],
      ["a folded header line", "X-A: 1\r\n  folded\r\nContent-Length: 2\r\n"],
    ]
  ) {
    await t.step(`${what} is 400 and the connection closed`, async () => {
      const answer = await raw(await connect(), post("{}", headers));
      assert.match(answer, /^HTTP\/1\.1 400 /);
      assert.match(answer, /"code":"request_invalid"/);
      assert.match(answer, /connection: close/);
    });
  }
  await t.step("a request head over 16 KiB is 400", async () => {
    const answer = await raw(await connect(), post("{}", `X-Big: ${"a".repeat(17_000)}\r\n`));
    assert.match(answer, /^HTTP\/1\.1 400 /);
  });
  await t.step(
    "Expect: 100-continue gets its 100 before the body, as curl asks for it",
    async () => {
      const body = hookEvent();
      const conn = await connect();
      await conn.write(encoder.encode(
        post("", `Content-Length: ${body.length}\r\nExpect: 100-continue\r\n`),
      ));
      const buf = new Uint8Array(1024);
      const n = await conn.read(buf);
      assert.match(decoder.decode(buf.subarray(0, n!)), /^HTTP\/1\.1 100 Continue\r\n\r\n/);
      assert.match(await raw(conn, body), /^HTTP\/1\.1 200 /);
    },
  );
});
