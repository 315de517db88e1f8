/**
 * `tools/install.sh` for real: as root, into the real paths (/usr/local, /etc, /var/lib/vasp),
 * then uninstalled. A staged install under a prefix would not show what matters here — the
 * group, the state directory's owner and set-gid bit, what QEMU's user can and cannot reach,
 * the unit as systemd reads it — so the test installs on this host, and refuses to start when
 * vASP is already installed here (it would replace and then remove that install). Runs one at a
 * time per host (a lock in /run).
 *
 * @module
 */
import assert from "node:assert/strict";
import { requireTools } from "./fixtures/tools.ts";

requireTools({
  "systemd-analyze": "systemd",
  setpriv: "util-linux",
  curl: "curl",
  groupadd: "passwd",
  flock: "util-linux",
});

const ROOT = new URL("../", import.meta.url).pathname;
const LIB = "/usr/local/lib/vasp";
const STATE = "/var/lib/vasp";
const HOOK_DIR = "/etc/libvirt/hooks/qemu.d";
const QEMU_USER = "libvirt-qemu";
const XML = new URL("./fixtures/libvirt_domain.xml", import.meta.url).pathname;

/** Every path the install places, and the mode it gets. */
const PLACED: Record<string, number> = {
  [`${LIB}/deno`]: 0o755,
  [`${LIB}/dist/vasp.js`]: 0o644,
  [`${LIB}/dist/wal_checkpointer_worker.js`]: 0o644,
  [`${LIB}/libvasp.so`]: 0o644,
  [`${LIB}/policies/host-integrity.yaml`]: 0o644,
  "/usr/local/bin/vasp": 0o755,
  "/usr/local/libexec/vasp-qemu": 0o755,
  "/etc/vasp/qemu-wrapper.conf": 0o644,
  "/etc/vasp/hook.conf": 0o644,
  [`${HOOK_DIR}/vasp`]: 0o755,
  "/etc/systemd/system/vasp.service": 0o644,
};

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[]): Promise<Result> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    env: { DENO: Deno.execPath() },
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** Runs `args` as QEMU's user (its own groups, vasp among them after the install). */
function asQemuUser(args: string[]): Promise<Result> {
  return run("setpriv", ["--reuid", QEMU_USER, "--regid", QEMU_USER, "--init-groups", ...args]);
}

const exists = (path: string) => Deno.lstat(path).then(() => true, () => false);
const install = (...args: string[]) => run("sh", ["tools/install.sh", ...args]);

/** Group names of a user, from `id -nG`. */
async function groupsOf(user: string): Promise<string[]> {
  return (await run("id", ["-nG", user])).stdout.trim().split(/\s+/);
}

async function decideStatus(
  asUser: (args: string[]) => Promise<Result>,
  socket = "hook.sock",
): Promise<Result> {
  return await asUser([
    "curl",
    "-s",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    "--unix-socket",
    `${STATE}/${socket}`,
    "-d",
    "{}",
    "http://localhost/v1/decide",
  ]);
}

Deno.test("install places vASP on this host, QEMU's user reaches the socket and nothing more, uninstall removes it", async (t) => {
  assert.equal(Deno.uid(), 0, "the install test runs as root");
  assert.ok(
    (await run("id", [QEMU_USER])).code === 0,
    `no user ${QEMU_USER}: install the Debian package libvirt-daemon-driver-qemu (sh tools/deps.sh test)`,
  );
  using lock = await Deno.open("/run/vasp-install-test.lock", { create: true, write: true });
  await lock.lock(true);
  for (const path of [`${LIB}/MANIFEST`, STATE]) {
    assert.ok(
      !(await exists(path)),
      `${path} exists: vASP is installed on this host; this test would replace it ` +
        `(remove it first: sh tools/install.sh uninstall --purge)`,
    );
  }
  const madeHooks = !(await exists("/etc/libvirt/hooks"));
  const other = `${HOOK_DIR}/00-other`;
  await Deno.mkdir(HOOK_DIR, { recursive: true });
  let server: Deno.ChildProcess | undefined;
  let output = Promise.resolve("");
  let errors = Promise.resolve("");
  try {
    await t.step(
      "a file named vasp in qemu.d that is not vASP's hook stops the install",
      async () => {
        await Deno.writeTextFile(`${HOOK_DIR}/vasp`, "#!/bin/sh\nexit 0\n");
        const r = await install("install");
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /is not vASP's hook; not overwriting it/);
        assert.equal(await Deno.readTextFile(`${HOOK_DIR}/vasp`), "#!/bin/sh\nexit 0\n");
        assert.ok(!(await exists(`${LIB}/MANIFEST`)));
        await Deno.remove(`${HOOK_DIR}/vasp`);
      },
    );

    await Deno.writeTextFile(other, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    let manifest = "";
    await t.step("install places every part with its mode, and the unit verifies", async () => {
      const r = await install("install");
      assert.equal(r.code, 0, r.stderr);
      for (const [path, mode] of Object.entries(PLACED)) {
        const info = await Deno.stat(path);
        assert.equal((info.mode ?? 0) & 0o7777, mode, `mode of ${path}`);
        assert.equal(info.uid, 0, `owner of ${path}`);
      }
      // The copy of Deno, not a path into an npm cache.
      assert.ok((await Deno.lstat(`${LIB}/deno`)).isFile);
      const state = await Deno.stat(STATE);
      assert.equal((state.mode ?? 0) & 0o7777, 0o2710);
      const vasp = (await run("getent", ["group", "vasp"])).stdout.split(":");
      assert.equal(state.gid, Number(vasp[2]));
      assert.ok((await groupsOf(QEMU_USER)).includes("vasp"));
      assert.equal(await Deno.readTextFile(other), "#!/bin/sh\nexit 0\n");
      const verify = await run("systemd-analyze", ["verify", "/etc/systemd/system/vasp.service"]);
      assert.equal(verify.code, 0, verify.stderr);
      assert.doesNotMatch(verify.stderr, /vasp\.service/);
      manifest = await Deno.readTextFile(`${LIB}/MANIFEST`);
    });

    await t.step("install again changes nothing it recorded", async () => {
      const r = await install("install");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await Deno.readTextFile(`${LIB}/MANIFEST`), manifest);
      assert.match(r.stderr, /^vasp: installed/m);
      assert.doesNotMatch(r.stderr, /kept your/);
    });

    await t.step(
      "the installed server answers QEMU's user on its socket, and no one else",
      async () => {
        server = new Deno.Command("/usr/local/bin/vasp", {
          args: ["serve", "--no-tcp"],
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        output = new Response(server.stdout).text();
        const log = new Response(server.stderr).text();
        errors = log;
        for (let i = 0;; i++) {
          // 400: the server read the (empty) event and answered; 000: not listening yet.
          if ((await decideStatus((a) => run(a[0]!, a.slice(1)))).stdout === "400") break;
          if (i >= 600) {
            server.kill("SIGTERM");
            assert.fail(`the installed server did not answer: ${await log}`);
          }
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        const sock = await Deno.stat(`${STATE}/hook.sock`);
        assert.equal((sock.mode ?? 0) & 0o777, 0o660);
        assert.equal(sock.gid, (await Deno.stat(STATE)).gid);
        assert.equal((await decideStatus(asQemuUser)).stdout, "400");
        // The operator socket is root's alone: QEMU's user never reaches it.
        assert.equal(((await Deno.stat(`${STATE}/vasp.sock`)).mode ?? 0) & 0o777, 0o600);
        assert.notEqual((await decideStatus(asQemuUser, "vasp.sock")).stdout, "400");
        for (const file of ["operator.token", "vasp.db", "asp.state", "host.secret"]) {
          const info = await Deno.stat(`${STATE}/${file}`);
          assert.equal((info.mode ?? 0) & 0o077, 0, `${file} is the server's alone`);
          assert.notEqual((await asQemuUser(["cat", `${STATE}/${file}`])).code, 0);
        }
        assert.notEqual((await asQemuUser(["ls", STATE])).code, 0, "the group cannot list it");
        const nobody = await run("setpriv", [
          "--reuid",
          "nobody",
          "--regid",
          "nogroup",
          "--clear-groups",
          "curl",
          "-s",
          "--unix-socket",
          `${STATE}/hook.sock`,
          "http://localhost/v1/decide",
        ]);
        assert.notEqual(nobody.code, 0, "others cannot reach the socket");
      },
    );

    await t.step(
      "the installed hook asks the installed server and fails closed on its deny",
      async () => {
        // As libvirt runs it: the domain XML on stdin.
        const r = await run("sh", [
          "-c",
          '"$1" web-1 prepare begin - <"$2"',
          "sh",
          `${HOOK_DIR}/vasp`,
          XML,
        ]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /start \(prepare\) of domain "web-1" denied by policy/);
        const list = await run("/usr/local/bin/vasp", ["vm", "list"]);
        assert.equal(list.code, 0, list.stderr);
      },
    );

    await t.step("uninstall removes what install placed and keeps the state", async () => {
      server?.kill("SIGTERM");
      await server?.status;
      server = undefined;
      // It ran the bundle: the engine's code is the installed dist/, its worker started.
      assert.match(
        await output,
        /engine code: manifest of \d+ files under \/usr\/local\/lib\/vasp\n/,
      );
      assert.match(await output, /^stopped$/m);
      assert.doesNotMatch(await errors, /WAL checkpoint in the worker failed/);
      const r = await install("uninstall");
      assert.equal(r.code, 0, r.stderr);
      for (const path of [...Object.keys(PLACED), LIB, "/usr/local/libexec/vasp-qemu"]) {
        assert.ok(!(await exists(path)), `${path} is gone`);
      }
      assert.ok(await exists(other), "another hook stays");
      assert.ok(await exists(`${STATE}/asp.state`), "the state stays");
      assert.ok(!(await groupsOf(QEMU_USER)).includes("vasp"));
      const again = await install("uninstall");
      assert.equal(again.code, 0, again.stderr);
      assert.ok(await exists(`${STATE}/asp.state`));
    });

    await t.step("uninstall --purge removes the state and the group", async () => {
      const r = await install("uninstall", "--purge");
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!(await exists(STATE)));
      assert.notEqual((await run("getent", ["group", "vasp"])).code, 0);
      const again = await install("uninstall", "--purge");
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /nothing installed/);
    });
  } finally {
    if (server) {
      server.kill("SIGTERM");
      await server.status;
    }
    if (await exists(`${LIB}/MANIFEST`) || await exists(STATE)) {
      await install("uninstall", "--purge");
    }
    await Deno.remove(other).catch(() => {});
    if (madeHooks) await Deno.remove("/etc/libvirt/hooks", { recursive: true }).catch(() => {});
  }
});
