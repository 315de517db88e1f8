import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { parseDomainXml } from "../hypervisor/libvirt.ts";
import { VBOOT_REGISTERS } from "../hypervisor/vboot.ts";
import { bootState, measureBoot, referencesOf } from "./_boot.ts";
import { DiskCache } from "./disk_cache.ts";

const sha256 = (d: Uint8Array | string) => createHash("sha256").update(d).digest("hex");

function xmlOf(dir: string, kernel = `${dir}/vmlinuz`): string {
  return `<domain type='kvm'><name>web-1</name><uuid>6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c</uuid>
<os><type>hvm</type><loader>${dir}/OVMF.fd</loader><nvram template='${dir}/VARS.fd'/>
<kernel>${kernel}</kernel><initrd>${dir}/gone.img</initrd><cmdline>console=ttyS0</cmdline></os>
<devices><disk type='file' device='disk'><driver type='qcow2'/><source file='${dir}/a.qcow2'/>
<backingStore type='file'><source file='${dir}/base.qcow2'/></backingStore>
<target dev='vda' bus='virtio'/></disk>
<disk type='file' device='cdrom'><source file='${dir}/seed.iso'/><target dev='sda'/><readonly/></disk>
<disk type='block' device='disk'><source dev='/dev/sdz'/><target dev='vdb'/></disk></devices></domain>`;
}

Deno.test("measureBoot() measures each boot file streamed, the command line and each file disk, and extends them in their registers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vasp-boot-unit-" });
  try {
    const bytes: Record<string, Uint8Array> = {};
    for (const name of ["OVMF.fd", "VARS.fd", "vmlinuz", "a.qcow2", "seed.iso"]) {
      bytes[name] = crypto.getRandomValues(new Uint8Array(3000));
      await Deno.writeFile(join(dir, name), bytes[name]);
    }
    const xml = xmlOf(dir);
    const boot = await measureBoot(
      parseDomainXml(xml),
      new TextEncoder().encode(xml),
      new DiskCache(),
    );
    assert.deepEqual(
      boot.components.map((
        c,
      ) => [c.name, c.sha256 === "" ? c.detail.slice(0, 20) : c.sha256, c.referenced]),
      [
        ["firmware", sha256(bytes["OVMF.fd"]), true],
        ["nvram", sha256(bytes["VARS.fd"]), true],
        ["kernel", sha256(bytes["vmlinuz"]), true],
        ["initrd", 'Cannot stat "/tmp/va', true],
        ["cmdline", sha256("console=ttyS0"), true],
        ["disk:sda", sha256(bytes["seed.iso"]), true],
      ],
    );
    assert.deepEqual(boot.extensions.map((e) => e.reg), [
      VBOOT_REGISTERS.config,
      VBOOT_REGISTERS.firmware,
      VBOOT_REGISTERS.firmware,
      VBOOT_REGISTERS.kernel,
      VBOOT_REGISTERS.initrd,
      VBOOT_REGISTERS.cmdline,
      VBOOT_REGISTERS.disks,
      VBOOT_REGISTERS.disks,
      VBOOT_REGISTERS.disks,
    ]);
    const kernel = boot.extensions[3]!;
    assert.equal(kernel.description, `vboot kernel ${dir}/vmlinuz`);
    assert.equal(Buffer.from(kernel.digests!.sha256).toString("hex"), sha256(bytes["vmlinuz"]));
    assert.match(boot.extensions[4]!.description, /\(not measured: Cannot stat/);
    assert.equal(
      boot.extensions[6]!.description,
      `vboot disk disk file ${dir}/a.qcow2 qcow2 vda rw <${dir}/base.qcow2 content=unhashed-writable`,
    );
    // A writable disk is hashed once it has a reference.
    const referenced = await measureBoot(
      parseDomainXml(xml),
      new TextEncoder().encode(xml),
      new DiskCache(),
      {
        referenced: new Set(["disk:vda"]),
      },
    );
    assert.deepEqual(
      referenced.components.filter((c) => c.name === "disk:vda").map((
        c,
      ) => [c.sha256, c.referenced]),
      [[sha256(bytes["a.qcow2"]), false]],
    );
    assert.match(referenced.extensions[6]!.description, /content=sha256:[0-9a-f]{64}$/);
    assert.equal(boot.extensions[8]!.description, "vboot disk disk block /dev/sdz - vdb rw");
    // Registration takes every measured boot file, the command line and read-only disks.
    assert.deepEqual(referencesOf(boot).map((r) => r.name), [
      "firmware",
      "nvram",
      "kernel",
      "cmdline",
      "disk:sda",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bootState() compares with the references: differing, missing from the boot, unreferenced boot files; unreferenced disks are not compared", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vasp-boot-unit-" });
  try {
    for (const name of ["OVMF.fd", "VARS.fd", "vmlinuz", "a.qcow2", "seed.iso"]) {
      await Deno.writeTextFile(join(dir, name), name);
    }
    const xml = xmlOf(dir);
    const boot = await measureBoot(
      parseDomainXml(xml),
      new TextEncoder().encode(xml),
      new DiskCache(),
    );
    const refs = [
      { name: "kernel", path: `${dir}/vmlinuz`, digest: "00".repeat(32) },
      { name: "disk:sda", path: `${dir}/seed.iso`, digest: sha256("seed.iso") },
      { name: "disk:vdc", path: "/img/c.img", digest: "11".repeat(32) },
    ];
    const state = bootState(boot, refs, "ab".repeat(32));
    assert.equal(state.configDigest, `sha256:${"ab".repeat(32)}`);
    assert.equal(state.references, 3);
    assert.deepEqual(
      state.components.map((
        c,
      ) => [c.name, c.digest === "" ? "" : "measured", c.expected, c.detail ?? ""]),
      [
        ["firmware", "measured", "", ""],
        ["nvram", "measured", "", ""],
        ["kernel", "measured", `sha256:${"00".repeat(32)}`, ""],
        ["initrd", "", "", state.components[3]!.detail],
        ["cmdline", "measured", "", ""],
        ["disk:sda", "measured", `sha256:${sha256("seed.iso")}`, ""],
        ["disk:vdc", "", `sha256:${"11".repeat(32)}`, "not in this boot"],
      ],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
