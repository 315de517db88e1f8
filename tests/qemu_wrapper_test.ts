import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { RawQmp } from "./fixtures/bare_qemu.ts";
import { TestDecisionServer } from "./fixtures/decision_server.ts";
import { requireTools } from "./fixtures/tools.ts";

requireTools({ "qemu-system-x86_64": "qemu-system-x86", perl: "perl-base", bash: "bash" });

const WRAPPER = new URL("../deploy/qemu/vasp-qemu", import.meta.url).pathname;
const MAIN = new URL("../src/cli/main.ts", import.meta.url).pathname;
const UUID = "3a6c1e2f-8b4d-4c5a-9e7f-1b2c3d4e5f60";

/** Arguments as libvirt gives them, with the monitor chardev given by the caller. */
const libvirtArgs = (chardev: string) => [
  ...["-name", "guest=wrapped,,vm,debug-threads=on", "-uuid", UUID],
  ...["-chardev", chardev, "-mon", "chardev=charmonitor,id=monitor,mode=control"],
  ...["-accel", "tcg", "-nodefaults", "-display", "none", "-m", "32", "-nic", "none"],
];

/**
 * Libvirt's newer way: it binds and listens on the monitor socket itself and passes the
 * descriptor (`fd=N`). Perl (in Debian's essential perl-base) plays libvirt's part.
 */
const PERL_LISTEN = `
  use IO::Socket::UNIX; use POSIX;
  my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => shift @ARGV, Listen => 8) or die "$!";
  # A two-digit descriptor, as libvirt passes (fd=28); dup2 leaves it open across exec.
  my $fd = 28;
  POSIX::dup2(fileno($s), $fd) or die "$!";
  s/\\@FD\\@/$fd/ for @ARGV;
  exec @ARGV or die "$!";`;

async function setUp() {
  const dir = await Deno.makeTempDir({ prefix: "vasp-wrap-" });
  const server = new TestDecisionServer(
    `${dir}/vasp.sock`,
    (b) => b.operation === "pause" ? ["no pausing"] : [],
  );
  const env = {
    VASP_QEMU: "qemu-system-x86_64",
    VASP_GATE_CMD: `${Deno.execPath()} run --allow-all ${MAIN} gate`,
    VASP_SERVER: server.path,
    VASP_RUN_DIR: dir,
    VASP_QEMU_CONF: `${dir}/none.conf`,
  };
  const children: Deno.ChildProcess[] = [];
  const spawn = (cmd: string, args: string[]) => {
    const child = new Deno.Command(cmd, {
      args,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    })
      .spawn();
    children.push(child);
    return child;
  };
  return {
    dir,
    server,
    spawn,
    async [Symbol.asyncDispose]() {
      for (const child of children) {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already exited.
        }
        await child.output().catch(() => {});
      }
      await server.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function waitFor(what: string, test: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Connects as libvirt does, checks a denied stop leaves QEMU running, and stops QEMU. */
async function checkGated(path: string, qemu: Deno.ChildProcess, dir: string) {
  const qmp = await RawQmp.connect(path);
  try {
    assert.ok("QMP" in (await qmp.next())!);
    assert.deepEqual(await qmp.execute({ execute: "qmp_capabilities" }), { return: {} });
    const denied = await qmp.execute({ execute: "stop", id: 1 });
    assert.match((denied.error as { desc: string }).desc, /^vASP denied stop: no pausing/);
    const status = await qmp.execute({ execute: "query-status" });
    assert.equal((status.return as { status: string }).status, "running");
    assert.deepEqual(await qmp.execute({ execute: "quit" }), { return: {} });
  } finally {
    await qmp.close();
  }
  assert.equal((await qemu.status).success, true);
  // The gate follows QEMU out and removes its private directory.
  await waitFor(
    "the gate's directory to go",
    () => ![...Deno.readDirSync(dir)].some((e) => e.name.startsWith("vasp-qemu.")),
  );
}

Deno.test({
  name: "the QEMU wrapper puts the gate on libvirt's monitor path",
  async fn() {
    await using s = await setUp();
    const path = `${s.dir}/monitor.sock`;
    const qemu = s.spawn("sh", [
      WRAPPER,
      ...libvirtArgs(`socket,id=charmonitor,path=${path},server=on,wait=off`),
    ]);
    await waitFor("the monitor socket", () => existsSync(path));
    await checkGated(path, qemu, s.dir);
    assert.equal(s.server.decisions[0]?.vm.name, "wrapped,vm");
  },
});

Deno.test({
  name: "the QEMU wrapper accepts on a monitor descriptor libvirt passed (fd=N)",
  async fn() {
    await using s = await setUp();
    const path = `${s.dir}/monitor.sock`;
    const qemu = s.spawn("perl", [
      ...["-e", PERL_LISTEN, path, "sh", WRAPPER],
      ...libvirtArgs("socket,id=charmonitor,fd=@FD@,server=on,wait=off"),
    ]);
    await waitFor("the monitor socket", () => existsSync(path));
    // QEMU has replaced the wrapper (same PID) once its executable is QEMU's.
    const exe = () => {
      try {
        return Deno.readLinkSync(`/proc/${qemu.pid}/exe`);
      } catch {
        return "";
      }
    };
    await waitFor("QEMU to run", () => exe().includes("qemu-system"));
    const links = (pid: number | string) =>
      [...Deno.readDirSync(`/proc/${pid}/fd`)].map((e) => {
        try {
          return [e.name, Deno.readLinkSync(`/proc/${pid}/fd/${e.name}`)];
        } catch {
          return [e.name, ""];
        }
      });
    const ready = [...Deno.readDirSync(s.dir)].find((e) => e.name.startsWith("vasp-qemu."))!;
    // QEMU does not wait for the gate with a descriptor: the gate comes up beside it.
    const readyFile = `${s.dir}/${ready.name}/gate.ready`;
    await waitFor("the gate to accept", () => existsSync(readyFile));
    const gatePid = Deno.readTextFileSync(readyFile).trim();
    const gateArgs = Deno.readTextFileSync(`/proc/${gatePid}/cmdline`).split("\0");
    const fd = gateArgs[gateArgs.indexOf("--listen-fd") + 1];
    const listening = Deno.readLinkSync(`/proc/${gatePid}/fd/${fd}`);
    assert.match(listening, /^socket:/);
    assert.deepEqual(
      links(qemu.pid).filter(([, link]) => link === listening),
      [],
      "QEMU holds no descriptor of libvirt's listening socket",
    );
    await checkGated(path, qemu, s.dir);
  },
});

Deno.test({
  name: "with a monitor descriptor, a gate that does not come up leaves nothing to connect to",
  async fn() {
    await using s = await setUp();
    const path = `${s.dir}/monitor.sock`;
    const qemu = new Deno.Command("perl", {
      args: [
        ...["-e", PERL_LISTEN, path, "sh", WRAPPER],
        ...libvirtArgs("socket,id=charmonitor,fd=@FD@,server=on,wait=off"),
      ],
      env: {
        VASP_QEMU: "qemu-system-x86_64",
        VASP_GATE_CMD: "false",
        VASP_RUN_DIR: s.dir,
        VASP_QEMU_CONF: `${s.dir}/none.conf`,
      },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(qemu.stderr).text();
    try {
      // QEMU started beside the gate, which failed: the listening socket had no other holder,
      // so libvirt's connection is refused (libvirt then fails the start and stops QEMU).
      // QEMU may also have ended by itself: the failed gate's cleanup removes the directory
      // of QEMU's private socket. Either way nothing answers as the monitor.
      const deadline = Date.now() + 20_000;
      for (;;) {
        const refused = await Deno.connect({ transport: "unix", path }).then(
          (conn) => (conn.close(), false),
          (error) => error instanceof Deno.errors.ConnectionRefused,
        );
        if (refused) break;
        if (Date.now() > deadline) throw new Error("the monitor socket still takes connections");
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      try {
        qemu.kill("SIGKILL");
      } catch {
        // QEMU ended by itself.
      }
      await qemu.status;
    }
    // The wrapper did not refuse the start itself: it exec'd QEMU, with the gate beside it.
    assert.doesNotMatch(await stderr, /vasp-qemu: refusing/);
  },
});

Deno.test({
  name: "the QEMU wrapper refuses monitors it cannot gate and leaves probing alone",
  async fn() {
    await using s = await setUp();
    const run = async (args: string[]) => {
      const out = await s.spawn("sh", [WRAPPER, ...args]).output();
      return {
        code: out.code,
        text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
      };
    };
    const gdb = await run(["-uuid", UUID, "-s", "-qmp", `unix:${s.dir}/q.sock,server=on,wait=off`]);
    assert.equal(gdb.code, 1);
    assert.match(gdb.text, /refusing to start: -s \(gdb stub\)/);
    const hmp = await run(["-uuid", UUID, "-monitor", "stdio"]);
    assert.equal(hmp.code, 1);
    assert.match(hmp.text, /-monitor stdio would bypass the gate/);
    const tcp = await run(["-uuid", UUID, "-qmp", "tcp:127.0.0.1:4444,server=on,wait=off"]);
    assert.equal(tcp.code, 1);
    assert.match(tcp.text, /is not a unix: socket/);
    const probe = await run(["-version"]);
    assert.equal(probe.code, 0);
    assert.match(probe.text, /QEMU emulator version/);
    assert.equal(s.server.decisions.length, 0);
  },
});

Deno.test({
  name: "the QEMU wrapper asks before a snapshot revert (-loadvm) and starts no QEMU when denied",
  async fn() {
    await using s = await setUp();
    s.server.rule = (b) =>
      b.phase === "loadvm" && (b.details as { snapshot?: string }).snapshot === "before-upgrade"
        ? ["snapshot before-upgrade is quarantined"]
        : [];
    const path = `${s.dir}/monitor.sock`;
    const run = async (snapshot: string) => {
      const args = [...libvirtArgs(`socket,id=charmonitor,path=${path},server=on,wait=off`)];
      const out = await s.spawn("sh", [WRAPPER, ...args, "-loadvm", snapshot]).output();
      return { code: out.code, text: new TextDecoder().decode(out.stderr) };
    };
    const denied = await run("before-upgrade");
    assert.equal(denied.code, 1);
    assert.match(denied.text, /vASP denied the start from snapshot "before-upgrade"/);
    assert.match(denied.text, /snapshot before-upgrade is quarantined/);
    assert.match(denied.text, /refusing to start: the start from snapshot "before-upgrade"/);
    // Allowed: QEMU itself runs, and fails here only because this VM has no disk to hold
    // snapshots — its own error, after vASP's yes.
    const allowed = await run("nightly");
    assert.notEqual(allowed.code, 0);
    assert.doesNotMatch(allowed.text, /refusing to start/);
    assert.match(allowed.text, /qemu-system-x86_64: .*(snapshot|Snapshot|block device)/);
    const asked = s.server.decisions.filter((d) => d.phase === "loadvm");
    assert.deepEqual(
      asked.map((d) => [d.operation, (d.details as { snapshot: string }).snapshot]),
      [["start", "before-upgrade"], ["start", "nightly"]],
    );
  },
});
