import assert from "node:assert/strict";
import { parseDomainXml } from "./libvirt.ts";
import { parseXml } from "./_xml.ts";

const FIXTURE = await Deno.readTextFile(
  new URL("../../tests/fixtures/libvirt_domain.xml", import.meta.url),
);

Deno.test("parseDomainXml() reads identity, emulator, shared RAM, direct boot and disks", () => {
  const d = parseDomainXml(FIXTURE);
  assert.equal(d.uuid, "6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c");
  assert.equal(d.name, "web-1");
  assert.equal(d.type, "kvm");
  assert.equal(d.emulator, "/usr/local/libexec/vasp-qemu");
  assert.equal(d.memoryKiB, 262144);
  assert.deepEqual(d.memoryBacking, {
    source: "memfd",
    access: "shared",
    shared: true,
    hugepages: false,
  });
  assert.deepEqual(d.os, {
    type: "hvm",
    arch: "x86_64",
    machine: "pc-i440fx-7.2",
    kernel: "/var/lib/libvirt/boot/vmlinuz-6.1.0-56-cloud-amd64",
    initrd: "/var/lib/libvirt/boot/initrd.img-6.1.0-56-cloud-amd64",
    cmdline: "console=ttyS0 root=/dev/vda1 nokaslr quiet",
  });
  assert.deepEqual(
    d.disks.map((x) => [x.device, x.type, x.source, x.format, x.target, x.readonly]),
    [
      ["disk", "file", "/var/lib/libvirt/images/web-1.qcow2", "qcow2", "vda", false],
      ["disk", "block", "/dev/vg0/web-1-data", "raw", "vdb", true],
      ["cdrom", "file", undefined, "raw", "hdc", true],
    ],
  );
  assert.deepEqual(d.disks[0]!.backingChain, ["/var/lib/libvirt/images/debian-12-base.raw"]);
});

Deno.test("parseDomainXml() takes the top-level <name>, not one inside <metadata>", () => {
  const xml = FIXTURE.replace("<name>web-1</name>", "").replace(
    "</devices>",
    "</devices><name>web &amp; &quot;co&quot; &#x263A;</name>",
  );
  assert.equal(parseDomainXml(xml).name, 'web & "co" \u263a');
});

Deno.test("parseXml() refuses a DOCTYPE, so no entity can be declared or expanded", () => {
  const bomb = `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>` +
    `<domain><name>&b;</name></domain>`;
  assert.throws(() => parseXml(bomb), { code: "xml_invalid", message: /DOCTYPE/ });
  const external = `<!DOCTYPE d SYSTEM "file:///etc/passwd"><domain/>`;
  assert.throws(() => parseXml(external), { code: "xml_invalid" });
});

Deno.test("parseXml() refuses unknown entities, bad nesting, depth bombs and trailing roots", () => {
  assert.throws(() => parseXml("<a>&xxe;</a>"), { code: "xml_invalid", message: /"&xxe;"/ });
  assert.throws(() => parseXml("<a>&#0;</a>"), { code: "xml_invalid" });
  assert.throws(() => parseXml("<a>AT&T</a>"), { code: "xml_invalid", message: /bare "&"/ });
  assert.throws(() => parseXml("<a><b></a></b>"), { code: "xml_invalid", message: /<\/a>/ });
  assert.throws(() => parseXml("<a><b>"), { code: "xml_invalid", message: /not closed/ });
  assert.throws(() => parseXml("<a/><b/>"), { code: "xml_invalid", message: /second root/ });
  assert.throws(() => parseXml("<x>".repeat(100) + "</x>".repeat(100)), {
    message: /deeper than 64/,
  });
  assert.throws(() => parseXml("<a/>", { maxLength: 2 }), { message: /longer than 2/ });
});

Deno.test("parseDomainXml() refuses a document that is no domain or has no valid uuid", () => {
  assert.throws(() => parseDomainXml("<network/>"), {
    code: "domain_xml_invalid",
    message: /<network>/,
  });
  assert.throws(
    () => parseDomainXml("<domain><name>x</name><uuid>not-a-uuid</uuid></domain>"),
    { code: "domain_xml_invalid", message: /"not-a-uuid"/ },
  );
});
