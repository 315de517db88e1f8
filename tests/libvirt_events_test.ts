import assert from "node:assert/strict";
import { join } from "node:path";
import { parseDomainEvent } from "../src/hypervisor/mod.ts";
import { createLogger, createServer } from "../src/server/mod.ts";
import { startVaspServer } from "./fixtures/vasp_server.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const UUID = "5b0c3e2a-9d41-4f6e-8a1b-2c3d4e5f6a7b";
const XML = `<domain type='qemu'>
  <name>web-9</name>
  <uuid>${UUID}</uuid>
  <memory unit='KiB'>262144</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
</domain>
`;

/**
 * A `virsh` that answers as libvirt would for one domain whose presence a file says: `event
 * --loop` prints the first line of `events` (one per run) and then waits, its PID in
 * `event.pid`; `domuuid`, `dumpxml`, `list` and `domstate` answer while `present` exists.
 */
async function scriptedVirsh(dir: string): Promise<string> {
  const path = join(dir, "virsh");
  await Deno.writeTextFile(join(dir, "domain.xml"), XML);
  await Deno.writeTextFile(
    path,
    `#!/bin/sh
dir=${dir}
for last; do :; done
case " $* " in
  *" event "*)
    if [ -s "$dir/events" ]; then head -n 1 "$dir/events"; sed -i 1d "$dir/events"; fi
    echo $$ >"$dir/event.pid"
    exec sleep 3600 ;;
  *" domuuid "*) [ -e "$dir/present" ] && echo ${UUID} && exit 0; exit 1 ;;
  *" dumpxml "*) [ -e "$dir/present" ] && cat "$dir/domain.xml" && exit 0; exit 1 ;;
  *" list "*) [ -e "$dir/present" ] && echo web-9; echo; exit 0 ;;
  *" domstate "*) [ -e "$dir/present" ] && echo running && exit 0; exit 1 ;;
esac
exit 2
`,
    { mode: 0o755 },
  );
  return path;
}

Deno.test("parseDomainEvent() reads virsh's life-cycle lines and nothing else", () => {
  assert.deepEqual(parseDomainEvent("event 'lifecycle' for domain 'a b': Undefined Removed\n"), {
    name: "a b",
    event: "Undefined",
    detail: "Removed",
  });
  assert.equal(parseDomainEvent("event 'reboot' for domain 'web-1'"), null);
  assert.equal(parseDomainEvent("events received: 3"), null);
});

Deno.test("serve decides a domain libvirt defines, and forgets one it undefines with its vASP instance", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vasp-libvirt-events-" });
  try {
    const virsh = await scriptedVirsh(dir);
    await Deno.writeTextFile(join(dir, "present"), "");
    await Deno.writeTextFile(
      join(dir, "events"),
      "event 'lifecycle' for domain 'web-9': Defined Added\n",
    );
    const logged: string[] = [];
    await using server = await createServer({
      stateDir: join(dir, "state"),
      policies: { dir: join(ROOT, "policies") },
      host: { qemu: null, kernel: null },
      monitor: null,
      libvirt: { virsh, uri: "test:///scripted" },
      log: createLogger({ write: (l) => logged.push(l) }),
    });
    // The define arrives through the follower; wait for its record (bounded, not timed).
    const until = async (what: string, ok: () => Promise<boolean>) => {
      for (let i = 0; i < 600; i++) {
        if (await ok()) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`never saw ${what}:\n${logged.join("\n")}`);
    };
    await until(
      "the define decision",
      async () =>
        (await server.store.queryAudit({ vmUuid: UUID })).records.some((r) =>
          r.operation === "define"
        ),
    );
    const [define] = (await server.store.queryAudit({ vmUuid: UUID })).records;
    assert.equal(define.result, "allow", JSON.stringify(define.reasons));
    assert.equal(define.source, "libvirt-events");
    const vm = await server.store.getVm(UUID);
    assert.ok(vm?.binding, "an allowed define creates the VM's vASP instance");
    assert.equal(server.vasp.instances.status(UUID)?.live, true);
    // libvirt undefines it: the follower's next run prints the event.
    await Deno.remove(join(dir, "present"));
    await Deno.writeTextFile(
      join(dir, "events"),
      "event 'lifecycle' for domain 'web-9': Undefined Removed\n",
    );
    // libvirtd restarting ends virsh's event loop; the follower starts it again.
    Deno.kill(Number(await Deno.readTextFile(join(dir, "event.pid"))), "SIGTERM");
    // The record comes last, once the VM and its instance are gone.
    const newest = async () =>
      (await server.store.queryAudit({ vmUuid: UUID, order: "desc", limit: 1 })).records[0];
    await until("the undefine record", async () => (await newest()).operation === "undefine");
    assert.equal(await server.store.getVm(UUID), undefined);
    assert.equal(server.vasp.instances.status(UUID)?.live ?? false, false);
    const undefine = await newest();
    assert.match(undefine.reasons[0].message, /undefined in libvirt.*vASP instance destroyed/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vasp vm import registers the domains libvirt has, each with a vASP instance, once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vasp-libvirt-import-" });
  try {
    const virsh = await scriptedVirsh(dir);
    await Deno.writeTextFile(join(dir, "present"), "");
    const state = join(dir, "state");
    await Deno.mkdir(state);
    await using s = await startVaspServer(state, { libvirt: null, monitor: null });
    const vasp = async (...args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          join(ROOT, "src/cli/main.ts"),
          "vm",
          "import",
          "--state-dir",
          state,
          ...args,
        ],
        env: { PATH: `${dir}:${Deno.env.get("PATH")}` },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = (b: Uint8Array) => new TextDecoder().decode(b);
      return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
    };
    assert.ok(virsh.endsWith("/virsh"));
    const dry = await vasp("--dry-run", "--json");
    assert.equal(dry.code, 0, dry.stderr);
    assert.deepEqual(JSON.parse(dry.stdout).imported.map((d: { name: string }) => d.name), [
      "web-9",
    ]);
    assert.equal(await s.server.store.getVm(UUID), undefined, "a dry run registers nothing");
    const first = await vasp();
    assert.equal(first.code, 0, first.stderr);
    assert.match(
      first.stdout,
      /^NAME +UUID +STATE +VASP INSTANCE\nweb-9 +5b0c3e2a-\S+ +running +[0-9a-f]{32}\n/,
    );
    const vm = await s.server.store.getVm(UUID);
    assert.equal(vm?.state, "running");
    assert.ok(vm?.binding, "bound to a new vASP instance");
    const again = await vasp();
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /every libvirt domain is registered already/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
