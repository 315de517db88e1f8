/**
 * The composition root: {@link createServer} builds everything a decision server is made of
 * — state directory, ASP, host measurement, policy store, SQLite store, vASP instances,
 * tokens, the decision service, the monitor and the HTTP app — without listening;
 * {@link startServer} also listens. `vasp serve`, the tests, the benches and the demo all use
 * it, so there is one composition. Everything is closed in reverse order.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { join, resolve } from "node:path";
import { Asp } from "../../ffi/mod.ts";
import { errorMessage, type HostState, type Logger, VaspError } from "../engine/mod.ts";
import {
  createMonitor,
  DecisionService,
  type GuestPort,
  Metrics,
  type PolicyProvider,
  policyProvider,
  uuidV7Source,
  watchVmWrites,
} from "../decision/mod.ts";
import { type HostMeasureOptions, HostMonitor } from "../host/mod.ts";
import type { VirshOptions } from "../hypervisor/mod.ts";
import { type App, bootstrapOperatorToken, createApp, TokenRegistry } from "../http/mod.ts";
import { openPolicyStore, type PolicySetSource, type PolicyStore } from "../policy/mod.ts";
import {
  loadReferenceSet,
  type MeasurementMonitor,
  parseReferenceSet,
  saveReferenceSet,
} from "../measure/mod.ts";
import { SqliteStore, type Store } from "../store/mod.ts";
import {
  type HostReport,
  type KernelReferences,
  Migrations,
  PeerStore,
  VaspService,
} from "../vasp/mod.ts";
import { aspCheckpointAnchor, aspCheckpointSigner, writeAkChain } from "./checkpoint_key.ts";
import { EarIssuer } from "../attest/mod.ts";
import { followLibvirt } from "./libvirt.ts";
import { listen, type ListenAt, type Listeners, type TcpAddress } from "./listen.ts";
import { createLogger } from "./log.ts";
import { versionInfo } from "./version.ts";

/** What a server is made of. */
export interface ServerOptions {
  /** The state directory (created mode 0700; removed again if this start made it and failed). */
  readonly stateDir: string;
  /** The policy set: a directory, or a git repository at a ref. */
  readonly policies: PolicySetSource;
  /** Where the host's parts are (QEMU, kernel …), for the ASP's host measurement. */
  readonly host?: Omit<HostMeasureOptions, "policyRevision"> & {
    /** How often the host is measured again, in ms (default 60 000). */
    readonly intervalMs?: number;
  };
  /** Record the host as measured now as the expected host (an operator's explicit act). */
  readonly learnHost?: boolean;
  /** Largest request body. */
  readonly bodyLimit?: number;
  /** Where the server logs (default: text lines on stderr). */
  readonly log?: Logger;
  /**
   * The measurement monitor: `pollMs` (how often the whole list of VMs is read to catch up,
   * default 10 s; VM writes through the store reach it at once), `budgetMs` (host CPU ms of
   * measurement per second, default 500), `maxConcurrent`, `jitterMs`, `guests` (default:
   * QEMU's, through the RAM file and QMP); `null`: no monitor.
   */
  readonly monitor?: {
    readonly pollMs?: number;
    readonly budgetMs?: number;
    readonly maxConcurrent?: number;
    readonly jitterMs?: number;
    readonly guests?: GuestPort;
  } | null;
  /**
   * libvirt, whose domain events (define, undefine) the server follows (default: `virsh` on
   * PATH, `qemu:///system`; a host without libvirt only retries now and then); `null`: none.
   */
  readonly libvirt?: VirshOptions | null;
  /**
   * Milliseconds between timed audit checkpoints (default 60,000), taken only when records
   * were added since the last one; besides those every 1000 records and at shutdown.
   */
  readonly checkpointIntervalMs?: number;
}

/** Where a started server listens. */
export interface ListenOptions {
  /** The operator socket (mode 0600; `null`: none); default `<stateDir>/vasp.sock`. */
  readonly socket?: string | null;
  /**
   * The hook socket (mode 0660, role `hook`; `null`: none); default `<stateDir>/hook.sock`.
   * QEMU's user must reach it: in a deployment put it in a directory of the `vasp` group
   * (deploy/libvirt/README.md), not in the state directory (mode 0700).
   */
  readonly hookSocket?: string | null;
  /** TCP address (`null`: none); checked for loopback by the caller. */
  readonly tcp: TcpAddress | null;
  /** Limits that replace the defaults, per listener (`defaultLimits`). */
  readonly limits?: ListenAt["limits"];
}

/** A server, built and not listening. */
export interface Server extends AsyncDisposable {
  /** The state directory, absolute. */
  readonly stateDir: string;
  /** The open ASP. */
  readonly asp: Asp;
  /** The host, measured at start and again on a timer, on change and on reload. */
  readonly host: HostMonitor;
  /** The operator token file written on this (first) start, if any. */
  readonly tokenFile: string | undefined;
  /** The AK chain file (`ak-chain.pem`) audit checkpoints are verified against. */
  readonly akChain: string;
  /** The policy store (the set in force, reloads). */
  readonly policyStore: PolicyStore;
  /** The policy set as the API and the decision service see it. */
  readonly policies: PolicyProvider;
  /** The store (VM records, bindings, measurements, audit). */
  readonly store: Store;
  /** The live vASP instances and their bindings. */
  readonly vasp: VaspService;
  /** Counts and timings. */
  readonly metrics: Metrics;
  /** Bearer tokens. */
  readonly tokens: TokenRegistry;
  /** The decision service. */
  readonly decisions: DecisionService;
  /** The measurement monitor, running (`null` when the options said none). */
  readonly monitor: MeasurementMonitor | null;
  /** The HTTP app: `app.fetch(request, { transport })`. */
  readonly app: App;
  /** Where the server logs. */
  readonly log: Logger;
  /**
   * Closes the monitor, the store (shutdown checkpoint), the policy store and the ASP, in
   * reverse order of opening. Idempotent.
   *
   * @returns once everything is closed
   */
  close(): Promise<void>;
}

/** A server that listens. */
export interface RunningServer extends Server {
  /** The listeners. */
  readonly listeners: Listeners;
  /**
   * Stops accepting, drains, then {@link Server.close}. Idempotent.
   *
   * @returns once everything is closed
   */
  shutdown(): Promise<void>;
}

/** Closes what was opened, newest first; each failure is logged and the rest still run. */
class Closer {
  readonly #steps: (() => void | Promise<void>)[] = [];
  #closing?: Promise<void>;

  constructor(readonly log: Logger) {}

  push(step: () => void | Promise<void>): void {
    this.#steps.push(step);
  }

  close(): Promise<void> {
    return this.#closing ??= (async () => {
      for (const step of this.#steps.reverse()) {
        try {
          await step();
        } catch (error) {
          this.log.log("error", "while closing", {
            error: error instanceof Error ? error.message : String(error),
          });
        }
      }
    })();
  }
}

/** What host records name as their VM: the host itself. */
const HOST_VM = { uuid: "", name: "host", state: "" };

/**
 * Checkpoints the audit log now (anchoring what a previous run left after its last
 * checkpoint, and settling a checkpoint whose anchor advance a crash cut short) and then every
 * `intervalMs`, so records after the newest checkpoint are protected by the chain alone for at
 * most that long (or 1000 records). A failure is logged; the records stay durable.
 *
 * @returns what stops the timer
 */
function checkpointTimer(store: Store, intervalMs: number, log: Logger): () => void {
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) {
    throw new RangeError(`checkpointIntervalMs must be a positive number, got ${intervalMs}`);
  }
  const take = () =>
    store.checkpoint().catch((error) => {
      log.log("error", "audit checkpoint failed", { error: errorMessage(error) });
    });
  void take();
  const timer = setInterval(take, intervalMs);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}

/** What this host says of itself to a peer: what it expects of its host files, its policies. */
function hostReport(state: HostState | null, policyRevision: string): HostReport {
  const expected = Object.fromEntries(
    Object.entries(state?.files ?? {}).map(([name, f]) => [name, f.expected]),
  );
  return { expected, policyRevision };
}

/**
 * The kernel reference sets of `dir` as they travel with a migrating VM: the set of the profile
 * the monitor measures the VM with; an arriving set kept only for a profile this host has none
 * of, and only when it checks out (one that does not is logged and left: the VM's regions are
 * then `missing` here, which the policies see).
 */
function kernelReferences(
  dir: string,
  monitor: () => MeasurementMonitor | undefined,
  log: Logger,
): KernelReferences {
  return {
    async of(uuid) {
      const id = monitor()?.profileOf(uuid);
      const set = id === undefined ? undefined : await loadReferenceSet(dir, id);
      return set ? [set] : [];
    },
    async adopt(sets) {
      const kept: string[] = [];
      for (const [i, json] of sets.entries()) {
        try {
          const set = parseReferenceSet(json, `reference set ${i + 1} of an arriving VM`);
          if (await loadReferenceSet(dir, set.profileId)) continue;
          await saveReferenceSet(dir, set);
          kept.push(set.profileId);
        } catch (error) {
          log.log("warn", "a reference set that arrived with a VM is not kept", {
            error: errorMessage(error),
          });
        }
      }
      return kept;
    },
  };
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * Builds everything, without listening; on a failure part-way, closes what was opened and
 * removes the state directory if this call created it.
 *
 * @param options state directory, policies, host, logger, monitor
 * @returns the server; `await using` closes it
 * @throws {VaspError} from the ASP, the policy store (first load), the store
 */
export async function createServer(options: ServerOptions): Promise<Server> {
  const log = options.log ?? createLogger();
  const stateDir = resolve(options.stateDir);
  const fresh = !exists(stateDir);
  const closer = new Closer(log);
  try {
    Deno.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const asp = Asp.open(stateDir);
    closer.push(() => asp.close());
    const build = versionInfo();
    const metrics = new Metrics({ build: { ...build, abi: String(build.abi) } });
    // Set once built; the policy store's reloads and the host monitor's changes reach them.
    const late: {
      host?: HostMonitor;
      decisions?: DecisionService;
      monitor?: MeasurementMonitor;
    } = {};
    const ids = uuidV7Source();
    const policyStore = await openPolicyStore(options.policies, {
      watch: true,
      onReload: (r) => {
        metrics.reload(r.ok);
        if (r.ok) {
          log.log("info", "policies reloaded", { policy_revision: r.revision });
          late.host?.remeasure("policy reload").catch(() => {});
        } else {
          log.log("error", "policy reload refused; the old set stays in force", {
            error: r.error.message,
          });
        }
      },
    });
    closer.push(() => policyStore.close());
    metrics.policyLoaded();
    const host = late.host = await HostMonitor.start(asp, {
      ...options.host,
      stateDir,
      policyRevision: () => policyStore.current().revision,
      learn: options.learnHost,
      log,
      onChange: async (changes, cause) => {
        await late.decisions?.recordOperatorAction(ids.next(), "host-change", HOST_VM, {
          source: "host-monitor",
          message: `host measured again (${cause}): ` +
            changes.map((c) => `${c.name} ${c.from || "none"} → ${c.to || "none"}`).join("; "),
        });
      },
    });
    closer.push(() => host.close());
    const checkpoints = await aspCheckpointSigner(asp);
    const akChain = writeAkChain(asp);
    // VM writes reach the monitor at once, so it need not list the VMs often.
    const store = watchVmWrites(
      SqliteStore.openIn(stateDir, {
        signer: checkpoints.signer,
        anchor: aspCheckpointAnchor(asp),
        onCheckpointError: (error) =>
          log.log("error", "audit checkpoint failed", { error: errorMessage(error) }),
        // Flush after the event loop has taken in the requests that arrived meanwhile
        // (setImmediate runs after I/O): bigger batches, less CPU per record than a microtask
        // flush, and none of a timer's delay. Measured in bench/http_bench.ts.
        groupCommit: { schedule: (flush) => setImmediate(flush) },
      }),
      (uuid) => void late.monitor?.changed(uuid),
    );
    closer.push(() => store.close());
    closer.push(checkpointTimer(store, options.checkpointIntervalMs ?? 60_000, log));
    const referencesDir = join(stateDir, "references");
    const migrations = new Migrations({
      asp,
      peers: new PeerStore(stateDir),
      host: () => hostReport(host.state(), policyStore.current().revision),
      references: kernelReferences(referencesDir, () => late.monitor, log),
    });
    const vasp = new VaspService(asp, store, { log, migrations });
    closer.push(() => vasp.close());
    await vasp.bringBackAll();
    const tokens = new TokenRegistry(stateDir);
    const tokenFile = bootstrapOperatorToken(tokens, stateDir);
    const policies = policyProvider(policyStore);
    const decisions = late.decisions = new DecisionService({
      store,
      policies,
      metrics,
      host: () => host.state(),
      vasp,
      log,
    });
    let monitor: MeasurementMonitor | null = null;
    if (options.monitor !== null) {
      const running = createMonitor({
        store,
        decisions,
        ids,
        vasp,
        metrics,
        referencesDir,
        log,
        guests: options.monitor?.guests,
      }, {
        pollMs: options.monitor?.pollMs,
        budgetMs: options.monitor?.budgetMs,
        maxConcurrent: options.monitor?.maxConcurrent,
        jitterMs: options.monitor?.jitterMs,
      });
      closer.push(() => running.stop());
      running.start();
      monitor = late.monitor = running;
    }
    if (options.libvirt !== null) {
      const follower = followLibvirt({ store, decisions, ids, log }, options.libvirt ?? {});
      closer.push(() => follower.stop());
    }
    // The EAR key lives in memory only; the AK endorses a new one at every start.
    const ear = await EarIssuer.create({
      sign: (data) => asp.sign(data),
      root: asp.certificate("ca"),
      build: `vasp ${build.version}`,
    });
    const app = createApp({
      store,
      policies,
      decisions,
      tokens,
      metrics,
      ids,
      asp: {
        get id() {
          return asp.id;
        },
        get closed() {
          return asp.closed;
        },
      },
      auditVerifier: checkpoints.verifier,
      bodyLimit: options.bodyLimit,
      log,
      vasp,
      ear,
      migrations,
    });
    const close = () => closer.close();
    return {
      stateDir,
      asp,
      host,
      tokenFile,
      akChain,
      policyStore,
      policies,
      store,
      vasp,
      metrics,
      tokens,
      decisions,
      monitor,
      app,
      log,
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    await closer.close();
    if (fresh) await Deno.remove(stateDir, { recursive: true }).catch(() => {});
    throw error;
  }
}

/**
 * Builds everything ({@link createServer}) and listens.
 *
 * @param options what the server is made of, and where it listens
 * @returns the running server
 * @throws {VaspError} `usage_invalid` with no listener; what {@link createServer} and the
 *   listeners throw (`socket_in_use`, `address_in_use`)
 */
export async function startServer(
  options: ServerOptions & ListenOptions,
): Promise<RunningServer> {
  const socket = options.socket === undefined
    ? join(resolve(options.stateDir), "vasp.sock")
    : options.socket;
  const hookSocket = options.hookSocket === undefined
    ? join(resolve(options.stateDir), "hook.sock")
    : options.hookSocket;
  if (socket === null && hookSocket === null && options.tcp === null) {
    throw new VaspError(
      "usage_invalid",
      "Cannot serve with no listener: keep a Unix socket or the TCP listener",
    );
  }
  const fresh = !exists(resolve(options.stateDir));
  const server = await createServer(options);
  let listeners: Listeners;
  try {
    listeners = await listen(server.app, {
      socket,
      hookSocket,
      tcp: options.tcp,
      limits: options.limits,
      log: server.log,
    });
  } catch (error) {
    await server.close();
    if (fresh) await Deno.remove(server.stateDir, { recursive: true }).catch(() => {});
    throw error;
  }
  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    stopping ??= (async () => {
      await listeners.shutdown();
      await server.close();
    })();
  return { ...server, listeners, shutdown, close: shutdown, [Symbol.asyncDispose]: shutdown };
}
