/**
 * `POST /v1/decide` over loopback TCP, durable audit record included, against a bare
 * `Deno.serve` endpoint measured in the same run with the same 1 KB JSON body, at
 * concurrency 1 and 32. The load comes from `wrk` in its own process (Debian package `wrk`:
 * `sh tools/deps.sh bench`); each series runs for a fixed time and stops by itself.
 *
 *   deno run --allow-all bench/http_bench.ts [--duration SECONDS] [--json]
 *
 * Figures to reach: throughput at least 60% of the bare endpoint's; p99 under 5 ms at
 * concurrency 32. The server is the real one (`startServer`: ASP, default policy set, SQLite
 * store with group commit and a WAL fdatasync before each answer), deciding a `pause` of a registered,
 * measured VM from the QMP gate with a hook token.
 *
 * @module
 */
import { SILENT } from "../src/engine/mod.ts";
import { join } from "node:path";
import { cpuUsage } from "node:process";
import { parseArgs } from "node:util";
import { startServer } from "../src/server/mod.ts";
import { TokenRegistry } from "../src/http/mod.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const VM = { uuid: "6f1c2a9e-3b4d-4c5e-8f70-1a2b3c4d5e6f", name: "web-1" };

/** One series' figures. */
export interface Series {
  readonly server: "vasp" | "bare";
  readonly concurrency: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  /** Server CPU (all threads of this process: the event loop, SQLite, fsync) per request. */
  readonly cpuUsPerRequest: number;
}

/** A decide body of about 1 KB, as a QMP gate sends it for `stop`. */
function body(): string {
  const base = {
    operation: "pause",
    vm: VM,
    source: "qmp-gate",
    details: {
      command: "stop",
      arguments: {},
      client: "libvirt",
      qmp_id: "libvirt-1234",
      pad: "",
    },
  };
  const text = JSON.stringify(base);
  return text.replace('"pad":""', `"pad":"${"x".repeat(1024 - text.length)}"`);
}

function luaString(text: string): string {
  return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** wrk's time unit to milliseconds. */
function ms(value: string, unit: string): number {
  return Number(value) * ({ us: 0.001, ms: 1, s: 1000, m: 60_000 } as Record<string, number>)[unit];
}

async function wrk(
  url: string,
  options: { script: string; concurrency: number; seconds: number },
): Promise<Omit<Series, "server">> {
  const cpuBefore = cpuUsage();
  const threads = Math.min(options.concurrency, 2);
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("wrk", {
      args: [
        `-t${threads}`,
        `-c${options.concurrency}`,
        `-d${options.seconds}s`,
        "--latency",
        "-s",
        options.script,
        url,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error("wrk is not installed: sh tools/deps.sh bench (Debian package wrk)");
    }
    throw error;
  }
  const cpu = cpuUsage(cpuBefore);
  const text = new TextDecoder().decode(out.stdout);
  if (out.code !== 0) throw new Error(`wrk failed: ${new TextDecoder().decode(out.stderr)}`);
  const rate = /Requests\/sec:\s+([\d.]+)/.exec(text);
  const p = (q: number) => {
    const m = new RegExp(`^\\s+${q}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, "m").exec(text);
    if (!m) throw new Error(`no ${q}% latency in wrk's output:\n${text}`);
    return ms(m[1], m[2]);
  };
  if (!rate) throw new Error(`no request rate in wrk's output:\n${text}`);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(text);
  const requests = Number(/(\d+) requests in/.exec(text)?.[1] ?? NaN);
  const socketErrors = /Socket errors:.*?(\d+).*?(\d+).*?(\d+).*?(\d+)/.exec(text);
  return {
    concurrency: options.concurrency,
    requestsPerSecond: Number(rate[1]),
    p50Ms: p(50),
    p99Ms: p(99),
    errors: Number(non2xx?.[1] ?? 0) +
      (socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
    cpuUsPerRequest: (cpu.user + cpu.system) / requests,
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { duration: { type: "string", default: "5" }, json: { type: "boolean" } },
  });
  const seconds = Number(values.duration);
  const dir = await Deno.makeTempDir({ prefix: "vasp-http-bench-" });
  const payload = body();
  const server = await startServer({
    stateDir: dir,
    policies: { dir: join(ROOT, "policies") },
    socket: null,
    tcp: { hostname: "127.0.0.1", port: 0 },
    log: SILENT,
  });
  const bare = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    try {
      const event = await req.json();
      return Response.json({ decision_id: crypto.randomUUID(), allow: true, op: event.operation });
    } catch {
      return new Response(null, { status: 400 }); // wrk cut the connection at the end
    }
  });
  try {
    const { token } = new TokenRegistry(dir).create({ role: "hook" });
    const operator = (await Deno.readTextFile(server.tokenFile!)).trim();
    const api = `http://127.0.0.1:${server.listeners.tcp!.port}`;
    const registered = await fetch(`${api}/v1/vms`, {
      method: "POST",
      headers: { authorization: `Bearer ${operator}` },
      body: JSON.stringify({ ...VM, state: "running", labels: { tier: "prod" } }),
    });
    if (registered.status !== 201) throw new Error(`register: ${await registered.text()}`);
    const script = join(dir, "post.lua");
    await Deno.writeTextFile(
      script,
      [
        'wrk.method = "POST"',
        `wrk.body = ${luaString(payload)}`,
        'wrk.headers["Content-Type"] = "application/json"',
        `wrk.headers["Authorization"] = ${luaString(`Bearer ${token}`)}`,
      ].join("\n") + "\n",
    );
    const check = await fetch(`${api}/v1/decide`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: payload,
    });
    if (check.status !== 200) throw new Error(`decide: ${await check.text()}`);
    await check.body?.cancel();

    const rows: Series[] = [];
    for (const concurrency of [1, 32]) {
      // Bare first, then vASP, back to back: the machine's load drifts between runs.
      const bareUrl = `http://127.0.0.1:${bare.addr.port}/v1/decide`;
      await wrk(bareUrl, { script, concurrency, seconds: 1 }); // warm-up
      rows.push({ server: "bare", ...await wrk(bareUrl, { script, concurrency, seconds }) });
      await wrk(`${api}/v1/decide`, { script, concurrency, seconds: 1 });
      rows.push({
        server: "vasp",
        ...await wrk(`${api}/v1/decide`, { script, concurrency, seconds }),
      });
    }
    const ratio = (c: number) =>
      rows.find((r) => r.server === "vasp" && r.concurrency === c)!.requestsPerSecond /
      rows.find((r) => r.server === "bare" && r.concurrency === c)!.requestsPerSecond;
    const p99At32 = rows.find((r) => r.server === "vasp" && r.concurrency === 32)!.p99Ms;
    const errors = rows.reduce((n, r) => n + r.errors, 0);
    const result = {
      bodyBytes: payload.length,
      seconds,
      rows,
      ratioC1: ratio(1),
      ratioC32: ratio(32),
      targets: { ratioC32: 0.6, p99MsC32: 5 },
      met: ratio(32) >= 0.6 && p99At32 < 5 && errors === 0,
    };
    if (values.json) {
      console.log(JSON.stringify(result, null, 2));
    } else {
      console.log(`POST /v1/decide, ${payload.length}-byte body, ${seconds} s per series`);
      console.log("server  c    req/s     p50 ms   p99 ms  cpu µs/req  errors");
      for (const r of rows) {
        console.log(
          `${r.server.padEnd(6)}  ${String(r.concurrency).padStart(2)}  ${
            r.requestsPerSecond.toFixed(0).padStart(7)
          }  ${r.p50Ms.toFixed(3).padStart(7)}  ${r.p99Ms.toFixed(3).padStart(7)}  ${
            r.cpuUsPerRequest.toFixed(1).padStart(10)
          }  ${r.errors}`,
        );
      }
      console.log(
        `throughput vs bare: c=1 ${(ratio(1) * 100).toFixed(0)}%, c=32 ${
          (ratio(32) * 100).toFixed(0)
        }% (target ≥ 60%); p99 at c=32 ${p99At32.toFixed(2)} ms (target < 5 ms)` +
          (errors ? `; ${errors} errors` : ""),
      );
    }
    return errors === 0 ? 0 : 1;
  } finally {
    await bare.shutdown();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) Deno.exit(await main());
