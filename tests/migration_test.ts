/**
 * Migration between two real decision servers (createServer + their TCP listeners on
 * loopback, each with its own state directory, software ASP and manufacturer CA): the
 * destination fetches a VM's vASP state at its `migrate-in` decision, the source attests it and
 * seals the state to its ASP. Every refusal of the protocol, and what each side keeps after a
 * completed and a failed migration. tests/libvirt_migration_test.ts drives the same through two
 * real libvirtd hosts and a live migration.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { type RunningServer, startServer } from "../src/server/mod.ts";
import { SILENT } from "../src/engine/mod.ts";
import { readCertificates, toPem, verifyQuote } from "../src/attest/mod.ts";
import { destinationEvidence } from "../src/vasp/mod.ts";
import { Asp } from "../ffi/mod.ts";
import { tempStateDir } from "./fixtures/state_dir.ts";
import { operatorApi } from "./fixtures/operator_api.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const VM = "5b0c3e1a-7d2f-4a6b-9c8d-1e2f3a4b5c6d";

/** One host: a server on loopback TCP, its QEMU and kernel stand-in files (measured). */
interface Host extends AsyncDisposable {
  readonly name: string;
  readonly server: RunningServer;
  readonly url: string;
  readonly qemu: string;
  readonly peerToken: string;
  // deno-lint-ignore no-explicit-any -- tests read whatever JSON came back
  call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }>;
  decide(
    body: Record<string, unknown>,
  ): Promise<
    {
      allow: boolean;
      reasons: { message: string; policy: string; rule: string }[];
      vasp?: Record<string, unknown>;
    }
  >;
  report(body: Record<string, unknown>): Promise<void>;
}

async function startHost(name: string): Promise<Host> {
  const dir = await Deno.makeTempDir({ prefix: `vasp-mig-${name}-` });
  const policies = join(dir, "policies");
  await Deno.mkdir(policies);
  for await (const e of Deno.readDir(`${ROOT}policies`)) {
    // No monitor measures these VMs: a running VM never measured may not migrate.
    if (e.name.startsWith("measurement-freshness.")) continue;
    await Deno.copyFile(`${ROOT}policies/${e.name}`, join(policies, e.name));
  }
  const qemu = join(dir, "qemu-system-x86_64");
  const kernel = join(dir, "vmlinuz");
  await Deno.writeTextFile(qemu, `qemu of ${name}\n`);
  await Deno.writeTextFile(kernel, `kernel of ${name}\n`);
  const server = await startServer({
    stateDir: join(dir, "state"),
    policies: { dir: policies },
    host: { qemu, kernel },
    learnHost: true,
    tcp: { hostname: "127.0.0.1", port: 0 },
    log: SILENT,
    monitor: null,
    libvirt: null,
  });
  const api = operatorApi(join(dir, "state", "vasp.sock"));
  const call = api.call;
  const close = async () => {
    api.close();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  };
  return {
    name,
    server,
    url: `http://127.0.0.1:${server.listeners.tcp!.port}`,
    qemu,
    peerToken: server.tokens.create({ role: "peer" }).token,
    call,
    async decide(body) {
      const r = await call("POST", "/v1/decide", body);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      return r.json;
    },
    async report(body) {
      const r = await call("POST", "/v1/events", body);
      assert.equal(r.status, 200, JSON.stringify(r.json));
    },
    [Symbol.asyncDispose]: close,
  };
}

/** Enrols `peer` on `host`; `options` overrides what is sent. */
async function enrol(host: Host, peer: Host, options: Record<string, unknown> = {}) {
  const r = await host.call("POST", "/v1/peers", {
    name: peer.name,
    ca: toPem(peer.server.asp.certificate("ca")),
    endpoint: peer.url,
    token: peer.peerToken,
    ...options,
  });
  assert.equal(r.status, 201, JSON.stringify(r.json));
}

const vm = { uuid: VM, name: "mig-1" };
const migrateIn = { operation: "migrate-in", phase: "begin", vm, source: "libvirt-hook" };
const said = (reasons: { message: string }[]) => reasons.map((r) => r.message).join("\n");

Deno.test("migration between two vASP hosts: refusals, a failed and a completed one", async (t) => {
  await using a = await startHost("host-a");
  await using b = await startHost("host-b");
  const registered = await a.call("POST", "/v1/vms", {
    ...vm,
    tenant: "acme",
    labels: { tier: "prod" },
    state: "running",
    config_digest: `sha256:${"ab".repeat(32)}`,
  });
  assert.equal(registered.status, 201, JSON.stringify(registered.json));
  const lastAudit = async (h: Host) =>
    (await h.call("GET", `/v1/audit?vm=${VM}&limit=1&order=desc`)).json.records[0];

  await t.step("a destination with no enrolled peer has nothing to fetch from", async () => {
    const d = await b.decide(migrateIn);
    assert.equal(d.allow, false);
    assert.match(said(d.reasons), /no enrolled peer with a token/);
  });

  await t.step("a destination the source did not enrol is refused by the source", async () => {
    await enrol(b, a);
    const d = await b.decide(migrateIn);
    assert.equal(d.allow, false);
    assert.match(said(d.reasons), /source host host-a refused: .*not an enrolled peer/);
    const rec = await lastAudit(a);
    assert.deepEqual([rec.operation, rec.source, rec.result], ["migrate-out", "peer", "deny"]);
    assert.equal(rec.reasons[0].rule, "enrolled");
  });

  await t.step("a destination enrolled with another CA is not that peer", async () => {
    await using dir = await tempStateDir();
    const other = Asp.open(dir.path);
    await enrol(a, b, { ca: toPem(other.certificate("ca")) });
    other.close();
    const d = await b.decide(migrateIn);
    assert.equal(d.allow, false);
    assert.match(said(d.reasons), /not an enrolled peer: no enrolled peer's CA issued its EK/);
    assert.equal((await a.call("DELETE", "/v1/peers/host-b")).status, 200);
    await enrol(a, b);
  });

  await t.step("a destination whose QEMU differs from what it expects is refused", async () => {
    await Deno.writeTextFile(b.qemu, "a patched qemu, longer\n");
    await b.server.host.remeasure("test");
    const d = await b.decide(migrateIn);
    assert.equal(d.allow, false);
    assert.match(said(d.reasons), /host-b is not the host it expects to be: .*qemu/);
    assert.equal((await lastAudit(a)).reasons[0].rule, "host");
    await Deno.writeTextFile(b.qemu, "qemu of host-b\n");
    await b.server.host.remeasure("test");
  });

  await t.step(
    "a quote over another nonce is refused; an answered migration is used up",
    async () => {
      const open = await fetch(`${a.url}/v1/migrations`, {
        method: "POST",
        headers: { authorization: `Bearer ${a.peerToken}`, "content-type": "application/json" },
        body: JSON.stringify({ vm_uuid: VM }),
      });
      assert.equal(open.status, 201);
      const { migration_id: id } = await open.json();
      const evidence = await destinationEvidence(b.server.asp, new Uint8Array(32), {
        vmUuid: VM,
        expected: Object.fromEntries(
          Object.entries(b.server.host.state()!.files).map(([n, f]) => [n, f.expected]),
        ),
        policyRevision: b.server.policyStore.current().revision,
      });
      const answer = (body: unknown) =>
        fetch(`${a.url}/v1/migrations/${id}/evidence`, {
          method: "POST",
          headers: { authorization: `Bearer ${a.peerToken}`, "content-type": "application/json" },
          body: JSON.stringify(body),
        });
      const first = await answer(evidence);
      const refused = await first.json();
      assert.equal(first.status, 409, JSON.stringify(refused));
      assert.equal(refused.code, "migration_refused");
      assert.match(refused.message, /wrong_nonce/);
      const again = await answer(evidence);
      assert.equal(again.status, 404);
      assert.equal((await again.json()).code, "migration_not_found");
      // A hook token may not open a migration.
      const hook = await fetch(`${a.url}/v1/migrations`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${a.server.tokens.create({ role: "hook" }).token}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ vm_uuid: VM }),
      });
      assert.equal(hook.status, 403);
      await hook.body?.cancel();
    },
  );

  await t.step("state from a host that is not the enrolled peer is refused", async () => {
    // B knows A's endpoint under another CA: what A sends does not come from that peer's ASP.
    await using dir = await tempStateDir();
    const other = Asp.open(dir.path);
    assert.equal((await b.call("DELETE", "/v1/peers/host-a")).status, 200);
    await enrol(b, a, { ca: toPem(other.certificate("ca")) });
    other.close();
    const d = await b.decide(migrateIn);
    assert.equal(d.allow, false);
    assert.match(said(d.reasons), /the vASP state from host-a is not signed by its enrolled ASP/);
    assert.equal((await b.call("DELETE", "/v1/peers/host-a")).status, 200);
    await enrol(b, a);
  });

  await t.step(
    "a failed migration discards the arrival and keeps the source's instance",
    async () => {
      const d = await b.decide(migrateIn);
      assert.equal(d.allow, true, said(d.reasons));
      assert.equal(d.vasp?.from, "host-a");
      const arrived = (await b.call("GET", `/v1/vms/${VM}`)).json;
      assert.equal(arrived.tenant, "acme");
      assert.deepEqual(arrived.labels, { tier: "prod" });
      assert.notEqual(arrived.binding, null);
      await b.report({ ...migrateIn, phase: undefined, source: "qmp-gate", outcome: "failed" });
      assert.equal((await b.call("GET", `/v1/vms/${VM}`)).json.binding, null);
      await a.report({ operation: "migrate-out", vm, source: "qmp-gate", outcome: "failed" });
      const q = await a.call("GET", `/v1/vms/${VM}/quote?nonce=${"11".repeat(16)}`);
      assert.equal(q.status, 200, JSON.stringify(q.json));
      // QEMU's migrate needs an attested destination: the failed one's is gone.
      const migrate = await a.decide({
        operation: "migrate-out",
        vm,
        source: "qmp-gate",
        details: { command: "migrate", migrate_to: "network" },
      });
      assert.equal(migrate.allow, false);
      assert.match(said(migrate.reasons), /no destination was attested/);
    },
  );

  await t.step(
    "a completed migration: the VM's vASP lives on at the destination only",
    async () => {
      // The failed arrival left B a record without an instance; the VM comes again.
      const d = await b.decide(migrateIn);
      assert.equal(d.allow, true, said(d.reasons));
      const migrate = await a.decide({
        operation: "migrate-out",
        vm,
        source: "qmp-gate",
        details: { command: "migrate", migrate_to: "network" },
      });
      assert.equal(migrate.allow, true, said(migrate.reasons));
      await a.report({ operation: "migrate-out", vm, source: "qmp-gate", outcome: "completed" });
      await b.report({ operation: "migrate-in", vm, source: "qmp-gate", outcome: "completed" });
      assert.equal((await a.call("GET", `/v1/vms/${VM}`)).json.binding, null);
      const stale = await a.call("GET", `/v1/vms/${VM}/quote?nonce=${"11".repeat(16)}`);
      assert.equal(stale.status, 409);
      // The tenant's quote now chains to B's ASP, its event log continuing A's.
      const nonce = "22".repeat(16);
      const q = (await b.call("GET", `/v1/vms/${VM}/quote?nonce=${nonce}`)).json;
      const verified = await verifyQuote(Buffer.from(q.quote, "base64"), {
        chain: readCertificates(new TextEncoder().encode(q.certificates.join(""))),
        root: b.server.asp.certificate("ca"),
        nonce: Buffer.from(nonce, "hex"),
        now: new Date(),
        vm: { vmUuid: VM },
        eventLog: q.event_log,
      });
      assert.equal(verified.ok, true, JSON.stringify(verified));
      const moves = q.event_log.filter((e: { reg: number }) => e.reg === 9);
      assert.equal(moves.length, 1);
      assert.match(moves[0].description, /migrate-in from host-a/);
      // The source can no longer give the VM's state to anyone.
      const open = await fetch(`${a.url}/v1/migrations`, {
        method: "POST",
        headers: { authorization: `Bearer ${a.peerToken}`, "content-type": "application/json" },
        body: JSON.stringify({ vm_uuid: VM }),
      });
      assert.equal(open.status, 404);
      await open.body?.cancel();
    },
  );
});
