/**
 * The composition root of `vasp serve`: state directory, ASP, host measurement, policy store,
 * SQLite store, tokens, decider, app, listeners, and a clean shutdown in reverse order.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { join, resolve } from "node:path";
import { Asp } from "../../ffi/mod.ts";
import type { HostState } from "../engine/mod.ts";
import {
  bootstrapOperatorToken,
  createApp,
  Decider,
  Metrics,
  type PolicyProvider,
  TokenRegistry,
  uuidV7Source,
} from "../http/mod.ts";
import { openPolicyStore, type PolicySetSource, type PolicyStore } from "../policy/mod.ts";
import { SqliteStore, type Store } from "../store/mod.ts";
import { aspCheckpointSigner, writeAkChain } from "./_checkpoint_key.ts";
import { type HostMeasurement, type HostMeasureOptions, measureHost } from "./_host.ts";
import { listen, type Listeners, type TcpAddress } from "./_server_listen.ts";
import { VaspService } from "./_vasp_service.ts";
import { createMonitor } from "./_monitor.ts";

/** What `vasp serve` is asked to run. */
export interface ServerOptions {
  /** The state directory (created mode 0700). */
  readonly stateDir: string;
  /** The policy set: a directory, or a git repository at a ref. */
  readonly policies: PolicySetSource;
  /** Unix socket path (`null`: none); default `<stateDir>/vasp.sock`. */
  readonly socket?: string | null;
  /** TCP address (`null`: none); checked for loopback by the caller. */
  readonly tcp: TcpAddress | null;
  /** Where the host's parts are (QEMU, kernel …), for the ASP's host measurement. */
  readonly host?: HostMeasureOptions;
  /** Largest request body. */
  readonly bodyLimit?: number;
  /** Where the server logs (default stderr). */
  readonly log?: (line: string) => void;
  /** The measurement monitor: `pollMs` (default 250); `null`: no monitor. */
  readonly monitor?: { readonly pollMs?: number } | null;
}

/** A running server. */
export interface RunningServer {
  /** The open ASP. */
  readonly asp: Asp;
  /** The host as measured at start. */
  readonly measured: readonly HostMeasurement[];
  /** The host as policies see it: each measured file and the digest expected of it. */
  readonly host: HostState;
  /** The listeners. */
  readonly listeners: Listeners;
  /** The operator token file written on this (first) start, if any. */
  readonly tokenFile: string | undefined;
  /** The AK chain file (`ak-chain.pem`) audit checkpoints are verified against. */
  readonly akChain: string;
  /** The policy revision in force at start. */
  readonly policyRevision: string;
  /** The store (VM records, bindings, measurements, audit). */
  readonly store: Store;
  /** The live vASP instances and their bindings. */
  readonly vasp: VaspService;
  /**
   * Stops accepting, drains, closes the store (shutdown checkpoint), the policy store and
   * the ASP. Idempotent.
   *
   * @returns once everything is closed
   */
  shutdown(): Promise<void>;
}

/** Host file names the policies see, by measured part. */
const HOST_FILE_NAMES: Readonly<Record<HostMeasurement["part"], string>> = {
  engine: "vasp-engine",
  library: "libvasp",
  policies: "policy-bundle",
  qemu: "qemu",
  kernel: "host-kernel",
};

/** The expected host digests, set by the operator (`vasp serve --learn-host`). */
export const HOST_EXPECTED_FILE = "host-expected.json";

/**
 * The host state the policies see: each measured file with the digest the operator expects
 * (none: empty, which policies requiring expected files deny).
 *
 * @param measured what the ASP measured
 * @param expected expected digests by host file name
 * @param options `at`, the measurement time; `bootId`
 * @returns the host state
 */
export function hostState(
  measured: readonly HostMeasurement[],
  expected: Readonly<Record<string, string>>,
  options: { at: Date; bootId: string },
): HostState {
  const files: Record<string, { digest: string; expected: string }> = {};
  for (const m of measured) {
    if (m.sha256 === undefined) continue;
    const name = HOST_FILE_NAMES[m.part];
    files[name] = { digest: `sha256:${m.sha256}`, expected: expected[name] ?? "" };
  }
  return { asp: "soft", bootId: options.bootId, files, measuredAt: options.at };
}

/**
 * Reads the expected host digests; with `learn`, first writes the measured ones (trust on
 * first use, asked for by the operator).
 */
function hostExpectations(
  stateDir: string,
  measured: readonly HostMeasurement[],
  learn: boolean,
): Record<string, string> {
  const path = join(stateDir, HOST_EXPECTED_FILE);
  if (learn) {
    const digests = Object.fromEntries(
      measured.filter((m) => m.sha256).map((m) => [HOST_FILE_NAMES[m.part], `sha256:${m.sha256}`]),
    );
    // Atomic: a crash while learning leaves the old expectations, never half a file.
    Deno.writeTextFileSync(`${path}.tmp`, JSON.stringify(digests, null, 2) + "\n", { mode: 0o600 });
    Deno.renameSync(`${path}.tmp`, path);
  }
  try {
    return JSON.parse(Deno.readTextFileSync(path));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return {};
    throw error;
  }
}

/**
 * Adapts src/policy's store to the API's view of it: a refused reload lists every located
 * error.
 *
 * @param store the policy store
 * @returns the provider
 */
export function policyProvider(store: PolicyStore): PolicyProvider {
  return {
    current: () => store.current(),
    async reload() {
      const result = await store.reload();
      if (result.ok) {
        return {
          ok: true,
          revision: result.revision,
          previousRevision: result.previous,
          errors: [],
        };
      }
      const located = result.error.details.errors;
      const errors = Array.isArray(located) && located.length > 0
        ? located.map((e) => ({ file: e.file, line: e.line, column: e.column, message: e.message }))
        : [{ message: result.error.message }];
      return { ok: false, revision: result.revision, previousRevision: result.revision, errors };
    },
  };
}

function bootId(): string {
  try {
    return Deno.readTextFileSync("/proc/sys/kernel/random/boot_id").trim();
  } catch {
    return "";
  }
}

/**
 * Builds and starts everything; on a failure part-way, closes what was opened.
 *
 * @param options state directory, policies, listeners
 * @param flags `learnHost`: record the host as measured now as the expected host
 * @returns the running server
 * @throws {VaspError} from the ASP, the policy store (first load), the store, the listeners
 */
export async function startServer(
  options: ServerOptions,
  flags: { learnHost?: boolean } = {},
): Promise<RunningServer> {
  const log = options.log ?? ((line: string) => console.error(line));
  const stateDir = resolve(options.stateDir);
  const cleanups: (() => void | Promise<void>)[] = [];
  const unwind = async () => {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (error) {
        log(`vasp: while closing: ${(error as Error).message}`);
      }
    }
    cleanups.length = 0;
  };
  try {
    Deno.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const asp = Asp.open(stateDir);
    cleanups.push(() => asp.close());
    const measured = await measureHost(asp, {
      ...options.host,
      ...("dir" in options.policies ? { policyDir: options.policies.dir } : {}),
    });
    const host = hostState(measured, hostExpectations(stateDir, measured, !!flags.learnHost), {
      at: new Date(),
      bootId: bootId(),
    });
    const metrics = new Metrics();
    const policyStore = await openPolicyStore(options.policies, {
      watch: true,
      onReload: (r) => {
        metrics.reload(r.ok);
        log(r.ok ? `vasp: policies at ${r.revision}` : `vasp: ${r.error.message}`);
      },
    });
    cleanups.push(() => policyStore.close());
    const checkpoints = await aspCheckpointSigner(asp);
    const akChain = writeAkChain(asp);
    const store = SqliteStore.openIn(stateDir, {
      signer: checkpoints.signer,
      // Flush after the event loop has taken in the requests that arrived meanwhile
      // (setImmediate runs after I/O): bigger batches, less CPU per record than a microtask
      // flush, and none of a timer's delay. Measured in bench/http_bench.ts.
      groupCommit: { schedule: (flush) => setImmediate(flush) },
    });
    cleanups.push(() => store.close());
    const vasp = new VaspService(asp, store, { log });
    cleanups.push(() => vasp.close());
    await vasp.bringBackAll();
    const tokens = new TokenRegistry(stateDir);
    const tokenFile = bootstrapOperatorToken(tokens, stateDir);
    const policies = policyProvider(policyStore);
    const decider = new Decider({ store, policies, metrics, host: () => host, vasp });
    if (options.monitor !== null) {
      const monitor = createMonitor({
        store,
        decider,
        ids: uuidV7Source(),
        vasp,
        metrics,
        referencesDir: join(stateDir, "references"),
        log,
      }, options.monitor);
      cleanups.push(() => monitor.stop());
      monitor.start();
    }
    const app = createApp({
      store,
      policies,
      decider,
      tokens,
      metrics,
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
    });
    const listeners = await listen(app, {
      socket: options.socket === undefined ? join(stateDir, "vasp.sock") : options.socket,
      tcp: options.tcp,
    });
    cleanups.push(() => listeners.shutdown());
    let stopping: Promise<void> | undefined;
    return {
      asp,
      measured,
      host,
      listeners,
      tokenFile,
      akChain,
      store,
      vasp,
      policyRevision: policyStore.current().revision,
      shutdown: () => stopping ??= unwind(),
    };
  } catch (error) {
    await unwind();
    throw error;
  }
}
