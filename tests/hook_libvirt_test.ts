import assert from "node:assert/strict";
import { type Body, TestDecisionServer } from "./fixtures/decision_server.ts";

/** The hook as built (tools/test.sh runs these tests again on its ASan/UBSan build). */
const HOOK = Deno.env.get("VASP_HOOK_BINARY") ??
  new URL("../native/build/vasp-hook", import.meta.url).pathname;
const XML = await Deno.readTextFile(new URL("./fixtures/libvirt_domain.xml", import.meta.url));
const UUID = "6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c";

/** A temporary directory with a test decision server on its socket. */
async function setUp() {
  const dir = await Deno.makeTempDir({ prefix: "vasp-hook-" });
  const server = new TestDecisionServer(`${dir}/vasp.sock`);
  const env = {
    VASP_SOCKET: server.path,
    VASP_HOOK_CONF: `${dir}/hook.conf`,
    VASP_BREAK_GLASS: `${dir}/break-glass`,
    VASP_HOOK_PENDING: `${dir}/pending.jsonl`,
    VASP_HOOK_RUN_DIR: `${dir}/run`,
  };
  return {
    dir,
    server,
    env,
    async [Symbol.asyncDispose]() {
      await server.close().catch(() => {});
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Runs the hook exactly as libvirt does: `qemu <domain> <op> <sub-op> <extra>`, XML on stdin. */
async function hook(
  args: string[],
  options: { env: Record<string, string>; xml?: string },
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(HOOK, {
    args,
    // libvirt runs hooks with a scrubbed environment too.
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      ...(Deno.env.get("ASAN_OPTIONS") ? { ASAN_OPTIONS: Deno.env.get("ASAN_OPTIONS")! } : {}),
      ...options.env,
    },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(options.xml ?? XML));
  await writer.close();
  const out = await child.output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

const xmlOf = (body: Body) =>
  new TextDecoder().decode(
    Uint8Array.from(atob(String(body.details.domain_xml_b64)), (c) => c.charCodeAt(0)),
  );

/** The fixture with another domain name, XML-escaped as libvirt writes it. */
const withName = (name: string) =>
  XML.replace(
    "<name>web-1</name>",
    `<name>${name.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")}</name>`,
  );

const later = (ms: number) => new Date(Date.now() + ms).toISOString().replace(/\.\d+Z$/, "Z");

Deno.test({
  name: "the libvirt hook asks for a decision before a VM starts and enforces it",
  async fn(t) {
    await using s = await setUp();

    await t.step("an allowed prepare exits 0, prints nothing and sends the whole XML", async () => {
      const r = await hook(["web-1", "prepare", "begin", "-"], s);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "");
      const body = s.server.decisions.at(-1)!;
      assert.equal(body.operation, "start");
      assert.equal(body.phase, "prepare");
      assert.equal(body.source, "libvirt-hook");
      assert.deepEqual(body.vm, { uuid: UUID, name: "web-1" });
      assert.deepEqual(body.details.libvirt, {
        operation: "prepare",
        sub_operation: "begin",
        extra: "-",
      });
      assert.equal(xmlOf(body), XML);
    });

    await t.step("a denied start exits 1 and prints the reasons for libvirt", async () => {
      s.server.rule = (b) => b.phase === "start" ? ['image "debian-12" differs', "no vASP"] : [];
      const r = await hook(["web-1", "start", "begin", "-"], s);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /denied by policy \(decision d-\d+\)/);
      assert.match(r.stderr, /- image "debian-12" differs\n {2}- no vASP/);
      assert.equal(r.stdout, "");
    });

    await t.step("restore and incoming migrate are decisions too", async () => {
      s.server.rule = () => ["not now"];
      const restore = await hook(["web-1", "restore", "begin", "-"], s);
      assert.equal(restore.code, 1);
      assert.equal(s.server.decisions.at(-1)!.operation, "restore");
      const migrate = await hook(["web-1", "migrate", "begin", "-"], s);
      assert.equal(migrate.code, 1);
      assert.equal(s.server.decisions.at(-1)!.operation, "migrate-in");
      s.server.rule = () => [];
      assert.equal((await hook(["web-1", "migrate", "begin", "-"], s)).code, 0);
      // The incoming VM went away before it ran: its note goes with it.
      assert.equal((await hook(["web-1", "release", "end", "-"], s)).code, 0);
    });

    await t.step("names with quotes, backslashes and markup reach the server intact", async () => {
      const name = `we"b\\1 & <x> 'q' wéb→`;
      const xml = withName(name);
      const r = await hook([name, "prepare", "begin", "-"], { ...s, xml });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(s.server.decisions.at(-1)!.vm.name, name);
      assert.equal(xmlOf(s.server.decisions.at(-1)!), xml);
    });

    await t.step("a domain XML naming another domain is refused", async () => {
      const before = s.server.decisions.length;
      const r = await hook(["web-2", "prepare", "begin", "-"], s);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /names "web-1", not "web-2"/);
      assert.equal(s.server.decisions.length, before);
    });

    await t.step(
      "started, stopped and release are reported as events and never block",
      async () => {
        s.server.rule = () => ["everything is denied"];
        for (const op of ["started", "stopped", "release"]) {
          const r = await hook(["web-1", op, op === "started" ? "begin" : "end", "-"], s);
          assert.equal(r.code, 0, r.stderr);
          const event = s.server.events.at(-1)!;
          assert.equal(event.phase, op);
          assert.equal(event.outcome, "completed");
          assert.equal(event.operation, op === "started" ? "start" : "shutdown");
        }
      },
    );
  },
});

Deno.test({
  name:
    "a restore or incoming migration is decided once: its prepare and start are not asked again",
  async fn(t) {
    await using s = await setUp();
    const call = (op: string, sub = "begin") => hook(["web-1", op, sub, "-"], s);
    for (const [op, operation] of [["restore", "restore"], ["migrate", "migrate-in"]]) {
      await t.step(`${op} → prepare → start → started`, async () => {
        const decisions = s.server.decisions.length;
        assert.equal((await call(op)).code, 0);
        assert.equal((await call("prepare")).code, 0);
        assert.equal((await call("start")).code, 0);
        assert.equal(s.server.decisions.length, decisions + 1);
        assert.equal(s.server.decisions.at(-1)!.operation, operation);
        assert.equal((await call("started")).code, 0);
        const event = s.server.events.at(-1)!;
        assert.deepEqual([event.operation, event.phase], [operation, "started"]);
        // The note is used up: the next start is a start, asked for.
        assert.equal((await call("prepare")).code, 0);
        assert.equal(s.server.decisions.at(-1)!.operation, "start");
      });
    }

    await t.step("a denied restore leaves no note: the next prepare is asked", async () => {
      s.server.rule = (b) => b.operation === "restore" ? ["not from this image"] : [];
      assert.equal((await call("restore")).code, 1);
      const decisions = s.server.decisions.length;
      assert.equal((await call("prepare")).code, 0);
      assert.equal(s.server.decisions.length, decisions + 1);
    });

    await t.step("a note older than a minute is not honoured", async () => {
      s.server.rule = () => [];
      assert.equal((await call("restore")).code, 0);
      const note = `${s.env.VASP_HOOK_RUN_DIR}/${UUID}.incoming`;
      const old = Math.floor(Date.now() / 1000) - 61;
      await Deno.writeTextFile(note, `${old} restore\n`);
      s.server.rule = () => ["a fresh start of web-1 is denied"];
      assert.equal((await call("prepare")).code, 1);
    });
  },
});

Deno.test({
  name: "libvirt's reports never fail, whatever the server answers or when it is gone",
  async fn(t) {
    await using s = await setUp();
    const reports = [["started", "begin"], ["reconnect", "begin"], ["attach", "begin"], [
      "stopped",
      "end",
    ], ["release", "end"]];
    const answers: [string, () => Response | Promise<Response>][] = [
      ["a deny", () => Response.json({ decision_id: "d", allow: false, reasons: [] })],
      ["an error status", () => Response.json({ code: "internal", message: "x" }, { status: 500 })],
      ["a malformed answer", () => new Response("{")],
    ];
    for (const [what, answer] of answers) {
      await t.step(`${what} to a report exits 0`, async () => {
        s.server.rule = answer;
        s.server.eventRule = answer;
        for (const [op, sub] of reports) {
          const r = await hook(["web-1", op!, sub!, "-"], s);
          assert.equal(r.code, 0, `${op}: ${r.stderr}`);
        }
      });
    }
    await t.step("no server: reports exit 0 and are kept for later", async () => {
      await s.server.close();
      for (const [op, sub] of reports) {
        const r = await hook(["web-1", op!, sub!, "-"], s);
        assert.equal(r.code, 0, `${op}: ${r.stderr}`);
      }
      const kept = await Deno.readTextFile(s.env.VASP_HOOK_PENDING);
      assert.equal(kept.trim().split("\n").length, reports.length);
    });
    await t.step("an XML without a uuid: reports exit 0, decisions are denied", async () => {
      const xml = XML.replace(/<uuid>[^<]*<\/uuid>/, "");
      assert.equal((await hook(["web-1", "reconnect", "begin", "-"], { ...s, xml })).code, 0);
      assert.equal((await hook(["web-1", "prepare", "begin", "-"], { ...s, xml })).code, 1);
    });
  },
});

Deno.test({
  name: "the libvirt hook fails closed when no valid decision comes",
  async fn(t) {
    await using s = await setUp();
    const prepare = () => hook(["web-1", "prepare", "begin", "-"], s);

    const answers: [string, () => Response | Promise<Response>][] = [
      ["an error status", () => Response.json({ code: "internal", message: "x" }, { status: 500 })],
      ["an answer without a decision_id", () => Response.json({ allow: true })],
      [
        "two allow members",
        () => new Response('{"decision_id":"d","allow":false,"reasons":[],"allow":true}'),
      ],
      ["a non-JSON answer", () => new Response("allow")],
    ];
    for (const [what, answer] of answers) {
      await t.step(`${what} is a denial`, async () => {
        s.server.rule = answer;
        const r = await prepare();
        assert.equal(r.code, 1);
        assert.match(r.stderr, /no decision .*failing closed/);
      });
    }

    await t.step("an answer later than the timeout is a denial", async () => {
      s.server.rule = async () => (await new Promise((r) => setTimeout(r, 1500)), []);
      const r = await hook(["web-1", "prepare", "begin", "-"], {
        env: { ...s.env, VASP_HOOK_TIMEOUT: "0.3" },
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /no answer from .*timed out/i);
    });

    await t.step("a dead server is a denial", async () => {
      await s.server.close();
      const r = await prepare();
      assert.equal(r.code, 1);
      assert.match(r.stderr, /no answer from .*failing closed/);
    });
  },
});

Deno.test({
  name: "a break-glass entry lets a VM start while the engine is down, and its use is reported",
  async fn(t) {
    await using s = await setUp();
    const env = { ...s.env, VASP_SOCKET: `${s.dir}/nobody.sock` };
    const pending = () => Deno.readTextFile(s.env.VASP_HOOK_PENDING).catch(() => "");

    await t.step("an expired entry or one for another VM does not let it through", async () => {
      await Deno.writeTextFile(
        s.env.VASP_BREAK_GLASS,
        `# operator: incident 42\nweb-1 ${later(-60_000)}\nweb-2 ${later(3_600_000)}\nweb-1\n`,
      );
      const r = await hook(["web-1", "prepare", "begin", "-"], { env });
      assert.equal(r.code, 1);
      assert.equal(await pending(), "");
    });

    await t.step("an entry for the VM's uuid lets it through and is recorded", async () => {
      await Deno.writeTextFile(s.env.VASP_BREAK_GLASS, `${UUID} ${later(3_600_000)}\n`);
      const r = await hook(["web-1", "prepare", "begin", "-"], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /let through by break-glass entry/);
      const lines = (await pending()).trim().split("\n");
      assert.equal(lines.length, 1);
      const record = JSON.parse(lines[0]!);
      assert.equal(record.source, "break-glass");
      assert.equal(record.operation, "start");
      assert.match(record.details.break_glass.no_decision, /no answer/);
    });

    await t.step("a stopped event the engine could not take is kept too", async () => {
      await Deno.writeTextFile(s.env.VASP_BREAK_GLASS, `* ${later(3_600_000)}\n`);
      const r = await hook(["web-1", "stopped", "end", "-"], { env });
      assert.equal(r.code, 0);
      assert.equal((await pending()).trim().split("\n").length, 2);
    });

    await t.step("the next hook call that reaches the engine reports them", async () => {
      const r = await hook(["web-1", "prepare", "begin", "-"], s);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(s.server.events.map((e) => [e.source, e.operation, e.phase]), [
        ["break-glass", "start", "prepare"],
        ["libvirt-hook", "shutdown", "stopped"],
      ]);
      assert.equal(await pending(), "");
    });
  },
});

Deno.test({
  name: "the libvirt hook reads its socket from hook.conf when the environment has none",
  async fn() {
    await using s = await setUp();
    await Deno.writeTextFile(s.env.VASP_HOOK_CONF, `# vASP\nsocket=${s.server.path}\ntimeout=2\n`);
    const { VASP_SOCKET: _, ...env } = s.env;
    const r = await hook(["web-1", "prepare", "begin", "-"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(s.server.decisions.length, 1);
  },
});

/** The fixture with a `<description>` of `bytes` bytes: a large but valid domain XML. */
const withDescription = (bytes: number) =>
  XML.replace("</name>", `</name>\n  <description>${"d".repeat(bytes)}</description>`);

/**
 * A server on `path` that refuses every request as soon as its head arrives: `status` and a
 * JSON error, then it closes without reading the body (as a server with a body limit does).
 */
function refusingServer(path: string, status: number, code: string) {
  const listener = Deno.listen({ transport: "unix", path });
  const served = (async () => {
    for await (const conn of listener) {
      (async () => {
        const buf = new Uint8Array(4096);
        let head = "";
        while (!head.includes("\r\n\r\n")) {
          const n = await conn.read(buf);
          if (n === null) break;
          head += new TextDecoder().decode(buf.subarray(0, n));
        }
        const body = JSON.stringify({ code, message: `refused with ${status}` });
        await conn.write(new TextEncoder().encode(
          `HTTP/1.1 ${status} Refused\r\ncontent-type: application/json\r\n` +
            `content-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
        ));
        conn.close();
      })().catch(() => {});
    }
  })().catch(() => {});
  return {
    async close() {
      listener.close();
      await served;
    },
  };
}

Deno.test({
  name: "break-glass never overrides a running engine: any answer from it is a denial",
  async fn(t) {
    await using s = await setUp();
    const prepare = (xml?: string) => hook(["web-1", "prepare", "begin", "-"], { ...s, xml });
    const pending = () => Deno.readTextFile(s.env.VASP_HOOK_PENDING).catch(() => "");
    // An entry that would let web-1 through if break-glass applied.
    await Deno.writeTextFile(s.env.VASP_BREAK_GLASS, `web-1 ${later(3_600_000)}\n`, {
      mode: 0o600,
    });
    // The test server stands for one with a 32 KiB body limit, the size the finding hit.
    const limit = 32 * 1024;
    s.server.rule = (b) =>
      JSON.stringify(b).length > limit
        ? Response.json({ code: "body_too_large", message: "too large" }, { status: 413 })
        : ["VM web-1 is not approved"];

    await t.step("the VM is denied by the engine", async () => {
      const r = await prepare();
      assert.equal(r.code, 1);
      assert.match(r.stderr, /denied by policy/);
    });

    await t.step("a 413 for a large domain XML is a denial, not break-glass", async () => {
      const r = await prepare(withDescription(60_000));
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /status 413.*break-glass does not apply; failing closed/);
      assert.doesNotMatch(r.stderr, /let through/);
      assert.equal(await pending(), "");
    });

    for (
      const [status, code] of [
        [400, "malformed_json"],
        [404, "route_not_found"],
        [500, "internal"],
        [503, "store_unavailable"],
      ] as const
    ) {
      await t.step(`a ${status} is a denial, not break-glass`, async () => {
        s.server.rule = () => Response.json({ code, message: "x" }, { status });
        const r = await prepare();
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, new RegExp(`status ${status}.*break-glass does not apply`));
        assert.equal(await pending(), "");
      });
    }

    await t.step("a malformed 200 is a denial, not break-glass", async () => {
      s.server.rule = () => new Response("allow");
      const r = await prepare();
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /break-glass does not apply/);
    });

    await t.step("a server that answers 413 before reading the body and closes", async () => {
      await s.server.close();
      const refusing = refusingServer(s.server.path, 413, "body_too_large");
      try {
        const r = await prepare(withDescription(60_000));
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /break-glass does not apply; failing closed/);
        assert.equal(await pending(), "");
      } finally {
        await refusing.close();
        await Deno.remove(s.server.path).catch(() => {});
      }
    });

    await t.step("no server at all: the same entry lets the VM through (as before)", async () => {
      const r = await prepare();
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /no answer from .*let through by break-glass entry "web-1 /);
      assert.equal((await pending()).trim().split("\n").length, 1);
    });
  },
});

Deno.test({
  name: "a break-glass file that someone other than root could write is not used",
  async fn(t) {
    assert.equal(Deno.uid(), 0, "this test changes a file's owner: run it as root");
    await using s = await setUp();
    const env = { ...s.env, VASP_SOCKET: `${s.dir}/nobody.sock` };
    const prepare = () => hook(["web-1", "prepare", "begin", "-"], { env });
    const file = s.env.VASP_BREAK_GLASS;
    const write = async (mode: number) => {
      await Deno.remove(file).catch(() => {});
      await Deno.writeTextFile(file, `web-1 ${later(3_600_000)}\n`, { mode });
      await Deno.chmod(file, mode);
    };

    await t.step("root's 0600 and 0644 files are used", async () => {
      for (const mode of [0o600, 0o644]) {
        await write(mode);
        const r = await prepare();
        assert.equal(r.code, 0, r.stderr);
      }
    });

    await t.step("a group-writable file is refused, with the reason", async () => {
      await write(0o660);
      const r = await prepare();
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /writable by group or others \(-rw-rw----\), not used; failing closed/,
      );
    });

    await t.step("a world-writable file is refused", async () => {
      await write(0o602);
      const r = await prepare();
      assert.equal(r.code, 1);
      assert.match(r.stderr, /writable by group or others/);
    });

    await t.step("a file owned by another user is refused, with the reason", async () => {
      await write(0o600);
      await Deno.chown(file, 65534, 0);
      const r = await prepare();
      assert.equal(r.code, 1);
      assert.match(r.stderr, /owned by uid 65534, not root, not used; failing closed/);
    });

    await t.step("a symbolic link to a good file is refused", async () => {
      await write(0o600);
      await Deno.rename(file, `${file}.real`);
      await Deno.symlink(`${file}.real`, file);
      const r = await prepare();
      assert.equal(r.code, 1);
      assert.match(r.stderr, /not a regular file/);
    });
  },
});
