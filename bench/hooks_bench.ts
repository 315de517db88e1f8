/**
 * The hooks' costs: the latency the QMP gate adds to an allowed life-cycle command (`stop`
 * and `cont` alternately, each asking the decision server) and to a query that passes
 * straight through, against the same commands on QEMU's own socket in the same run; and the
 * libvirt hook script from start to exit for an allowed `prepare`.
 *
 *   deno run --allow-all bench/hooks_bench.ts [--iterations N] [--json]
 *
 * And `getfd` with a descriptor attached (SCM_RIGHTS), as libvirt sends it before a save or a
 * migration, direct and through the gate, from a client on libvasp's descriptor-passing socket.
 *
 * Figures to reach: gate-added latency on an allowed command, median < 1 ms; on a query that
 * passes, median < 0.3 ms; the libvirt hook, median < 30 ms. The decision server here is a bare `Deno.serve` on a Unix socket that
 * allows everything, so the figures are the hooks' own cost plus one HTTP round trip.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { QmpGate } from "../src/hypervisor/mod.ts";
import { VaspClient } from "../src/wire/mod.ts";
import { RawQmp, startBareQemu } from "../tests/fixtures/bare_qemu.ts";
import { FdQmp } from "../tests/fixtures/fd_qmp.ts";
import { TestDecisionServer } from "../tests/fixtures/decision_server.ts";

/** One measured figure. */
export interface HookBenchRow {
  /** What was measured. */
  readonly name: string;
  /** Median, ms. */
  readonly p50Ms: number;
  /** 99th percentile, ms; `null` for a difference of medians (p99s do not subtract). */
  readonly p99Ms: number | null;
  /** The target for the median, ms, when there is one. */
  readonly targetMs?: number;
}

const VM = { uuid: "6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c", name: "web-1" };

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function time(n: number, f: (i: number) => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < Math.min(20, n); i++) await f(i); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await f(i);
    samples.push(performance.now() - t);
  }
  return samples.sort((a, b) => a - b);
}

async function session(path: string): Promise<RawQmp> {
  const qmp = await RawQmp.connect(path);
  await qmp.next();
  await qmp.execute({ execute: "qmp_capabilities" });
  return qmp;
}

/** `getfd` with stdin's descriptor attached, then `closefd`, as one sample. */
const passFd = (s: FdQmp) => async () => {
  for (const [command, fds] of [["getfd", [0]], ["closefd", []]] as const) {
    const reply = await s.execute({ execute: command, arguments: { fdname: "bench" } }, [...fds]);
    if ("error" in reply) throw new Error(`${command}: ${JSON.stringify(reply.error)}`);
  }
};

/**
 * Measures QEMU direct against QEMU behind the gate.
 *
 * @param dir a scratch directory
 * @param n commands per series
 * @returns gated and pass-through medians, and the gate-added figures
 */
export async function benchGate(dir: string, n: number): Promise<HookBenchRow[]> {
  const server = new TestDecisionServer(`${dir}/vasp.sock`);
  const client = new VaspClient(server.path);
  await using qemu = await startBareQemu(`${dir}/qemu.sock`);
  const gate = new QmpGate({ upstream: qemu.qmpPath, vm: VM, decisions: client, log: () => {} })
    .listen(`${dir}/gate.sock`);
  const lifecycle = (qmp: RawQmp) => (i: number) =>
    qmp.execute({ execute: i % 2 === 0 ? "stop" : "cont" });
  const query = (qmp: RawQmp) => () => qmp.execute({ execute: "query-status" });
  try {
    // QEMU serves one monitor client at a time: one session after the other.
    const direct = await session(qemu.qmpPath);
    const directLife = await time(n, lifecycle(direct));
    const directQuery = await time(n, query(direct));
    await direct.close();
    const gated = await session(`${dir}/gate.sock`);
    const gatedLife = await time(n, lifecycle(gated));
    const gatedQuery = await time(n, query(gated));
    await gated.close();
    const directFds = await FdQmp.connect(qemu.qmpPath);
    const directFd = await time(n, passFd(directFds));
    directFds.close();
    const gatedFds = await FdQmp.connect(`${dir}/gate.sock`);
    const gatedFd = await time(n, passFd(gatedFds));
    gatedFds.close();
    const row = (name: string, s: number[], targetMs?: number): HookBenchRow => ({
      name,
      p50Ms: quantile(s, 0.5),
      p99Ms: quantile(s, 0.99),
      ...(targetMs ? { targetMs } : {}),
    });
    const added = (a: number[], b: number[], name: string, targetMs?: number): HookBenchRow => ({
      name,
      p50Ms: quantile(a, 0.5) - quantile(b, 0.5),
      p99Ms: null,
      ...(targetMs ? { targetMs } : {}),
    });
    return [
      row("QEMU direct: stop/cont", directLife),
      row("through the gate: stop/cont (decision asked)", gatedLife),
      added(gatedLife, directLife, "gate-added latency, allowed stop/cont", 1),
      row("QEMU direct: query-status", directQuery),
      row("through the gate: query-status (passes)", gatedQuery),
      added(gatedQuery, directQuery, "gate-added latency, query-status", 0.3),
      row("QEMU direct: getfd (SCM_RIGHTS) + closefd", directFd),
      row("through the gate: getfd (SCM_RIGHTS) + closefd", gatedFd),
      added(gatedFd, directFd, "gate-added latency, getfd + closefd (2 commands)"),
    ];
  } finally {
    await gate.close();
    client.close();
    await server.close();
  }
}

/**
 * Runs the libvirt hook as libvirt does, `n` times.
 *
 * @param dir a scratch directory
 * @param n runs
 * @returns the start-to-exit figure
 */
export async function benchLibvirtHook(dir: string, n: number): Promise<HookBenchRow> {
  const server = new TestDecisionServer(`${dir}/hook.sock`);
  const hook = new URL("../native/build/vasp-hook", import.meta.url).pathname;
  const xml = await Deno.readFile(new URL("../tests/fixtures/libvirt_domain.xml", import.meta.url));
  try {
    const samples = await time(n, async () => {
      const child = new Deno.Command(hook, {
        args: ["web-1", "prepare", "begin", "-"],
        env: { VASP_SOCKET: server.path, VASP_HOOK_CONF: "/nonexistent" },
        stdin: "piped",
        stdout: "null",
        stderr: "null",
      }).spawn();
      const writer = child.stdin.getWriter();
      await writer.write(xml);
      await writer.close();
      const { code } = await child.status;
      if (code !== 0) throw new Error(`the hook exited ${code} on an allowed prepare`);
    });
    return {
      name: "libvirt hook, prepare allowed, start to exit",
      p50Ms: quantile(samples, 0.5),
      p99Ms: quantile(samples, 0.99),
      targetMs: 30,
    };
  } finally {
    await server.close();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { iterations: { type: "string" }, json: { type: "boolean" } },
    strict: false, // bench/run.ts passes every bench the same arguments
  });
  const n = Number(values.iterations ?? 400);
  const dir = await Deno.makeTempDir({ prefix: "vasp-hooks-bench-" });
  try {
    const rows = [...await benchGate(dir, n), await benchLibvirtHook(dir, Math.ceil(n / 8))];
    if (values.json) console.log(JSON.stringify(rows, null, 2));
    else {
      for (const r of rows) {
        const verdict = r.targetMs === undefined ? "" : r.p50Ms < r.targetMs ? "  ok" : "  MISSED";
        console.log(
          `${r.name.padEnd(48)} p50 ${r.p50Ms.toFixed(3).padStart(8)} ms  p99 ${
            r.p99Ms === null ? "       —   " : `${r.p99Ms.toFixed(3).padStart(8)} ms`
          }${r.targetMs === undefined ? "" : `  (target p50 < ${r.targetMs} ms)`}${verdict}`,
        );
      }
    }
    const missed = rows.filter((r) => r.targetMs !== undefined && !(r.p50Ms < r.targetMs));
    Deno.exitCode = missed.length ? 1 : 0;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
