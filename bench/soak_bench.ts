/**
 * A soak: the real server (`vasp serve`, in a child process of its own so that its memory and
 * file descriptors are its alone) under a mixed, bounded load for a fixed time, sampled every
 * 10–30 s; at the end a table over time and a verdict on growth.
 *
 *   deno run --allow-all bench/soak_bench.ts [--minutes N] [--sample SECONDS]
 *                                            [--server-v8-flags FLAGS] [--json]
 *
 * `--server-v8-flags` passes V8 flags to the server (e.g. `--max-old-space-size=128`: a
 * server whose RSS grows only because V8 lets its heap grow stays under such a cap; one that
 * leaks dies of it).
 *
 * The load (loopback TCP and the state directory's Unix sockets only; a few clients, each
 * pausing between requests, not a flood):
 * - three decision clients: `POST /v1/decide` for start, pause, resume and save of 16
 *   registered VMs, each request over the hook socket (`hook.sock`, no token) or over TCP with
 *   a hook token, chosen at random; about half the allowed pauses are followed by their
 *   `POST /v1/events` report (completed), and about half the decisions about a paused VM by
 *   the report of a resume libvirt saw, so that the VMs move between running and paused;
 * - one churn client on the operator socket: registers a new VM, decides twice about it,
 *   removes it (its vASP instance with it), about once a second;
 * - one operator client: a policy reload every 30 s, audit queries (by VM, by result, newest
 *   first) every 2 s, a `/metrics` scrape over TCP with a metrics token every 5 s.
 *
 * Each sample reads the server's `/proc/PID/status` (VmRSS, Threads), counts `/proc/PID/fd`,
 * asks the newest audit record's sequence number (the count of records), and takes the p50 and
 * p99 of the decisions answered since the previous sample. The verdict compares the median of
 * the last third of the samples with that of the first third, after a warm-up (the first
 * minute, or the first fifth of a shorter run):
 * - RSS: the last third at most 10% above the first. At the 100–200 decisions/s this load
 *   makes, a leak of a few hundred bytes a decision grows RSS by ~15–20 MB (10% of the
 *   server's ~170 MB) in the six minutes between the thirds of a ten-minute run, while V8's
 *   collector and SQLite's page cache move RSS by a few MB either way.
 * - File descriptors: the last third at most 3 above the first. The server holds its
 *   listeners, the database and WAL files, the ASP's lock and one socket per open client
 *   connection (at most a dozen here, kept alive); one leaked descriptor per request or per
 *   registration would add thousands.
 * - Latency: the window p50 of the last third at most 1.5 times the first third's, the p99 at
 *   most twice (the machine is shared, and a 99th percentile of a 20 s window follows its
 *   neighbours' load; the 1-minute load average is in the table).
 * - No request failed (every answer 2xx), and the audit chain verifies at the end.
 *
 * `bench/run.ts` runs this bench for one minute (`--minutes 1`), not ten.
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { TokenRegistry } from "../src/http/mod.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const OPERATIONS = ["start", "pause", "resume", "save"] as const;
const VM_COUNT = 16;

/** One sample of the server. */
export interface Sample {
  /** Seconds since the load started. */
  readonly t: number;
  readonly rssMb: number;
  /** The anonymous part of RSS (heaps), without mapped files such as the database's pages. */
  readonly anonMb: number;
  readonly fds: number;
  readonly threads: number;
  /** The newest audit record's sequence number. */
  readonly records: number;
  /** Decisions answered in the window since the previous sample. */
  readonly decisions: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Failed requests (non-2xx or no answer) in the window, of every kind. */
  readonly errors: number;
  /** The machine's 1-minute load average. */
  readonly load1: number;
}

/** One verdict line: what was compared, the figures, the limit, and whether it held. */
export interface Check {
  readonly name: string;
  readonly first: number;
  readonly last: number;
  readonly limit: string;
  readonly ok: boolean;
}

function uuid(n: number, kind: number): string {
  const hex = n.toString(16).padStart(12, "0");
  return `5aa${kind}0000-0000-4000-8000-${hex}`;
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Keeps the last lines of a child's output, reading it to the end. */
async function drain(stream: ReadableStream<Uint8Array>, tail: string[], ready?: () => void) {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of stream) {
    const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n");
    rest = lines.pop()!;
    for (const line of lines) {
      if (ready && line.startsWith("ready")) ready();
      tail.push(line);
      if (tail.length > 20) tail.shift();
    }
  }
}

function readProc(
  pid: number,
): { rssMb: number; anonMb: number; threads: number; fds: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status)![1]);
  let fds = 0;
  for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) fds++;
  return {
    rssMb: field("VmRSS") / 1024,
    anonMb: field("RssAnon") / 1024,
    threads: field("Threads"),
    fds,
  };
}

function loadAverage(): number {
  return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
}

/** A client of one listener: the socket's HTTP client or the TCP URL, and its bearer token. */
interface Endpoint {
  readonly name: string;
  readonly base: string;
  readonly client?: Deno.HttpClient;
  readonly token?: string;
}

class Load {
  /** Decision latencies (ms) in the current window. */
  latencies: number[] = [];
  errors = 0;
  /** Totals, to compare with the audit log at the end. */
  decided = 0;
  allowed = 0;
  reported = 0;
  readonly failures: string[] = [];

  async call(
    at: Endpoint,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: unknown; ms: number }> {
    const started = performance.now();
    let response: Response;
    try {
      response = await fetch(`${at.base}${path}`, {
        method,
        client: at.client,
        headers: {
          ...(at.token ? { authorization: `Bearer ${at.token}` } : {}),
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      this.fail(`${method} ${path} over ${at.name}: ${error}`);
      return { status: 0, json: null, ms: performance.now() - started };
    }
    const text = await response.text();
    const ms = performance.now() - started;
    if (response.status < 200 || response.status > 299) {
      this.fail(`${method} ${path} over ${at.name}: ${response.status} ${text.slice(0, 200)}`);
    }
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: response.status, json, ms };
  }

  fail(message: string): void {
    this.errors++;
    if (this.failures.length < 10) this.failures.push(message);
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      minutes: { type: "string", default: "10" },
      sample: { type: "string" },
      "server-v8-flags": { type: "string" },
      json: { type: "boolean" },
    },
  });
  const seconds = Number(values.minutes) * 60;
  if (!(seconds > 0)) throw new Error(`--minutes must be positive, not ${values.minutes}`);
  const sampleSeconds = values.sample
    ? Number(values.sample)
    : Math.min(30, Math.max(10, Math.round(seconds / 30)));
  const warmUp = Math.min(60, seconds / 5);

  const dir = await Deno.makeTempDir({ prefix: "vasp-soak-bench-" });
  const stateDir = join(dir, "state");
  const port = freePort();
  const kernel = join(dir, "vmlinuz-stand-in");
  await Deno.writeTextFile(kernel, "a stand-in host kernel image for the soak\n");
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      ...(values["server-v8-flags"] ? [`--v8-flags=${values["server-v8-flags"]}`] : []),
      join(ROOT, "src/cli/main.ts"),
      "serve",
      "--state-dir",
      stateDir,
      "--policies",
      join(ROOT, "policies"),
      "--listen",
      `127.0.0.1:${port}`,
      // This host as the expected one, with a stand-in kernel image (the machine may have
      // none in /boot): host-integrity policies pass, so pauses of running VMs are allowed.
      "--learn-host",
      "--host-kernel",
      kernel,
    ],
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const outTail: string[] = [];
  const errTail: string[] = [];
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const ready = new Promise<void>((resolve, reject) => {
    drain(child.stdout, outTail, resolve).catch(() => {});
    status.then((s) => reject(new Error(`vasp serve exited with ${s.code} before it was ready`)));
  });
  const stderrDone = drain(child.stderr, errTail);
  const sockets: Deno.HttpClient[] = [];
  const load = new Load();
  const stop = new AbortController();
  // Ctrl-C ends the soak early: the server stops, and the bench cleans up after it.
  const interrupt = () => {
    if (!exited) child.kill("SIGTERM");
  };
  Deno.addSignalListener("SIGINT", interrupt);
  try {
    await Promise.race([
      ready,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error("vasp serve not ready in 120 s")), 120_000)
      ),
    ]);
    const unix = (path: string) => {
      const client = Deno.createHttpClient({ proxy: { transport: "unix", path } });
      sockets.push(client);
      return client;
    };
    const tokens = new TokenRegistry(stateDir);
    const operator: Endpoint = {
      name: "operator socket",
      base: "http://vasp",
      client: unix(join(stateDir, "vasp.sock")),
    };
    const hook: Endpoint = {
      name: "hook socket",
      base: "http://vasp",
      client: unix(join(stateDir, "hook.sock")),
    };
    const tcp: Endpoint = {
      name: "tcp",
      base: `http://127.0.0.1:${port}`,
      token: tokens.create({ role: "hook" }).token,
    };
    const metrics: Endpoint = {
      name: "tcp",
      base: `http://127.0.0.1:${port}`,
      token: tokens.create({ role: "metrics" }).token,
    };

    const vms = Array.from(
      { length: VM_COUNT },
      (_, i) => ({ uuid: uuid(i, 1), name: `soak-${i}` }),
    );
    for (const vm of vms) {
      const { status } = await load.call(operator, "POST", "/v1/vms", {
        ...vm,
        state: "running",
        labels: { tier: "soak" },
      });
      if (status !== 201) throw new Error(`registering ${vm.name}: ${load.failures.at(-1)}`);
    }

    const pick = <T>(items: readonly T[]) => items[Math.floor(Math.random() * items.length)];
    const decide = async (at: Endpoint, vm: { uuid: string; name: string }, op: string) => {
      const source = at === hook && op === "start" ? "libvirt-hook" : "qmp-gate";
      const answer = await load.call(at, "POST", "/v1/decide", {
        operation: op,
        vm,
        source,
        details: { soak: true },
      });
      if (answer.status === 200) {
        load.latencies.push(answer.ms);
        load.decided++;
      }
      return answer;
    };

    const decisionClient = async () => {
      while (!stop.signal.aborted) {
        const vm = pick(vms);
        const op = pick(OPERATIONS);
        const at = Math.random() < 0.5 ? hook : tcp;
        const answer = await decide(at, vm, op);
        const { allow, state } = (answer.json ?? {}) as { allow?: boolean; state?: string };
        // Reports: an allowed pause that happened; and, for a paused VM, a resume libvirt saw
        // (a resume is not allowed here: the VMs have no measurement or vASP instance), so the
        // VMs keep moving between running and paused.
        let report: { operation: string; source: string } | null = null;
        if (allow && op === "pause" && Math.random() < 0.5) {
          report = { operation: "pause", source: "qmp-gate" };
        } else if (state === "paused" && Math.random() < 0.5) {
          report = { operation: "resume", source: "libvirt-events" };
        }
        if (report) {
          const r = await load.call(at, "POST", "/v1/events", {
            ...report,
            vm,
            outcome: "completed",
          });
          if (r.status === 200) load.reported++;
        }
        if (allow) load.allowed++;
        await sleep(10, stop.signal);
      }
    };

    let churned = 0;
    const churnClient = async () => {
      let n = 0;
      while (!stop.signal.aborted) {
        const vm = { uuid: uuid(n++, 2), name: `soak-churn-${n}` };
        const made = await load.call(operator, "POST", "/v1/vms", { ...vm, state: "running" });
        if (made.status === 201) {
          await decide(hook, vm, "pause");
          await decide(tcp, vm, "save");
          await load.call(operator, "DELETE", `/v1/vms/${vm.uuid}`);
          churned++;
        }
        await sleep(1000, stop.signal);
      }
    };

    let reloads = 0, queries = 0, scrapes = 0;
    const operatorClient = async () => {
      let tick = 0;
      while (!stop.signal.aborted) {
        if (tick % 15 === 14) {
          const r = await load.call(operator, "POST", "/v1/policies/reload");
          if (r.status === 200) reloads++;
        }
        const vm = pick(vms);
        await load.call(operator, "GET", `/v1/audit?vm=${vm.uuid}&limit=50`);
        await load.call(operator, "GET", `/v1/audit?result=deny&order=desc&limit=20`);
        queries += 2;
        if (tick % 5 === 0) {
          const r = await load.call(metrics, "GET", "/metrics");
          if (r.status === 200) scrapes++;
        }
        tick++;
        await sleep(2000, stop.signal);
      }
    };

    const recordCount = async () => {
      const r = await load.call(operator, "GET", "/v1/audit?order=desc&limit=1");
      return (r.json as { records?: { seq: number }[] } | null)?.records?.[0]?.seq ?? NaN;
    };

    const started = performance.now();
    const clients = [
      decisionClient(),
      decisionClient(),
      decisionClient(),
      churnClient(),
      operatorClient(),
    ];
    const samples: Sample[] = [];
    let errorsBefore = 0;
    if (!values.json) {
      console.log(
        `soak: vasp serve pid ${child.pid}, ${
          seconds / 60
        } min, a sample every ${sampleSeconds} s, ` +
          `warm-up ${warmUp} s; load average at start ${loadAverage()}`,
      );
      console.log(HEADER);
    }
    while (!exited) {
      const next = (samples.length + 1) * sampleSeconds;
      const wait = started + Math.min(next, seconds) * 1000 - performance.now();
      if (wait > 0) await sleep(wait, new AbortController().signal);
      if (exited) break;
      const window = load.latencies.sort((a, b) => a - b);
      load.latencies = [];
      const proc = readProc(child.pid);
      const records = await recordCount();
      const sample: Sample = {
        t: Math.round((performance.now() - started) / 1000),
        ...proc,
        records,
        decisions: window.length,
        p50Ms: percentile(window, 0.5),
        p99Ms: percentile(window, 0.99),
        errors: load.errors - errorsBefore,
        load1: loadAverage(),
      };
      errorsBefore = load.errors;
      samples.push(sample);
      if (!values.json) console.log(row(sample));
      if (next >= seconds) break;
    }
    stop.abort();
    await Promise.all(clients);
    if (exited) {
      throw new Error(`vasp serve died during the soak:\n${errTail.join("\n")}`);
    }

    const verify = await load.call(operator, "GET", "/v1/audit/verify");
    const verified = (verify.json as { ok?: boolean } | null)?.ok === true;
    const finalRecords = await recordCount();

    const steady = samples.filter((s) => s.t > warmUp);
    const third = Math.max(1, Math.ceil(steady.length / 3));
    const first = steady.slice(0, third), last = steady.slice(-third);
    const pair = (f: (s: Sample) => number) => [median(first.map(f)), median(last.map(f))];
    const [rss0, rss1] = pair((s) => s.rssMb);
    const [fd0, fd1] = pair((s) => s.fds);
    const [p500, p501] = pair((s) => s.p50Ms);
    const [p990, p991] = pair((s) => s.p99Ms);
    const checks: Check[] = [
      { name: "RSS MB", first: rss0, last: rss1, limit: "≤ first × 1.10", ok: rss1 <= rss0 * 1.1 },
      { name: "open fds", first: fd0, last: fd1, limit: "≤ first + 3", ok: fd1 <= fd0 + 3 },
      { name: "p50 ms", first: p500, last: p501, limit: "≤ first × 1.5", ok: p501 <= p500 * 1.5 },
      { name: "p99 ms", first: p990, last: p991, limit: "≤ first × 2", ok: p991 <= p990 * 2 },
    ];
    const slope = rssSlope(steady);
    // Every answered decision and event has its record (registrations and removals add more).
    const recorded = finalRecords >= load.decided + load.reported;
    const ok = checks.every((c) => c.ok) && load.errors === 0 && verified &&
      steady.length >= 2 && recorded;
    const result = {
      minutes: seconds / 60,
      sampleSeconds,
      warmUpSeconds: warmUp,
      samples,
      checks,
      rssSlopeMbPerMinute: slope,
      totals: {
        decisions: load.decided,
        allowed: load.allowed,
        events: load.reported,
        registrationsRemoved: churned,
        policyReloads: reloads,
        auditQueries: queries,
        metricsScrapes: scrapes,
        records: finalRecords,
        errors: load.errors,
      },
      everyAnswerRecorded: recorded,
      chainVerified: verified,
      failures: load.failures,
      loadAverageAtEnd: loadAverage(),
      ok,
    };
    if (values.json) {
      console.log(JSON.stringify(result, null, 2));
    } else {
      console.log(
        `totals: ${load.decided} decisions (${load.allowed} allowed), ${load.reported} events, ${churned} VMs registered ` +
          `and removed, ${reloads} policy reloads, ${queries} audit queries, ${scrapes} metrics ` +
          `scrapes; ${finalRecords} audit records (${
            recorded ? "at least" : "FEWER THAN"
          } one per answer); ${load.errors} failed requests; chain ` +
          (verified ? "verifies" : "DOES NOT VERIFY"),
      );
      for (const failure of load.failures) console.log(`  failed: ${failure}`);
      console.log(
        `verdict (median of the last ${last.length} samples vs the first ${first.length}, ` +
          `after a ${warmUp} s warm-up; load average now ${loadAverage()}):`,
      );
      for (const c of checks) {
        console.log(
          `  ${c.name.padEnd(9)} ${c.first.toFixed(2).padStart(8)} → ${
            c.last.toFixed(2).padStart(8)
          }  (${c.limit})  ${c.ok ? "ok" : "GROWTH"}`,
        );
      }
      console.log(
        `  RSS trend over the steady samples: ${slope.toFixed(2)} MB/min (least squares)`,
      );
      console.log(ok ? "soak: no growth" : "soak: FAILED");
    }
    return ok ? 0 : 1;
  } finally {
    stop.abort();
    if (!exited) child.kill("SIGTERM");
    const killer = setTimeout(() => {
      if (!exited) child.kill("SIGKILL");
    }, 30_000);
    await status;
    clearTimeout(killer);
    await stderrDone.catch(() => {});
    for (const client of sockets) client.close();
    Deno.removeSignalListener("SIGINT", interrupt);
    await Deno.remove(dir, { recursive: true });
  }
}

const HEADER = "    t   RSS MB  anon MB  fds thr  records decided  p50 ms  p99 ms errs load1";

function row(s: Sample): string {
  return [
    String(s.t).padStart(5),
    s.rssMb.toFixed(1).padStart(8),
    s.anonMb.toFixed(1).padStart(8),
    String(s.fds).padStart(4),
    String(s.threads).padStart(4),
    String(s.records).padStart(8),
    String(s.decisions).padStart(7),
    s.p50Ms.toFixed(2).padStart(7),
    s.p99Ms.toFixed(2).padStart(7),
    String(s.errors).padStart(4),
    s.load1.toFixed(2).padStart(6),
  ].join(" ");
}

/** The least-squares slope of RSS over time, MB per minute. */
function rssSlope(samples: readonly Sample[]): number {
  const n = samples.length;
  if (n < 2) return NaN;
  const mt = samples.reduce((a, s) => a + s.t, 0) / n;
  const mr = samples.reduce((a, s) => a + s.rssMb, 0) / n;
  let num = 0, den = 0;
  for (const s of samples) {
    num += (s.t - mt) * (s.rssMb - mr);
    den += (s.t - mt) ** 2;
  }
  return (num / den) * 60;
}

if (import.meta.main) Deno.exit(await main());
