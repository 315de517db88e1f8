import assert from "node:assert/strict";
import { parseDomainXml } from "./libvirt.ts";
import { VBOOT_REGISTERS, vbootExtensions } from "./vboot.ts";

const XML = `<domain type='kvm'><name>web-1</name><uuid>6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c</uuid>
<os><type>hvm</type><kernel>/boot/vmlinuz</kernel><initrd>/boot/big.img</initrd>
<cmdline>console=ttyS0</cmdline></os>
<devices><disk type='file' device='disk'><driver type='qcow2'/><source file='/img/a.qcow2'/>
<backingStore type='file'><source file='/img/base.qcow2'/></backingStore>
<target dev='vda' bus='virtio'/></disk>
<disk type='file' device='cdrom'><target dev='sda'/><readonly/></disk></devices></domain>`;

const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("vbootExtensions() extends the XML, each boot file whole, the command line and each disk, in their registers", async () => {
  const xml = new TextEncoder().encode(XML);
  const files: Record<string, number> = { "/boot/vmlinuz": 5, "/boot/big.img": 100 };
  const plan = await vbootExtensions(parseDomainXml(XML), xml, {
    fileSize: (p) =>
      files[p] === undefined ? Promise.reject(new Error("gone")) : Promise.resolve(files[p]),
    readFile: (p) => Promise.resolve(new TextEncoder().encode(`bytes of ${p}`)),
    maxFileBytes: 50,
  });
  assert.deepEqual(plan.map((e) => [e.reg, e.description]), [
    [VBOOT_REGISTERS.config, 'vboot domain XML of "web-1" (6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c)'],
    [VBOOT_REGISTERS.kernel, "vboot kernel /boot/vmlinuz"],
    [
      VBOOT_REGISTERS.initrd,
      "vboot initrd /boot/big.img (not measured: 100 bytes, over the 50-byte limit)",
    ],
    [VBOOT_REGISTERS.cmdline, "vboot kernel command line"],
    [VBOOT_REGISTERS.disks, "vboot disk disk file /img/a.qcow2 qcow2 vda rw </img/base.qcow2"],
    [VBOOT_REGISTERS.disks, "vboot disk cdrom file - - sda ro"],
  ]);
  assert.equal(plan[0]!.data, xml);
  assert.equal(text(plan[1]!.data), "bytes of /boot/vmlinuz");
  assert.match(text(plan[2]!.data), /^unreadable \/boot\/big\.img: 100 bytes/);
  assert.equal(text(plan[3]!.data), "console=ttyS0");
});

Deno.test("vbootExtensions() records a file it cannot read as not measured, and keeps long paths within the description limit", async () => {
  const long = `/${"d".repeat(1500)}/vmlinuz`;
  const xml = XML.replace("/boot/vmlinuz", long);
  const plan = await vbootExtensions(parseDomainXml(xml), new TextEncoder().encode(xml), {
    fileSize: () => Promise.reject(new Error("No such file")),
  });
  const kernel = plan.find((e) => e.reg === VBOOT_REGISTERS.kernel)!;
  assert.match(kernel.description, /^vboot kernel \/d+….*\(not measured: No such file\)$/);
  assert.ok(new TextEncoder().encode(kernel.description).length <= 1024);
  assert.equal(text(kernel.data), `unreadable ${long}: No such file`);
});
