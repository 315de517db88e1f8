/**
 * vASP instances through a VM's life cycle in the real server: the native ASP, the SQLite
 * store and the project's default policies. Registration creates the instance, an allowed
 * start extends what boots, a tenant's quote verifies offline, save seals, restore imports,
 * a rolled-back sealed state is refused, destroy ends the instance, and a restart brings
 * every instance back — or fails closed for the one whose sealed state was rolled back.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { parseEventLog } from "../ffi/mod.ts";
import { readCertificates, verifyQuote } from "../src/attest/mod.ts";
import { SqliteStore, type VaspBinding } from "../src/store/mod.ts";
import { tempStateDir } from "./fixtures/state_dir.ts";
import { startVaspServer, type VaspServer } from "./fixtures/vasp_server.ts";
import {
  allowed,
  bootFiles,
  completed as completedOf,
  decide as decideAbout,
  domainXml as xmlOf,
  measuredClean as measuredCleanOf,
} from "./fixtures/vasp_vm.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const VM = "6f1c2a9e-3b4d-4c5e-8f70-1a2b3c4d5e6f";
const VM2 = "0e4a1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b";
const NONCE = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");

const WEB1 = { uuid: VM, name: "web-1" };
const domainXml = (uuid: string, name: string, boot: string) => xmlOf({ uuid, name }, boot);
const decide = (s: VaspServer, operation: string, extra: Record<string, unknown> = {}) =>
  decideAbout(s, WEB1, operation, extra);
const completed = (s: VaspServer, operation: string, extra: Record<string, unknown> = {}) =>
  completedOf(s, WEB1, operation, extra);
const measuredClean = (s: VaspServer) => measuredCleanOf(s, WEB1);

async function binding(s: VaspServer, uuid = VM): Promise<VaspBinding> {
  const vm = await s.server.store.getVm(uuid);
  assert.ok(vm?.binding, `VM ${uuid} has a binding`);
  return vm.binding;
}

Deno.test("a VM's vASP instance is created at registration, extended at boot, quoted, sealed at save, imported at restore, refused when rolled back and destroyed with the VM", async (t) => {
  await using dir = await tempStateDir();
  const boot = join(dir.path, "boot");
  const kernel = await bootFiles(boot);
  const xml = domainXml(VM, "web-1", boot);
  await using s = await startVaspServer(dir.path);
  let counter = 0;

  await t.step(
    "an operator's registration with the domain XML binds a new instance to its digest",
    async () => {
      const answer = await s.call("POST", "/v1/vms", {
        body: { uuid: VM, name: "web-1", tenant: "acme", domain_xml: xml },
      });
      assert.equal(answer.status, 201, JSON.stringify(answer.json));
      const b = answer.json.binding;
      assert.match(b.instance_id, /^[0-9a-f]{32}$/);
      assert.equal(b.config_digest, sha256(xml));
      assert.equal(b.sealed, true);
      counter = b.sealed_counter;
      assert.ok(counter >= 1);
    },
  );

  await t.step(
    "an allowed start extends what will boot, and the sealed state follows",
    async () => {
      const details = { domain_xml_b64: Buffer.from(xml).toString("base64") };
      const prepare = allowed(await decide(s, "start", { phase: "prepare", details }));
      assert.equal(prepare.vboot, 6); // domain XML, firmware, kernel, initrd, cmdline, one disk
      assert.ok((prepare.counter as number) > counter);
      counter = prepare.counter as number;
      assert.equal((await binding(s)).sealedCounter, counter);
      // libvirt's `start` phase carries the same XML: nothing is extended twice.
      assert.deepEqual(allowed(await decide(s, "start", { phase: "start", details })), {});
      await completed(s, "start", { phase: "started" });
    },
  );

  let quoteFiles: { quote: string; chain: string; log: string } | undefined;
  await t.step(
    "the VM's tenant gets a quote that verifies offline against the manufacturer CA",
    async () => {
      const acme = s.token("tenant", "acme");
      const answer = await s.call("GET", `/v1/vms/${VM}/quote?nonce=${NONCE}`, { token: acme });
      assert.equal(answer.status, 200, JSON.stringify(answer.json));
      const q = answer.json;
      const chain = readCertificates(new TextEncoder().encode(q.certificates.join("")));
      assert.equal(chain.length, 3);
      const ca = await Deno.readFile(join(dir.path, "manufacturer-ca.pem"));
      const eventLog = parseEventLog(new TextEncoder().encode(JSON.stringify(q.event_log)));
      const result = await verifyQuote(Buffer.from(q.quote, "base64"), {
        chain,
        root: readCertificates(ca)[0]!,
        nonce: Buffer.from(NONCE, "hex"),
        now: new Date(),
        vm: {
          vmUuid: VM,
          configDigest: Buffer.from(sha256(xml), "hex"),
          instanceId: q.instance_id,
        },
        eventLog,
      });
      assert.equal(result.ok, true, JSON.stringify(result));
      // The kernel's entry carries the kernel file's own digest, in the kernel register.
      const entry = eventLog.find((e) => e.description === `vboot kernel ${boot}/vmlinuz`);
      assert.equal(entry?.reg, 2);
      assert.equal(entry?.sha256, sha256(kernel));
      const other = s.token("tenant", "globex");
      const hidden = await s.call("GET", `/v1/vms/${VM}/quote?nonce=${NONCE}`, { token: other });
      assert.equal(hidden.status, 404);
      const bad = await s.call("GET", `/v1/vms/${VM}/quote?nonce=xyz`, { token: acme });
      assert.equal(bad.json.code, "request_invalid");
      quoteFiles = {
        quote: q.quote,
        chain: q.certificates.join(""),
        log: JSON.stringify(q.event_log),
      };
    },
  );

  await t.step("vasp attest verify accepts the tenant's quote files", async () => {
    const files = join(dir.path, "quote");
    await Deno.mkdir(files);
    await Deno.writeFile(join(files, "quote.bin"), Buffer.from(quoteFiles!.quote, "base64"));
    await Deno.writeTextFile(join(files, "chain.pem"), quoteFiles!.chain);
    await Deno.writeTextFile(join(files, "log.json"), quoteFiles!.log);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        ...["run", "-A", "src/cli/main.ts", "attest", "verify"],
        ...["--quote", join(files, "quote.bin"), "--chain", join(files, "chain.pem")],
        ...["--ca", join(dir.path, "manufacturer-ca.pem"), "--nonce", NONCE, "--vm", VM],
        ...["--config-digest", `sha256:${sha256(xml)}`, "--event-log", join(files, "log.json")],
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, stdout + new TextDecoder().decode(out.stderr));
    assert.match(stdout, /^quote OK: signed by vASP instance [0-9a-f]{32} of VM /);
  });

  let older: VaspBinding | undefined;
  await t.step(
    "an allowed save seals the instance and the store keeps the blob and counter",
    async () => {
      await measuredClean(s);
      const saved = allowed(await decide(s, "save"));
      assert.ok((saved.counter as number) > counter);
      counter = saved.counter as number;
      older = await binding(s);
      assert.equal(older.sealedCounter, counter);
      await completed(s, "save");
    },
  );

  await t.step("an allowed restore imports the stored sealed state", async () => {
    const restored = allowed(await decide(s, "restore", { phase: "begin" }));
    assert.equal(restored.imported, true);
    assert.ok((restored.counter as number) > counter);
    await completed(s, "restore");
  });

  let newest: VaspBinding | undefined;
  await t.step(
    "an older sealed state put back into the store is refused as a rollback",
    async () => {
      await measuredClean(s);
      allowed(await decide(s, "save"));
      await completed(s, "save");
      newest = await binding(s);
      await s.server.store.updateVm(VM, { binding: older! });
      const answer = await decide(s, "restore", { phase: "begin" });
      assert.equal(answer.json.allow, false);
      const usable = answer.json.reasons.find((r: { rule: string }) => r.rule === "usable");
      assert.equal(usable?.policy, "vasp-binding");
      assert.match(usable.message, /refused: .*older than the newest export.*\[rollback_refused\]/);
      assert.ok(answer.json.reasons.some((r: { rule: string }) => r.rule === "sealed"));
      assert.equal(answer.json.vasp, undefined);
      await s.server.store.updateVm(VM, { binding: newest! });
    },
  );

  await t.step(
    "an allowed destroy ends the instance: its sealed state never imports again",
    async () => {
      const destroyed = allowed(await decide(s, "destroy", { source: "operator" }));
      assert.equal(destroyed.destroyed, true);
      assert.equal((await s.server.store.getVm(VM))?.binding, null);
      assert.throws(
        () => s.server.vasp.instances.importPending(VM, newest!.sealedState!),
        { code: "instance_destroyed" },
      );
      const quote = await s.call("GET", `/v1/vms/${VM}/quote?nonce=${NONCE}`);
      assert.equal(quote.json.code, "vasp_instance_unavailable");
    },
  );
});

Deno.test("after a restart every instance comes back with its ID and registers, and a VM whose sealed state was rolled back fails closed", async () => {
  await using dir = await tempStateDir();
  const boot = join(dir.path, "boot");
  await bootFiles(boot);
  const details = (uuid: string, name: string) => ({
    phase: "prepare",
    details: { domain_xml_b64: Buffer.from(domainXml(uuid, name, boot)).toString("base64") },
  });
  const quoteAll = async (s: VaspServer) => {
    const q = await s.call("GET", `/v1/vms/${VM}/quote?nonce=${NONCE}`);
    assert.equal(q.status, 200, JSON.stringify(q.json));
    return { id: q.json.instance_id, quote: Buffer.from(q.json.quote, "base64") };
  };
  let before;
  let rolledBack: VaspBinding;
  {
    await using s = await startVaspServer(dir.path);
    const r = await s.call("POST", "/v1/vms", {
      body: {
        uuid: VM,
        name: "web-1",
        config_digest: `sha256:${sha256(domainXml(VM, "web-1", boot))}`,
      },
    });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    // The operator's command line: the same registration over the server's socket.
    const cli = await new Deno.Command(Deno.execPath(), {
      args: [
        ...["run", "-A", "src/cli/main.ts", "vm", "register", "--state-dir", dir.path],
        ...["--uuid", VM2, "--name", "web-2"],
        ...["--config-digest", `sha256:${sha256(domainXml(VM2, "web-2", boot))}`],
        "--json",
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(cli.code, 0, new TextDecoder().decode(cli.stderr));
    assert.match(
      JSON.parse(new TextDecoder().decode(cli.stdout)).binding.instance_id,
      /^[0-9a-f]{32}$/,
    );
    rolledBack = await binding(s, VM2);
    allowed(await decide(s, "start", details(VM, "web-1")));
    const second = await s.call("POST", "/v1/decide", {
      body: {
        operation: "start",
        vm: { uuid: VM2, name: "web-2" },
        source: "api",
        ...details(VM2, "web-2"),
      },
    });
    allowed(second);
    before = await quoteAll(s);
  }
  {
    // While the server is down, VM2's sealed state is put back to its first export.
    await using store = SqliteStore.openIn(dir.path);
    await store.updateVm(VM2, { binding: rolledBack });
  }
  await using s = await startVaspServer(dir.path);
  const after = await quoteAll(s);
  assert.equal(after.id, before.id);
  // The same nonce over the same registers: only the signature (random k) differs.
  assert.deepEqual(after.quote.subarray(0, -64), before.quote.subarray(0, -64));
  assert.ok(
    s.logged.some((l) => /ERROR +VM "web-2" has no vASP instance: .*rollback_refused/.test(l)),
    s.logged.join("\n"),
  );
  const denied = await s.call("POST", "/v1/decide", {
    body: { operation: "start", vm: { uuid: VM2, name: "web-2" }, source: "api", details: {} },
  });
  assert.equal(denied.json.allow, false);
  const usable = denied.json.reasons.find((r: { rule: string }) => r.rule === "usable");
  assert.match(usable?.message ?? "", /refused when the server started: .*\[rollback_refused\]/);
  const quote = await s.call("GET", `/v1/vms/${VM2}/quote?nonce=${NONCE}`);
  assert.equal(quote.status, 409);
  assert.equal(quote.json.code, "vasp_instance_unavailable");
});
