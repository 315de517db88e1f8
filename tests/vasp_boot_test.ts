/**
 * Measured launch in the real server (native ASP, SQLite store, the default policies),
 * decided as the libvirt hook asks (`prepare` with the domain XML): a VM registered from its
 * domain XML has boot references; swapping its kernel, initrd or disk image denies its start,
 * naming the component with both digests; restoring the file allows it. Disk contents come
 * from the ASP-sealed digest cache while the image is unchanged, and are hashed again when it
 * changed, even with its size and mtime put back.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { fileIdentity } from "../ffi/mod.ts";
import { DISK_CACHE_FILE, DISK_CACHE_RACY_MS } from "../src/vasp/mod.ts";
import { tempStateDir } from "./fixtures/state_dir.ts";
import { type Answer, poll, startVaspServer, type VaspServer } from "./fixtures/vasp_server.ts";

const HOOK = new URL("../native/build/vasp-hook", import.meta.url).pathname;
const VM = { uuid: "0b8f3c2e-5d6a-4e7b-9c8d-1e2f3a4b5c6d", name: "boot-1" };
const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");

function domainXml(boot: string, cmdline = "console=ttyS0 root=/dev/vda ro"): string {
  return `<domain type='kvm'>
  <name>${VM.name}</name>
  <uuid>${VM.uuid}</uuid>
  <memory unit='KiB'>262144</memory>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <loader readonly='yes' type='pflash'>${boot}/OVMF.fd</loader>
    <kernel>${boot}/vmlinuz</kernel>
    <initrd>${boot}/initrd.img</initrd>
    <cmdline>${cmdline}</cmdline>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='${boot}/disk.img'/>
      <target dev='vda' bus='virtio'/>
      <readonly/>
    </disk>
  </devices>
</domain>
`;
}

/** What the libvirt hook sends for libvirt's `operation sub` of the domain `xml`. */
function hookBody(lifecycle: string, operation: string, sub: string, xml: string) {
  return {
    operation: lifecycle,
    vm: VM,
    source: "libvirt-hook",
    phase: operation,
    details: {
      libvirt: { operation, sub_operation: sub, extra: "-" },
      domain_xml_b64: Buffer.from(xml).toString("base64"),
    },
  };
}

/** A start as the libvirt hook asks for it (native/hook/vasp_hook.c, `prepare begin`). */
function hookStart(s: VaspServer, xml: string): Promise<Answer> {
  return s.call("POST", "/v1/decide", { body: hookBody("start", "prepare", "begin", xml) });
}

/** The libvirt hook itself, as libvirtd runs it: `vasp NAME prepare begin -`, XML on stdin. */
async function runHook(s: VaspServer, dir: string, xml: string) {
  const child = new Deno.Command(HOOK, {
    args: [VM.name, "prepare", "begin", "-"],
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      VASP_SOCKET: s.server.listeners.socket!,
      VASP_HOOK_CONF: `${dir}/none.conf`,
      VASP_HOOK_PENDING: `${dir}/pending.jsonl`,
      VASP_BREAK_GLASS: `${dir}/none`,
    },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(xml));
  await writer.close();
  const out = await child.output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

type Reason = { policy: string; rule: string; message: string };

function allowed(a: Answer): void {
  assert.equal(a.status, 200, JSON.stringify(a.json));
  assert.equal(a.json.allow, true, JSON.stringify(a.json.reasons));
}

function deniedFor(a: Answer): Reason[] {
  assert.equal(a.status, 200, JSON.stringify(a.json));
  assert.equal(a.json.allow, false, JSON.stringify(a.json));
  return a.json.reasons;
}

/** Waits until the file's last change is older than the cache's racy window (a lower bound). */
async function settled(path: string): Promise<void> {
  const id = fileIdentity(path);
  const changedMs = Number((id.ctimeNs > id.mtimeNs ? id.ctimeNs : id.mtimeNs) / 1_000_000n);
  const wait = changedMs + DISK_CACHE_RACY_MS + 50 - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}

async function touch(path: string, date: string): Promise<void> {
  const out = await new Deno.Command("touch", { args: ["-d", date, path] }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
}

Deno.test("measured launch: a swapped kernel, initrd or disk image denies the start, naming it; restored, it starts; unchanged disks come from the sealed cache", async (t) => {
  await using dir = await tempStateDir();
  const boot = join(dir.path, "boot");
  await Deno.mkdir(boot);
  const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));
  const files = {
    kernel: { path: join(boot, "vmlinuz"), bytes: random(65536) },
    initrd: { path: join(boot, "initrd.img"), bytes: random(32768) },
    firmware: { path: join(boot, "OVMF.fd"), bytes: random(4096) },
    disk: { path: join(boot, "disk.img"), bytes: new Uint8Array(8 << 20) },
  };
  files.disk.bytes.set(random(65536), 1 << 20);
  for (const f of Object.values(files)) await Deno.writeFile(f.path, f.bytes);
  const xml = domainXml(boot);
  for (const f of Object.values(files)) await settled(f.path);

  {
    await using s = await startVaspServer(dir.path);
    const disks = () => s.server.vasp.disks.stats(files.disk.path);

    await t.step("registration from the domain XML records the boot references", async () => {
      const r = await s.call("POST", "/v1/vms", {
        body: { uuid: VM.uuid, name: VM.name, tenant: "acme", domain_xml: xml },
      });
      assert.equal(r.status, 201, JSON.stringify(r.json));
      const refs = await s.call("GET", `/v1/vms/${VM.uuid}/boot-references`);
      assert.equal(refs.status, 200, JSON.stringify(refs.json));
      assert.deepEqual(refs.json.references, [
        { name: "cmdline", path: "", digest: `sha256:${sha256("console=ttyS0 root=/dev/vda ro")}` },
        { name: "disk:vda", path: files.disk.path, digest: `sha256:${sha256(files.disk.bytes)}` },
        {
          name: "firmware",
          path: files.firmware.path,
          digest: `sha256:${sha256(files.firmware.bytes)}`,
        },
        { name: "initrd", path: files.initrd.path, digest: `sha256:${sha256(files.initrd.bytes)}` },
        { name: "kernel", path: files.kernel.path, digest: `sha256:${sha256(files.kernel.bytes)}` },
      ]);
      assert.equal(disks().hashed, 1);
      // The audit record of the registration names them.
      const audit = await s.server.store.queryAudit({ vmUuid: VM.uuid });
      assert.match(
        JSON.stringify(audit.records),
        /boot references: firmware \S+ sha256:[0-9a-f]{64}, kernel /,
      );
    });

    await t.step("the start as registered is allowed; its files were not read again", async () => {
      const before = s.server.vasp.disks.stats();
      allowed(await hookStart(s, xml));
      const after = s.server.vasp.disks.stats();
      assert.equal(after.hashed, before.hashed, "an unchanged file was hashed again");
      // The disk, the kernel, the initrd and the firmware.
      assert.equal(after.hits, before.hits + 4);
      // The kernel's event log entry is the kernel file's SHA-256 (streamed, not read whole).
      const q = await s.call("GET", `/v1/vms/${VM.uuid}/quote?nonce=00ff`);
      const entry = q.json.event_log.find((e: { description: string }) =>
        e.description.startsWith("vboot kernel ")
      );
      assert.equal(entry.sha256, sha256(files.kernel.bytes));
      const disk = q.json.event_log.find((e: { description: string }) =>
        e.description.startsWith("vboot disk ")
      );
      assert.match(disk.description, new RegExp(`content=sha256:${sha256(files.disk.bytes)}$`));
    });

    await t.step(
      "libvirt's change of owner at a stop is hashed ahead (release): the next start reads no file",
      async () => {
        // libvirt gives the files to QEMU's user at a start and puts the owner back at the stop:
        // a new ctime each time, which the cache does not look past.
        const paths = Object.values(files).map((f) => f.path);
        for (const path of paths) await Deno.chown(path, 0, 0);
        const before = s.server.vasp.disks.stats();
        const released = await s.call("POST", "/v1/events", {
          body: { ...hookBody("shutdown", "release", "end", xml), outcome: "completed" },
        });
        assert.equal(released.status, 200, JSON.stringify(released.json));
        await poll(
          "the files to be hashed ahead",
          () =>
            Promise.resolve(
              s.server.vasp.disks.stats().hashed === before.hashed + paths.length || undefined,
            ),
        );
        allowed(await hookStart(s, xml));
        const after = s.server.vasp.disks.stats();
        assert.equal(after.hashed, before.hashed + paths.length, "a file was hashed at the start");
        assert.equal(after.hits, before.hits + paths.length);
      },
    );

    await t.step(
      "the libvirt hook script refuses a swapped kernel, naming it, and lets the restored one start",
      async () => {
        const f = files.kernel;
        const swapped = random(f.bytes.length);
        await Deno.writeFile(f.path, swapped);
        const refused = await runHook(s, dir.path, xml);
        assert.equal(refused.code, 1, refused.stderr);
        assert.ok(
          refused.stderr.includes(
            `kernel ${f.path}: sha256:${sha256(swapped)} expected sha256:${sha256(f.bytes)}`,
          ),
          refused.stderr,
        );
        await Deno.writeFile(f.path, f.bytes);
        const started = await runHook(s, dir.path, xml);
        assert.equal(started.code, 0, started.stderr);
      },
    );

    for (const name of ["kernel", "initrd"] as const) {
      await t.step(
        `a swapped ${name} is denied with its digests; restored, it starts`,
        async () => {
          const f = files[name];
          const swapped = random(f.bytes.length);
          await Deno.writeFile(f.path, swapped);
          const reasons = deniedFor(await hookStart(s, xml));
          const reason = reasons.find((r) => r.policy === "measured-launch");
          assert.ok(reason, JSON.stringify(reasons));
          assert.equal(reason.rule, "components-match");
          assert.ok(
            reason.message.includes(
              `${name} ${f.path}: sha256:${sha256(swapped)} expected sha256:${sha256(f.bytes)}`,
            ),
            reason.message,
          );
          await Deno.writeFile(f.path, f.bytes);
          allowed(await hookStart(s, xml));
        },
      );
    }

    await t.step("a swapped disk image is denied, hashed again; restored, it starts", async () => {
      const f = files.disk;
      const swapped = f.bytes.slice();
      swapped.set(random(4096), 4 << 20);
      const before = disks().hashed;
      await Deno.writeFile(f.path, swapped);
      const reasons = deniedFor(await hookStart(s, xml));
      const reason = reasons.find((r) => r.policy === "measured-launch");
      assert.ok(
        reason?.message.includes(
          `disk:vda ${f.path}: sha256:${sha256(swapped)} expected sha256:${sha256(f.bytes)}`,
        ),
        JSON.stringify(reasons),
      );
      assert.equal(disks().hashed, before + 1);
      await Deno.writeFile(f.path, f.bytes);
      allowed(await hookStart(s, xml));
      assert.equal(disks().hashed, before + 2);
    });

    await t.step(
      "a disk changed in place with its size and mtime put back is hashed again",
      async () => {
        const f = files.disk;
        await settled(f.path);
        allowed(await hookStart(s, xml)); // cached now, and trusted
        const mtime = new Date(Number(fileIdentity(f.path).mtimeNs / 1_000_000n)).toISOString();
        const before = disks().hashed;
        const file = await Deno.open(f.path, { write: true });
        await file.seek(6 << 20, Deno.SeekMode.Start);
        await file.write(new Uint8Array([1, 2, 3, 4]));
        file.close();
        await touch(f.path, mtime);
        const changed = await Deno.readFile(f.path);
        assert.equal(changed.length, f.bytes.length);
        const reasons = deniedFor(await hookStart(s, xml));
        assert.ok(
          reasons.some((r) => r.message.includes(`disk:vda ${f.path}: sha256:${sha256(changed)}`)),
          JSON.stringify(reasons),
        );
        assert.equal(disks().hashed, before + 1, "the changed image was served from the cache");
        await Deno.writeFile(f.path, f.bytes);
        await touch(f.path, mtime);
        allowed(await hookStart(s, xml));
      },
    );

    await t.step(
      "another domain XML is denied by its command line (the XML's own digest is not compared by default)",
      async () => {
        const other = domainXml(boot, "console=ttyS0 init=/bin/sh");
        const reasons = deniedFor(await hookStart(s, other));
        assert.ok(!reasons.some((r) => r.rule === "config-matches"), JSON.stringify(reasons));
        const launch = reasons.find((r) => r.policy === "measured-launch");
        assert.ok(
          launch?.message.includes(
            `cmdline: sha256:${sha256("console=ttyS0 init=/bin/sh")} expected sha256:`,
          ),
          JSON.stringify(reasons),
        );
      },
    );

    await t.step("the operator re-references the VM (audited): the new kernel starts", async () => {
      const kernel = random(files.kernel.bytes.length);
      await Deno.writeFile(files.kernel.path, kernel);
      deniedFor(await hookStart(s, xml));
      const tenant = await s.call("PUT", `/v1/vms/${VM.uuid}/boot-references`, {
        body: { domain_xml: xml },
        token: s.token("tenant", "acme"),
      });
      assert.equal(tenant.status, 403, JSON.stringify(tenant.json));
      const put = await s.call("PUT", `/v1/vms/${VM.uuid}/boot-references`, {
        body: { domain_xml: xml },
      });
      assert.equal(put.status, 200, JSON.stringify(put.json));
      allowed(await hookStart(s, xml));
      const audit = await s.server.store.queryAudit({ vmUuid: VM.uuid });
      assert.ok(
        audit.records.some((r) =>
          r.operation === "boot-references" &&
          JSON.stringify(r.reasons).includes(`kernel ${files.kernel.path} sha256:${sha256(kernel)}`)
        ),
      );
      files.kernel.bytes = kernel;
    });

    await t.step("the operator's command line shows and replaces the references", async () => {
      const cli = async (...args: string[]) => {
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "src/cli/main.ts", "vm", "boot-refs", ...args],
          cwd: new URL("..", import.meta.url).pathname,
          stdout: "piped",
          stderr: "piped",
        }).output();
        const text = (b: Uint8Array) => new TextDecoder().decode(b);
        return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
      };
      const shown = await cli(VM.name, "--state-dir", dir.path, "--json");
      assert.equal(shown.code, 0, shown.stderr);
      assert.equal(JSON.parse(shown.stdout).references.length, 5);
      const digest = `sha256:${sha256(files.kernel.bytes)}`;
      const set = await cli(
        VM.name,
        "--state-dir",
        dir.path,
        "--set",
        `kernel=${files.kernel.path}=${digest}`,
      );
      assert.equal(set.code, 0, set.stderr);
      assert.match(set.stdout, /boot references of .*: 1\n {2}kernel/);
      // Only the kernel is referenced now: a boot file without a reference is refused.
      const reasons = deniedFor(await hookStart(s, xml));
      assert.match(
        JSON.stringify(reasons),
        /initrd \S+initrd\.img: sha256:[0-9a-f]{64} expected no such component/,
      );
      const bad = await cli(VM.name, "--state-dir", dir.path, "--set", "kernel=/k=sha256:00");
      assert.equal(bad.code, 2, bad.stderr);
      const xmlFile = join(dir.path, "domain.xml");
      await Deno.writeTextFile(xmlFile, xml);
      const again = await cli(VM.name, "--state-dir", dir.path, "--domain-xml", xmlFile);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /boot references of .*: 5/);
    });
  }

  await t.step("after a restart the sealed cache serves the unchanged disk", async () => {
    await settled(files.disk.path);
    {
      await using s = await startVaspServer(dir.path);
      allowed(await hookStart(s, xml)); // hashed (its last entry was racy), then kept sealed
    }
    await using s = await startVaspServer(dir.path);
    allowed(await hookStart(s, xml));
    assert.deepEqual(s.server.vasp.disks.stats(files.disk.path), {
      hits: 1,
      hashed: 0,
      bytesHashed: 0,
    });
  });

  await t.step("a tampered cache file is refused: the disk is hashed again", async () => {
    const path = join(dir.path, DISK_CACHE_FILE);
    const sealed = await Deno.readFile(path);
    sealed[sealed.length - 1] ^= 1;
    await Deno.writeFile(path, sealed);
    await using s = await startVaspServer(dir.path);
    assert.ok(s.logged.some((l) => l.includes("disk digest cache") && l.includes("refused")));
    allowed(await hookStart(s, xml));
    assert.equal(s.server.vasp.disks.stats(files.disk.path).hashed, 1);
  });
});

Deno.test("a VM that libvirt defines is registered with the boot references its domain XML gives", async () => {
  await using dir = await tempStateDir();
  const boot = join(dir.path, "boot");
  await Deno.mkdir(boot);
  for (const name of ["vmlinuz", "initrd.img", "OVMF.fd", "disk.img"]) {
    await Deno.writeTextFile(join(boot, name), `${name} bytes`);
  }
  const xml = domainXml(boot);
  await using s = await startVaspServer(dir.path);
  const define = await s.call("POST", "/v1/decide", {
    body: {
      operation: "define",
      vm: VM,
      source: "libvirt-events",
      details: { domain_xml_b64: Buffer.from(xml).toString("base64") },
    },
  });
  allowed(define);
  const refs = await s.call("GET", `/v1/vms/${VM.uuid}/boot-references`);
  assert.deepEqual(
    refs.json.references.map((r: { name: string }) => r.name),
    ["cmdline", "disk:vda", "firmware", "initrd", "kernel"],
  );
  const [record] = (await s.server.store.queryAudit({ vmUuid: VM.uuid })).records;
  assert.ok(
    record.reasons.some((r) =>
      r.rule === "boot-references" && r.message.includes(`kernel ${boot}/vmlinuz sha256:`)
    ),
    JSON.stringify(record.reasons),
  );
  // Swapped after the define, the kernel does not start.
  await Deno.writeTextFile(join(boot, "vmlinuz"), "another kernel");
  const reasons = deniedFor(await hookStart(s, xml));
  assert.ok(reasons.some((r) => r.message.includes(`kernel ${boot}/vmlinuz: sha256:`)));
});
