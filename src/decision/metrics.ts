/**
 * The server's metrics in the Prometheus text exposition format (version 0.0.4): decisions
 * by operation and outcome, their latency, audit write latency, events, errors, the policy
 * revision in force and the last reload's result, VMs by state, build information, and the
 * process's own (resident memory, open descriptors, CPU seconds, start time). Written by hand:
 * the decision path only adds to a number in a map, and a client library would bring a
 * dependency and its registry for the same few lines of text (docs/api.md, "Metrics").
 *
 * @module
 */
import { cpuUsage } from "node:process";
import { LIFECYCLE_STATES } from "../engine/mod.ts";

/** Latency bucket bounds in seconds: 50 µs to 5 s, dense where decisions fall. */
const LATENCY_BUCKETS = [
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
] as const;

/** A label value escaped as the exposition format wants it. */
function escape(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function labelText(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return "";
  return `{${names.map((n, i) => `${n}="${escape(values[i])}"`).join(",")}}`;
}

function number(value: number): string {
  if (value === Infinity) return "+Inf";
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(12)));
}

/** A monotonically increasing count per label set. */
class Counter {
  readonly #values = new Map<string, { labels: string[]; value: number }>();
  constructor(readonly name: string, readonly help: string, readonly labels: readonly string[]) {}

  inc(values: readonly string[], by = 1): void {
    const key = values.join("\u0000");
    const entry = this.#values.get(key);
    if (entry) entry.value += by;
    else this.#values.set(key, { labels: [...values], value: by });
  }

  render(lines: string[]): void {
    lines.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    for (const { labels, value } of this.#values.values()) {
      lines.push(`${this.name}${labelText(this.labels, labels)} ${number(value)}`);
    }
  }
}

/** A cumulative histogram without labels. */
class Histogram {
  readonly #counts = new Array<number>(LATENCY_BUCKETS.length).fill(0);
  #sum = 0;
  #count = 0;
  constructor(readonly name: string, readonly help: string) {}

  observe(seconds: number): void {
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
      if (seconds <= LATENCY_BUCKETS[i]) {
        this.#counts[i]++;
        break;
      }
    }
    this.#sum += seconds;
    this.#count++;
  }

  render(lines: string[]): void {
    lines.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    let cumulative = 0;
    LATENCY_BUCKETS.forEach((le, i) => {
      cumulative += this.#counts[i];
      lines.push(`${this.name}_bucket{le="${number(le)}"} ${cumulative}`);
    });
    lines.push(
      `${this.name}_bucket{le="+Inf"} ${this.#count}`,
      `${this.name}_sum ${number(this.#sum)}`,
      `${this.name}_count ${this.#count}`,
    );
  }
}

/** What the process reads about itself at a scrape; injectable for tests. */
export interface ProcessFacts {
  /** Resident set size in bytes. */
  readonly residentBytes: number;
  /** Open file descriptors (`null` where `/proc/self/fd` cannot be read). */
  readonly openFds: number | null;
  /** User and system CPU time in seconds. */
  readonly cpuSeconds: number;
  /** Process start, seconds since the Unix epoch. */
  readonly startSeconds: number;
}

/**
 * The process's facts as Linux and Deno give them.
 *
 * @returns resident memory, open descriptors, CPU seconds, start time
 */
export function processFacts(): ProcessFacts {
  let openFds: number | null = 0;
  try {
    for (const _ of Deno.readDirSync("/proc/self/fd")) openFds++;
  } catch {
    openFds = null;
  }
  const cpu = cpuUsage();
  return {
    residentBytes: Deno.memoryUsage().rss,
    openFds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    startSeconds: performance.timeOrigin / 1000,
  };
}

/** What `vasp_build_info` labels. */
export interface BuildInfo {
  /** The package version (deno.json). */
  readonly version: string;
  /** The Deno version. */
  readonly deno: string;
  /** The native library ABI version (`""` when unknown). */
  readonly abi: string;
}

/** What {@link Metrics.render} reads at a scrape besides its own counts. */
export interface ScrapeState {
  /** The revision in force (`null`: none loaded). */
  readonly policyRevision: string | null;
  /** VMs by life-cycle state; absent: not reported. */
  readonly vmsByState?: Readonly<Record<string, number>>;
  /** The process's facts (default: {@link processFacts}). */
  readonly process?: ProcessFacts;
}

function gauge(lines: string[], name: string, help: string, samples: [string, number][]): void {
  lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
  for (const [labels, value] of samples) lines.push(`${name}${labels} ${number(value)}`);
}

/** How a decision ended, as counted. */
export type DecisionOutcome = "allow" | "deny" | "error";

/**
 * The decision server's metrics. Methods are cheap (a map lookup and an add) so they sit on
 * the decision path.
 *
 * @example
 * ```ts
 * import { Metrics } from "./metrics.ts";
 * const metrics = new Metrics();
 * metrics.decision("start", "allow", 0.0004);
 * if (!metrics.render({ policyRevision: "abc" }).includes('outcome="allow"')) {
 *   throw new Error("decision not counted");
 * }
 * ```
 */
export class Metrics {
  readonly #build: BuildInfo;
  #lastReload: { ok: boolean; at: number } | null = null;

  /**
   * @param options `build`: what `vasp_build_info` labels (default: unknown version and ABI,
   *   this Deno); the server gives its own
   */
  constructor(options: { build?: Partial<BuildInfo> } = {}) {
    this.#build = { version: "", deno: Deno.version.deno, abi: "", ...options.build };
  }

  readonly #decisions = new Counter(
    "vasp_decisions_total",
    "Decisions answered, by operation and outcome (allow, deny, error).",
    ["operation", "outcome"],
  );
  readonly #decisionSeconds = new Histogram(
    "vasp_decision_duration_seconds",
    "Time from request to answer of POST /v1/decide, durable audit record included.",
  );
  readonly #engineSeconds = new Histogram(
    "vasp_engine_duration_seconds",
    "Time the engine spent deciding (policies and state machine only).",
  );
  readonly #auditSeconds = new Histogram(
    "vasp_audit_write_duration_seconds",
    "Time from handing an audit record to the store to its being durable.",
  );
  readonly #events = new Counter(
    "vasp_events_total",
    "Life-cycle events reported, by operation and whether the recorded state moved.",
    ["operation", "applied"],
  );
  readonly #errors = new Counter(
    "vasp_http_errors_total",
    "Error answers, by error code.",
    ["code"],
  );
  readonly #reloads = new Counter(
    "vasp_policy_reloads_total",
    "Policy reloads, by result (ok, failed).",
    ["result"],
  );
  readonly #measurements = new Counter(
    "vasp_measurements_total",
    "Guest measurements by the monitor, by outcome (the worst region status).",
    ["outcome"],
  );
  readonly #monitor = new Counter(
    "vasp_monitor_actions_total",
    "What the monitor raised or enforced (alert, pause, kill, failure), by result (ok, failed).",
    ["action", "result"],
  );
  readonly #monitorDelayed = new Counter(
    "vasp_monitor_delayed_total",
    "Measurements the monitor put off because its host CPU budget was spent.",
    [],
  );

  /** Counts one measurement put off by the monitor's CPU budget. */
  monitorDelayed(): void {
    this.#monitorDelayed.inc([]);
  }

  /**
   * Counts one guest measurement of the monitor.
   *
   * @param outcome ok, differs, missing or error
   */
  measurement(outcome: string): void {
    this.#measurements.inc([outcome]);
  }

  /**
   * Counts one thing the monitor raised or enforced.
   *
   * @param action alert, pause, kill or failure
   * @param ok whether it was carried out
   */
  monitorAction(action: string, ok: boolean): void {
    this.#monitor.inc([action, ok ? "ok" : "failed"]);
  }

  /**
   * Counts one decision.
   *
   * @param operation the operation decided (`unknown` when the request had none)
   * @param outcome allow, deny or error
   * @param seconds request-to-answer time
   */
  decision(operation: string, outcome: DecisionOutcome, seconds: number): void {
    this.#decisions.inc([operation, outcome]);
    this.#decisionSeconds.observe(seconds);
  }

  /**
   * Records the engine's share of a decision.
   *
   * @param seconds time spent in the engine
   */
  engine(seconds: number): void {
    this.#engineSeconds.observe(seconds);
  }

  /**
   * Records one audit write.
   *
   * @param seconds time until the record was durable
   */
  auditWrite(seconds: number): void {
    this.#auditSeconds.observe(seconds);
  }

  /**
   * Counts one reported event.
   *
   * @param operation the operation observed
   * @param applied whether the recorded state moved
   */
  event(operation: string, applied: boolean): void {
    this.#events.inc([operation, String(applied)]);
  }

  /**
   * Counts one error answer.
   *
   * @param code the stable error code
   */
  error(code: string): void {
    this.#errors.inc([code]);
  }

  /**
   * Counts one policy reload.
   *
   * @param ok whether the new set is in force
   * @param at when (default: now)
   */
  reload(ok: boolean, at: Date = new Date()): void {
    this.#reloads.inc([ok ? "ok" : "failed"]);
    this.#lastReload = { ok, at: at.getTime() / 1000 };
  }

  /**
   * Records the first load of the policy set (at start) as the last successful one, without
   * counting it as a reload.
   *
   * @param at when it loaded (default: now)
   */
  policyLoaded(at: Date = new Date()): void {
    this.#lastReload = { ok: true, at: at.getTime() / 1000 };
  }

  /**
   * Renders every metric.
   *
   * @param state the revision in force, VMs by state, the process's facts
   * @returns Prometheus text, ending in a newline
   */
  render(state: ScrapeState): string {
    const lines: string[] = [];
    this.#decisions.render(lines);
    this.#decisionSeconds.render(lines);
    this.#engineSeconds.render(lines);
    this.#auditSeconds.render(lines);
    this.#events.render(lines);
    this.#errors.render(lines);
    this.#reloads.render(lines);
    this.#measurements.render(lines);
    this.#monitor.render(lines);
    this.#monitorDelayed.render(lines);
    lines.push(
      "# HELP vasp_policy_info The policy revision in force.",
      "# TYPE vasp_policy_info gauge",
    );
    if (state.policyRevision !== null) {
      lines.push(`vasp_policy_info${labelText(["revision"], [state.policyRevision])} 1`);
    }
    if (this.#lastReload) {
      gauge(lines, "vasp_policy_last_reload_success", "1 when the last policy reload succeeded.", [
        ["", this.#lastReload.ok ? 1 : 0],
      ]);
      gauge(
        lines,
        "vasp_policy_last_reload_timestamp_seconds",
        "When the last policy reload was tried, seconds since the epoch.",
        [["", this.#lastReload.at]],
      );
    }
    if (state.vmsByState) {
      const counts = {
        ...Object.fromEntries(LIFECYCLE_STATES.map((s) => [s, 0])),
        ...state.vmsByState,
      };
      gauge(
        lines,
        "vasp_vms",
        "VMs known to the server, by life-cycle state.",
        Object.entries(counts).map(([s, n]) => [labelText(["state"], [s]), n]),
      );
    }
    const build = this.#build;
    gauge(lines, "vasp_build_info", "The build: package version, Deno, native ABI.", [
      [labelText(["version", "deno", "abi"], [build.version, build.deno, build.abi]), 1],
    ]);
    const p = state.process ?? processFacts();
    gauge(lines, "process_resident_memory_bytes", "Resident memory size in bytes.", [
      ["", p.residentBytes],
    ]);
    if (p.openFds !== null) {
      gauge(lines, "process_open_fds", "Number of open file descriptors.", [["", p.openFds]]);
    }
    lines.push(
      "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
      "# TYPE process_cpu_seconds_total counter",
      `process_cpu_seconds_total ${number(p.cpuSeconds)}`,
    );
    gauge(
      lines,
      "process_start_time_seconds",
      "Start time of the process since the Unix epoch in seconds.",
      [["", p.startSeconds]],
    );
    return lines.join("\n") + "\n";
  }
}
