/**
 * The steps of `vasp demo`: the paper's chain on the real server (ASP, default policies,
 * SQLite store, vASP instances), driven through the HTTP API with the bodies a libvirt hook,
 * the QMP gate, the monitor, an operator and a tenant send. Each step checks that what
 * happened is what should have, and throws `demo_step_failed` naming it when not.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { toHex } from "../codec/mod.ts";
import { type Logger, VaspError } from "../engine/mod.ts";
import { isVaspError } from "../engine/error.ts";
import { TokenRegistry } from "../http/mod.ts";
import { type DecideRequest, type DecisionAnswer, VaspClient } from "../wire/mod.ts";
import { SqliteStore, type VaspBinding } from "../store/mod.ts";
import { aspCheckpointVerifier, CA_FILE } from "../server/mod.ts";
import {
  type DemoVm,
  learnStandIn,
  standInDomain,
  StandInGuest,
  standInGuests,
  standInHost,
} from "./_demo_stand_ins.ts";
import { fetchAndVerify, type TenantQuote, verifyTampered } from "./_demo_tenant.ts";
import { HOST_EXPECTED_FILE } from "../host/mod.ts";
import { type RunningServer, startServer } from "../server/mod.ts";
import { projectPath } from "../paths.ts";

const POLICIES = projectPath("policies");

/** What one step reports: its line and the facts behind it. */
export interface StepResult {
  /** One line: what happened and why it matters. */
  readonly line: string;
  /** The values behind it, for `--json`. */
  readonly facts: Readonly<Record<string, unknown>>;
}

/** One step of the demo. */
export interface DemoStep {
  /** A few words naming what the step shows. */
  readonly title: string;
  /**
   * Runs the step.
   *
   * @returns its report
   * @throws {VaspError} `demo_step_failed` when something did not behave as it should; what a
   *   component threw
   */
  run(): Promise<StepResult>;
}

/** Throws `demo_step_failed` unless `ok`: the step did not behave as it should. */
function expect(ok: unknown, expected: string, got?: unknown): asserts ok {
  if (ok) return;
  const seen = got === undefined ? "" : `; got ${JSON.stringify(got)?.slice(0, 400)}`;
  throw new VaspError("demo_step_failed", `expected ${expected}${seen}`);
}

/** The error code of a refused call, for the demo's line. */
const describeCode = (e: unknown) => isVaspError(e) ? e.code : String(e);
const sha256 = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
const short = (hex: string) => `${hex.slice(0, 12)}…`;
/** A `measurement` decision as the monitor made it, read back from the audit log. */
interface MeasuredDecision {
  readonly decision_id: string;
  readonly allow: boolean;
  readonly reasons: readonly { policy: string; rule: string; message: string; effect?: unknown }[];
  readonly actions: readonly string[];
}

const denial = (a: Pick<DecisionAnswer, "reasons"> | MeasuredDecision) =>
  a.reasons.filter((r) => r.effect === "deny").map((r) => `${r.policy}/${r.rule}`).join(", ");

/** The demo against one state directory; steps run in order, each after the previous. */
export class DemoRun {
  readonly #dir: string;
  readonly #log: Logger;
  readonly #vm: DemoVm = { uuid: crypto.randomUUID(), name: "demo-web-1" };
  readonly #guest = new StandInGuest();
  /** The hosts: A (state in the demo's directory) and, from the migration on, B. */
  readonly #hosts: { server: RunningServer; api: VaspClient; dir: string }[] = [];
  /** Which host holds the VM: 0 (A) until it migrates to B. */
  #at = 0;
  #tenant?: VaspClient;
  /** What the monitor enforced on the stand-in guest (no QEMU: noted, not sent). */
  readonly #enforced: string[] = [];
  #xml = "";
  #quote?: TenantQuote;

  /**
   * @param stateDir the state directory (empty; the caller removes it)
   * @param options `log`: where the server logs
   */
  constructor(stateDir: string, options: { log: Logger }) {
    this.#dir = stateDir;
    this.#log = options.log;
  }

  /** The server of the host that holds the VM. */
  get #s(): RunningServer {
    expect(this.#hosts[this.#at], "a running server (step 1)");
    return this.#hosts[this.#at]!.server;
  }

  /** The operator's client of the host that holds the VM. */
  get #api(): VaspClient {
    return this.#hosts[this.#at]!.api;
  }

  /** Starts a host's server on stand-ins, the host learned as expected. */
  async #startHost(dir: string) {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const { host, standIns } = await standInHost(dir);
    const server = await startServer({
      stateDir: dir,
      policies: { dir: POLICIES },
      tcp: { hostname: "127.0.0.1", port: 0 },
      host,
      log: this.#log,
      monitor: { guests: standInGuests(this.#guest, this.#enforced) },
      libvirt: null,
      learnHost: true,
    });
    const api = new VaspClient(server.listeners.socket!);
    this.#hosts.push({ server, api, dir });
    return { server, api, standIns };
  }

  #decide(operation: string, source: string, extra: Record<string, unknown> = {}) {
    const body = { operation, vm: this.#vm, source, details: {}, ...extra } as DecideRequest;
    return this.#api.decide(body);
  }

  /** Has the server's monitor measure the VM now; its `measurement` decision, from the audit. */
  async #measureNow(): Promise<MeasuredDecision> {
    const monitor = this.#s.monitor;
    expect(monitor, "the server's monitor");
    await monitor.measureNow(this.#vm.uuid);
    const { records } = await this.#s.store.queryAudit({
      vmUuid: this.#vm.uuid,
      order: "desc",
      limit: 1,
    });
    const r = records[0];
    expect(r?.operation === "measurement", "a measurement decision", r);
    return {
      decision_id: r.decisionId,
      allow: r.result === "allow",
      reasons: r.reasons,
      actions: r.actions,
    };
  }

  async #completed(operation: string, source: string, extra = {}): Promise<string> {
    const body = { operation, vm: this.#vm, source, details: {}, ...extra } as DecideRequest;
    return (await this.#api.report({ ...body, outcome: "completed" })).state;
  }

  /** A libvirt hook's details: its arguments and the domain XML it got on stdin. */
  #libvirt(operation: string, subOperation: string) {
    const domain_xml_b64 = Buffer.from(this.#xml).toString("base64");
    return { libvirt: { operation, sub_operation: subOperation, extra: "-" }, domain_xml_b64 };
  }

  /** The steps, in order. */
  steps(): DemoStep[] {
    return [
      { title: "ASP up, host measured and learned", run: () => this.#aspUp() },
      { title: "VM registered with a vASP instance", run: () => this.#register() },
      { title: "start allowed, VM running and measured", run: () => this.#start() },
      { title: "tenant quote verified offline", run: () => this.#quoteVerified() },
      { title: "tampered quote refused", run: () => this.#quoteTampered() },
      { title: "save, restore, rollback refused", run: () => this.#saveRestore() },
      { title: "migration to a host that is not trusted refused", run: () => this.#untrusted() },
      { title: "VM and its vASP migrate to attested host B", run: () => this.#migrate() },
      { title: "differing kernel quarantines, resume denied", run: () => this.#compromised() },
      { title: "audit log verified after shutdown", run: () => this.#audit() },
    ];
  }

  async #aspUp(): Promise<StepResult> {
    const { standIns } = await this.#startHost(this.#dir);
    const ready = await this.#api.readiness();
    const expected = JSON.parse(await Deno.readTextFile(join(this.#dir, HOST_EXPECTED_FILE)));
    const measured = this.#s.host.measured;
    expect(ready.ready === true, "the server ready", ready);
    expect(measured.every((m) => m.sha256), "every host part measured", measured);
    expect(Object.keys(expected).length === measured.length, "all of them learned", expected);
    const ca = join(this.#dir, CA_FILE);
    return {
      line: `software ASP ${short(this.#s.asp.id)} up, manufacturer CA at ${ca}; host measured ` +
        `(${measured.map((m) => m.part).join(", ")}` +
        (standIns.length ? `; stand-in ${standIns.join(", ")}: none on this machine` : "") +
        ") and learned as expected → host-integrity policies have a baseline",
      facts: { asp_id: this.#s.asp.id, manufacturer_ca: ca, host_expected: expected, standIns },
    };
  }

  async #register(): Promise<StepResult> {
    const { name } = this.#vm;
    this.#xml = await standInDomain(this.#dir, this.#vm);
    const digest = sha256(this.#xml);
    const vm = await this.#api.registerVm({
      ...this.#vm,
      tenant: "acme",
      config_digest: `sha256:${digest}`,
    });
    const b = vm.binding;
    expect(b && /^[0-9a-f]{32}$/.test(b.instance_id), "a vASP instance ID", vm);
    expect(b.config_digest === digest && b.sealed, "the instance bound and sealed", b);
    return {
      line: `operator registered VM ${name} with config sha256:${short(digest)} → vASP ` +
        `instance ${b.instance_id}, certified by the ASP: the VM's own root of trust`,
      facts: { vm: this.#vm, config_digest: `sha256:${digest}`, instance_id: b.instance_id },
    };
  }

  async #start(): Promise<StepResult> {
    const prepare = await this.#decide("start", "libvirt-hook", {
      phase: "prepare",
      details: this.#libvirt("prepare", "begin"),
    });
    expect(prepare.allow && Number(prepare.vasp?.vboot) > 0, "start allowed with vBoot", prepare);
    const state = await this.#completed("start", "libvirt-hook", { phase: "started" });
    expect(state === "running", "the started event to move the VM to running", state);
    await learnStandIn(this.#guest, join(this.#dir, "references"));
    // Measured by the server's own monitor; a day's interval: the demo asks for each measurement.
    await this.#api.setIntrospection(this.#vm.uuid, {
      memory: "stand-in",
      symbols: "stand-in",
      interval_ms: 86_400_000,
    });
    const clean = await this.#measureNow();
    const measured = await this.#api.measurements(this.#vm.uuid);
    const statuses = measured.measurements.map((m) => m.status);
    expect(statuses.length > 0 && statuses.every((s) => s === "ok"), "ok", statuses);
    expect(clean.allow, "the clean measurement allowed", clean);
    return {
      line: `libvirt start (prepare) allowed, vBoot measured ${prepare.vasp!.vboot} boot ` +
        `items; started → ${state}; monitor: ${statuses.length} kernel regions ok (register 8)`,
      facts: { decision_id: prepare.decision_id, vboot: prepare.vasp!.vboot, state, statuses },
    };
  }

  async #quoteVerified(): Promise<StepResult> {
    const { token } = new TokenRegistry(this.#dir).create({ role: "tenant", tenant: "acme" });
    this.#tenant = new VaspClient(`http://127.0.0.1:${this.#s.listeners.tcp!.port}`, { token });
    this.#quote = await fetchAndVerify(this.#tenant, {
      vmUuid: this.#vm.uuid,
      configDigest: sha256(this.#xml),
      ca: await Deno.readFile(join(this.#dir, CA_FILE)),
    });
    const { result, options, entries } = this.#quote;
    expect(result.ok, "the tenant's quote to verify", result);
    const chain = result.chain.map((c) =>
      c.subject.replace(/^CN=(vASP )?/, "").replace(/([0-9a-f]{8})[0-9a-f]+/, "$1…")
    ).join(" → ");
    const nonce = toHex(options.nonce);
    return {
      line: `tenant quote, fresh nonce ${short(nonce)}: verified offline, chain ${chain}; ` +
        `bound to this VM and config; ${entries} log entries replay`,
      facts: {
        verified: true,
        nonce,
        chain: result.chain,
        binding: result.binding && {
          ...result.binding,
          configDigest: `sha256:${toHex(result.binding.configDigest)}`,
        },
      },
    };
  }

  async #quoteTampered(): Promise<StepResult> {
    expect(this.#quote, "a quote from step 4");
    const result = await verifyTampered(this.#quote);
    expect(!result.ok && result.reason === "bad_signature", "a bad_signature refusal", result);
    return {
      line: `same quote, one byte of register 0 flipped: refused [${result.reason}] → a ` +
        "forged register value cannot pass for the VM's",
      facts: { refused: true, reason: result.reason, message: result.message },
    };
  }

  /** The sealed state the store holds for the VM. */
  async #binding(): Promise<VaspBinding> {
    const binding = (await this.#s.store.getVm(this.#vm.uuid))?.binding;
    expect(binding?.sealedState, "a sealed state in the VM's binding", binding);
    return binding;
  }

  async #saveRestore(): Promise<StepResult> {
    const restore = () =>
      this.#decide("restore", "libvirt-hook", {
        phase: "begin",
        details: this.#libvirt("restore", "begin"),
      });
    const save = async () => {
      const saved = await this.#decide("save", "api");
      expect(saved.allow, "save allowed", saved);
      expect(await this.#completed("save", "api") === "saved", "the VM saved");
      return saved.vasp!.counter as number;
    };
    const sealedAt = await save();
    const older = await this.#binding();
    const restored = await restore();
    expect(restored.allow && restored.vasp?.imported, "restore allowed and imported", restored);
    expect(await this.#completed("restore", "libvirt-hook") === "running", "the VM running again");
    await save();
    // What restoring an old copy of vasp.db does to this row: the API never hands out the
    // sealed bytes, so the demo puts the older blob back through the store itself.
    const newest = await this.#binding();
    await this.#s.store.updateVm(this.#vm.uuid, { binding: older });
    const rolledBack = await restore();
    await this.#s.store.updateVm(this.#vm.uuid, { binding: newest });
    const reason = rolledBack.reasons.find((r) => r.message.includes("rollback_refused"));
    expect(!rolledBack.allow && reason, "a deny naming rollback_refused", rolledBack);
    const again = await restore();
    expect(again.allow, "the newest sealed state restored", again);
    expect(await this.#completed("restore", "libvirt-hook") === "running", "the VM running again");
    const why = /blob counter \d+ is older than the newest export \d+/.exec(reason.message);
    const imported = restored.vasp!.counter;
    return {
      line: `save → sealed (counter ${sealedAt}); restore → imported (counter ${imported}); ` +
        `counter-${older.sealedCounter} blob put back in the store (as an old vasp.db would): ` +
        `restore DENIED [rollback_refused] "${why?.[0] ?? reason.message}"`,
      facts: {
        sealed_counter: sealedAt,
        imported_counter: imported,
        rollback: { allow: rolledBack.allow, reasons: rolledBack.reasons },
      },
    };
  }

  /** Enrols host `peer` on host `host` (its CA, endpoint and a peer token it made). */
  async #enrol(host: number, peer: number): Promise<string> {
    const { server, dir } = this.#hosts[peer]!;
    const { token } = new TokenRegistry(dir).create({ role: "peer" });
    const name = peer === 0 ? "host-a" : "host-b";
    await this.#hosts[host]!.api.enrolPeer({
      name,
      ca: await Deno.readTextFile(join(dir, CA_FILE)),
      endpoint: `http://127.0.0.1:${server.listeners.tcp!.port}`,
      token,
    });
    return name;
  }

  /** Host B's libvirt hook asking for the incoming VM. */
  #migrateIn(): Promise<DecisionAnswer> {
    return this.#hosts[1]!.api.decide({
      operation: "migrate-in",
      phase: "begin",
      vm: this.#vm,
      source: "libvirt-hook",
      details: this.#libvirt("migrate", "begin"),
    } as DecideRequest);
  }

  async #untrusted(): Promise<StepResult> {
    await this.#startHost(join(this.#dir, "host-b"));
    await this.#enrol(1, 0);
    const d = await this.#migrateIn();
    const why = d.reasons.find((r) => r.message.includes("not an enrolled peer"));
    expect(!d.allow && why, "the migration refused: B is no peer of A", d);
    return {
      line: `second host B (its own ASP and CA) trusts A, A does not know B: B's migrate hook ` +
        `DENIED, A refused to attest it: "${/the destination of .*$/.exec(why.message)?.[0]}"`,
      facts: { decision_id: d.decision_id, reasons: d.reasons },
    };
  }

  async #migrate(): Promise<StepResult> {
    await this.#enrol(0, 1);
    const arrived = await this.#migrateIn();
    expect(arrived.allow && arrived.vasp?.from === "host-a", "the VM's vASP fetched", arrived);
    const out = await this.#decide("migrate-out", "qmp-gate", {
      details: { command: "migrate", migrate_to: "network" },
    });
    expect(out.allow, "QEMU's migrate towards the attested B allowed", out);
    // What the two gates and B's hook report as the migration ends.
    await this.#completed("migrate-out", "qmp-gate");
    const sourceQuote = await this.#api.quote(this.#vm.uuid, { nonce: "00".repeat(16) })
      .then(() => "answered", (e) => describeCode(e));
    this.#at = 1;
    await this.#completed("migrate-in", "qmp-gate", { phase: "launch" });
    const state = await this.#completed("start", "libvirt-hook", { phase: "started" });
    expect(sourceQuote === "vasp_instance_unavailable", "A to hold no instance", sourceQuote);
    expect(state === "running", "the VM running on B", state);
    // B measures it with its own monitor, against the references of its kernel profile that
    // came with it. Where its RAM and QMP socket are is B's to say: they do not travel.
    expect(arrived.vasp?.kernel_references, "the kernel profile's references kept on B", arrived);
    await this.#api.setIntrospection(this.#vm.uuid, {
      memory: "stand-in",
      symbols: "stand-in",
      interval_ms: 86_400_000,
    });
    const clean = await this.#measureNow();
    expect(clean.allow, "B's first measurement clean", clean);
    const { token } = new TokenRegistry(this.#hosts[1]!.dir).create({
      role: "tenant",
      tenant: "acme",
    });
    using tenant = new VaspClient(`http://127.0.0.1:${this.#s.listeners.tcp!.port}`, { token });
    const quote = await fetchAndVerify(tenant, {
      vmUuid: this.#vm.uuid,
      configDigest: sha256(this.#xml),
      ca: await Deno.readFile(join(this.#hosts[1]!.dir, CA_FILE)),
    });
    expect(quote.result.ok, "the tenant's quote from B to verify against B's CA", quote.result);
    const moved = quote.options.eventLog!.filter((e) => e.reg === 9);
    expect(moved.length === 1, "the arrival in register 9 of the event log", moved);
    return {
      line: `A enrols B: A attests B (fresh quote of its host registers, chain to its CA, host ` +
        `as B expects) and seals the VM's vASP to B's ASP (counter ${arrived.vasp!.counter}); ` +
        `B imports it with its kernel profile's references, QEMU's migrate allowed; A retires ` +
        `its instance (quote: ${sourceQuote}); B's monitor: kernel ok; tenant quote verified ` +
        `against B's CA, ` +
        `${quote.entries} log entries continuing A's`,
      facts: { transfer: arrived.vasp, migrate: out.decision_id, source_quote: sourceQuote },
    };
  }

  async #compromised(): Promise<StepResult> {
    const region = this.#guest.patchText();
    const d = await this.#measureNow();
    const why = d.reasons.find((r) => r.policy === "runtime-integrity");
    expect(!d.allow && why?.message.endsWith(region), `a deny naming ${region}`, d);
    expect(d.actions.includes("quarantine"), "a quarantine action", d.actions);
    const vm = await this.#api.showVm(this.#vm.uuid);
    expect(vm.state === "quarantined", "the VM quarantined", vm.state);
    expect(this.#enforced.includes("pause"), "the monitor to stop the VM", this.#enforced);
    const resume = await this.#decide("resume", "qmp-gate", { details: { command: "cont" } });
    const only = resume.reasons.length === 1 && resume.reasons[0]!.policy === "vasp.lifecycle";
    expect(!resume.allow && only, "resume denied by the life cycle alone", resume);
    const actions = d.actions.join(", ");
    return {
      line: `stand-in guest's ${region} patched → measurement DENIED (${denial(d)}), ` +
        `[${actions}] → ${vm.state} (stop noted: no QEMU); resume DENIED by the life cycle ` +
        `before any policy: "${resume.reasons[0]!.message}"`,
      facts: { measurement: d, state: vm.state, enforced: this.#enforced, resume },
    };
  }

  /** Verifies one host's audit log, once its server stopped. */
  async #verifyAudit(dir: string) {
    await using store = SqliteStore.openIn(dir, { readOnly: true });
    const { verifier, key } = await aspCheckpointVerifier(dir);
    const result = await store.verifyAudit({ verifier });
    const counts: Record<string, number> = { allow: 0, deny: 0, error: 0, event: 0 };
    let cursor: number | undefined;
    for (;;) {
      const page = await store.queryAudit({ limit: 1000, cursor });
      for (const r of page.records) counts[r.result] = (counts[r.result] ?? 0) + 1;
      if (page.nextCursor === null) break;
      cursor = page.nextCursor;
    }
    expect(result.ok && result.checkpointsChecked > 0, "a sound, signed audit log", result);
    expect(result.recordsAfterLastCheckpoint === 0, "the shutdown checkpoint last", result);
    const decisions = counts.allow! + counts.deny! + counts.error!;
    return { ...result, decisions, counts, checkpoint_key: key };
  }

  async #audit(): Promise<StepResult> {
    await this.close();
    const logs = [];
    for (const { dir } of this.#hosts) logs.push(await this.#verifyAudit(dir));
    const said = logs.map((r, i) =>
      `${"AB"[i]}: ${r.recordsChecked} records, ${r.decisions} decisions (${r.counts.allow} ` +
      `allowed, ${r.counts.deny} denied), ${plural(r.checkpointsChecked, "checkpoint")}`
    );
    return {
      line: `servers stopped; both audit logs verified, hash chains intact and checkpoints ` +
        `signed by each ASP's AK: ${said.join("; ")}`,
      facts: { hosts: logs },
    };
  }

  /**
   * Stops the monitor, the clients and the server (shutdown checkpoint). Idempotent.
   *
   * @returns once everything is closed
   */
  async close(): Promise<void> {
    this.#tenant?.close();
    for (const { api, server } of this.#hosts) {
      api.close();
      await server.shutdown();
    }
  }
}
