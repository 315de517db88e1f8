/**
 * Audit log throughput: durable appends per second with group commit against one transaction
 * per append, at 1 and 32 concurrent appenders, on a real SQLite file (WAL, each append awaited until its fdatasync).
 * Also the per-record hash, `node:crypto` against Web Crypto.
 *
 *   deno run --allow-all bench/audit_bench.ts [--appends N] [--json]
 *
 * Figure to reach: group commit at 32 appenders ≥ 25,000 appends/s (so the audit record never
 * limits `POST /v1/decide`, whose target is 60% of a bare `Deno.serve`, ~23k req/s here), and
 * at least 5× one transaction per append.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import { digestInput, type GroupCommitOptions, SqliteStore } from "../src/store/mod.ts";

/** One measured configuration. */
export interface AuditBenchRow {
  /** What was measured. */
  readonly name: string;
  /** Concurrent appenders. */
  readonly concurrency: number;
  /** Durable appends per second. */
  readonly appendsPerSecond: number;
  /** Median and 99th percentile time from append to durable, ms. */
  readonly p50Ms: number;
  /** 99th percentile, ms. */
  readonly p99Ms: number;
}

const MODES: Record<string, GroupCommitOptions> = {
  "one transaction per append": { maxBatch: 1 },
  "group commit (microtask)": {},
  "group commit (macrotask)": { schedule: (flush) => setTimeout(flush, 0) },
};

/**
 * Appends `appends` decisions from `concurrency` loops into a fresh store.
 *
 * @param mode a key of the modes table
 * @param options how many appenders, how many appends in all
 * @returns the measured row
 */
export async function measureAppends(
  mode: string,
  options: { concurrency: number; appends: number },
): Promise<AuditBenchRow> {
  const dir = await Deno.makeTempDir({ prefix: "vasp-audit-bench-" });
  const store = SqliteStore.openIn(dir, { groupCommit: MODES[mode] });
  const latencies: number[] = [];
  let next = 0;
  const reasons = [{ policy: "integrity", rule: "kernel_text", message: "digest differs" }];
  const appender = async () => {
    while (next < options.appends) {
      const i = next++;
      const started = performance.now();
      await store.appendAudit({
        decisionId: `bench-${i}`,
        time: new Date(),
        vm: { uuid: "4f1c2a9e-8d5b-4c3e-9f7a-1b2c3d4e5f60", name: "web-1" },
        operation: "resume",
        source: "qmp-gate",
        inputDigest: digestInput({ i, operation: "resume" }),
        policyRevision: "0123456789abcdef0123456789abcdef01234567",
        result: i % 4 ? "allow" : "deny",
        reasons: i % 4 ? [] : reasons,
        actions: i % 4 ? [] : ["alert"],
        engineLatencyUs: 21,
      });
      latencies.push(performance.now() - started);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: options.concurrency }, appender));
  const seconds = (performance.now() - started) / 1000;
  await store.close();
  await Deno.remove(dir, { recursive: true });
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return {
    name: mode,
    concurrency: options.concurrency,
    appendsPerSecond: Math.round(options.appends / seconds),
    p50Ms: +at(0.5).toFixed(3),
    p99Ms: +at(0.99).toFixed(3),
  };
}

/**
 * Mean time of one SHA-256 over `bytes` bytes, sync `node:crypto` against Web Crypto.
 *
 * @returns microseconds per digest for each
 */
export async function measureHash(bytes = 400): Promise<{ nodeUs: number; webCryptoUs: number }> {
  const data = new Uint8Array(bytes).fill(7);
  const n = 5000;
  let t = performance.now();
  for (let i = 0; i < n; i++) createHash("sha256").update(data).digest();
  const nodeUs = ((performance.now() - t) * 1000) / n;
  t = performance.now();
  for (let i = 0; i < n / 5; i++) await crypto.subtle.digest("SHA-256", data);
  const webCryptoUs = ((performance.now() - t) * 1000) / (n / 5);
  return { nodeUs: +nodeUs.toFixed(2), webCryptoUs: +webCryptoUs.toFixed(2) };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { appends: { type: "string", default: "5000" }, json: { type: "boolean" } },
  });
  const appends = Number(values.appends);
  const rows: AuditBenchRow[] = [];
  for (const concurrency of [1, 32]) {
    for (const mode of Object.keys(MODES)) {
      rows.push(await measureAppends(mode, { concurrency, appends }));
    }
  }
  const hash = await measureHash();
  const group32 = rows.find((r) => r.concurrency === 32 && r.name.endsWith("(microtask)"))!;
  const single32 = rows.find((r) => r.concurrency === 32 && r.name.startsWith("one"))!;
  const verdict = {
    groupAt32: group32.appendsPerSecond,
    target: 25000,
    speedupOverOneTransaction: +(group32.appendsPerSecond / single32.appendsPerSecond).toFixed(1),
    met: group32.appendsPerSecond >= 25000 &&
      group32.appendsPerSecond >= 5 * single32.appendsPerSecond,
  };
  if (values.json) {
    console.log(JSON.stringify({ appends, rows, hash, verdict }, null, 2));
  } else {
    console.log(`audit appends (${appends} per row, durable: WAL + fdatasync)`);
    console.log(
      "| mode | appenders | appends/s | p50 ms | p99 ms |\n| --- | --- | --- | --- | --- |",
    );
    for (const r of rows) {
      console.log(
        `| ${r.name} | ${r.concurrency} | ${r.appendsPerSecond} | ${r.p50Ms} | ${r.p99Ms} |`,
      );
    }
    console.log(
      `SHA-256 of 400 bytes: node:crypto ${hash.nodeUs} µs, Web Crypto ${hash.webCryptoUs} µs`,
    );
    console.log(
      `group commit at 32: ${verdict.groupAt32}/s (target ≥ ${verdict.target}), ` +
        `${verdict.speedupOverOneTransaction}× one transaction per append: ` +
        (verdict.met ? "met" : "NOT met"),
    );
  }
}
