/**
 * The host, measured actively and continuously (the paper's active dynamic measurement): the
 * ASP measures every part at start, then again on a timer and whenever a part's file changes
 * or the policy set in force is reloaded. A part whose digest changed is extended into its
 * register again (a new event-log entry), so the registers and the log say what the host was
 * at each moment; an unchanged one only refreshes the measurement time, which keeps the
 * `fresh` rule of the host-integrity policies satisfied for as long as measurements come.
 *
 * @module
 */
import { join } from "node:path";
import type { Asp } from "../../ffi/mod.ts";
import { type HostState, type Logger, sha256Digest } from "../engine/mod.ts";
import { bootId, HOST_EXPECTED_FILE, hostFileName, hostState } from "./expected.ts";
import {
  digestHost,
  extendHost,
  type HostDigest,
  type HostMeasurement,
  type HostMeasureOptions,
} from "./measure.ts";

/** A part whose digest changed. */
export interface HostChange {
  /** The host file name the policies see (`qemu`, `host-kernel` …). */
  readonly name: string;
  /** The digest before, `sha256:<hex>` ("" when it was not measured). */
  readonly from: string;
  /** The digest now ("" when it can no longer be measured). */
  readonly to: string;
}

/** Options of {@link HostMonitor.start}. */
export interface HostMonitorOptions extends Omit<HostMeasureOptions, "policyRevision"> {
  /** The state directory (the expected digests are in `host-expected.json`). */
  readonly stateDir: string;
  /** The revision of the policy set in force, read at each measurement. */
  readonly policyRevision: () => string;
  /** How often the host is measured again, in ms (default 60 000). */
  readonly intervalMs?: number;
  /** Record the host as measured at start as the expected host. */
  readonly learn?: boolean;
  /** Called with the parts that changed, after they were extended. */
  readonly onChange?: (changes: readonly HostChange[], cause: string) => void | Promise<void>;
  /** Where changes and failures are logged. */
  readonly log: Logger;
  /** The clock (default: the system's). */
  readonly now?: () => Date;
}

const digestOf = (m: { sha256?: string }) => m.sha256 === undefined ? "" : sha256Digest(m.sha256);

/** The host's parts, measured at start and again on a timer, on change and on reload. */
export class HostMonitor {
  readonly #asp: Asp;
  readonly #options: HostMonitorOptions;
  readonly #now: () => Date;
  readonly #bootId = bootId();
  #measured: HostMeasurement[];
  /** What was read, to watch. */
  readonly #sources: readonly string[];
  #at: Date;
  #expected: Record<string, string> = {};
  #queue: Promise<unknown> = Promise.resolve();
  #timer?: ReturnType<typeof setInterval>;
  #watcher?: Deno.FsWatcher;
  #closed = false;

  private constructor(
    asp: Asp,
    options: HostMonitorOptions,
    measured: HostMeasurement[],
    sources: readonly string[],
  ) {
    this.#asp = asp;
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
    this.#measured = measured;
    this.#at = this.#now();
    this.#sources = sources;
  }

  /**
   * Measures the host into the ASP's host registers and starts measuring it again.
   *
   * @param asp the open ASP
   * @param options where the parts are, the state directory, the interval
   * @returns the running monitor
   * @throws {NativeError} when a required part cannot be read
   */
  static async start(asp: Asp, options: HostMonitorOptions): Promise<HostMonitor> {
    const digests = await digestHost(HostMonitor.#where(options));
    const measured = extendHost(asp, digests);
    const watched = digests.filter((d) => d.sha256 !== undefined).flatMap((d) => d.sources);
    const monitor = new HostMonitor(asp, options, measured, watched);
    if (options.learn) monitor.learn();
    else monitor.#expected = readExpected(join(options.stateDir, HOST_EXPECTED_FILE));
    monitor.#timer = setInterval(
      () => monitor.remeasure("timer").catch(() => {}),
      options.intervalMs ?? 60_000,
    );
    monitor.#watch();
    return monitor;
  }

  static #where(options: HostMonitorOptions): HostMeasureOptions {
    return { ...options, policyRevision: options.policyRevision() };
  }

  /** What was measured last, in register order. */
  get measured(): readonly HostMeasurement[] {
    return this.#measured;
  }

  /** The host as the policies see it now. */
  state(): HostState {
    return hostState(this.#measured, this.#expected, { at: this.#at, bootId: this.#bootId });
  }

  /**
   * Measures every part again; extends those whose digest changed, logs them and tells
   * `onChange`. Runs one at a time.
   *
   * @param cause why (`timer`, `file changed`, `policy reload` …), for the log and `onChange`
   * @returns the parts that changed
   * @throws {NativeError} when a required part can no longer be read (logged too; the last
   *   measurement stays, and ages)
   */
  remeasure(cause: string): Promise<HostChange[]> {
    const run = this.#queue.then(() => this.#remeasure(cause));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #remeasure(cause: string): Promise<HostChange[]> {
    if (this.#closed) return [];
    let now: HostDigest[];
    try {
      now = await digestHost(HostMonitor.#where(this.#options));
    } catch (error) {
      this.#options.log.log("error", "cannot measure the host", {
        cause,
        error: error instanceof Error ? error.message : String(error),
      });
      throw error;
    }
    const changed = now.filter((d, i) => digestOf(d) !== digestOf(this.#measured[i]!));
    const extended = new Map(extendHost(this.#asp, changed).map((m) => [m.part, m]));
    const before = this.#measured;
    this.#measured = before.map((m) => extended.get(m.part) ?? m);
    this.#at = this.#now();
    const changes = before.filter((m) => extended.has(m.part)).map((m) => ({
      name: hostFileName(m.part),
      from: digestOf(m),
      to: digestOf(extended.get(m.part)!),
    }));
    for (const c of changes) {
      this.#options.log.log("warn", `host part ${c.name} changed`, { cause, ...c });
    }
    if (changes.length > 0) await this.#options.onChange?.(changes, cause);
    return changes;
  }

  /**
   * Records the host as measured now as the expected host (an operator's explicit act):
   * written atomically to `host-expected.json`.
   *
   * @returns the expected digests by host file name
   * @throws {Deno.errors.PermissionDenied} when the state directory cannot be written
   */
  learn(): Record<string, string> {
    const digests = Object.fromEntries(
      this.#measured.filter((m) => m.sha256).map((m) => [hostFileName(m.part), digestOf(m)]),
    );
    const path = join(this.#options.stateDir, HOST_EXPECTED_FILE);
    // Atomic: a crash while learning leaves the old expectations, never half a file.
    Deno.writeTextFileSync(`${path}.tmp`, JSON.stringify(digests, null, 2) + "\n", { mode: 0o600 });
    Deno.renameSync(`${path}.tmp`, path);
    this.#expected = digests;
    return digests;
  }

  #watch(): void {
    try {
      this.#watcher = Deno.watchFs([...this.#sources], { recursive: true });
    } catch (error) {
      // The timer still measures; a watch only makes a change seen sooner.
      this.#options.log.log("warn", "cannot watch the host's files; measuring on a timer only", {
        error: error instanceof Error ? error.message : String(error),
      });
      return;
    }
    (async () => {
      for await (const event of this.#watcher!) {
        if (event.kind === "access") continue;
        this.remeasure("file changed").catch(() => {});
      }
    })();
  }

  /** Stops measuring; waits for a measurement under way. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    try {
      this.#watcher?.close();
    } catch {
      // already closed
    }
    await this.#queue;
  }
}

/** The expected digests; none when the operator never recorded them. */
function readExpected(path: string): Record<string, string> {
  try {
    return JSON.parse(Deno.readTextFileSync(path));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return {};
    throw error;
  }
}
