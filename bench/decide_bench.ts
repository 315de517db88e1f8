/**
 * In-process decision time for the default policy set: `decide()` alone, no I/O, with the
 * policy set compiled once beforehand, for the operations a running fleet asks about most
 * (measurements, pause/resume through the QMP gate, start through libvirt) and for a deny
 * that collects reasons and actions.
 *
 *   deno run --allow-all bench/decide_bench.ts [--batches N] [--batch N] [--json]
 *
 * Figure to reach: median below 50 µs per decision in every scenario.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  decide,
  type DecisionContext,
  type LifecycleEvent,
  type Operation,
  type RegionMeasurement,
} from "../src/engine/mod.ts";
import { loadPolicySet } from "../src/policy/mod.ts";

const UUID = "6f1c2a9e-3b4d-4c5e-8f70-1a2b3c4d5e6f";
const NOW = new Date("2025-06-01T12:00:00Z");

function region(status: RegionMeasurement["status"] = "ok"): RegionMeasurement {
  return {
    status,
    digest: "sha256:11",
    reference: "sha256:11",
    at: new Date(NOW.getTime() - 60_000),
  };
}

function context(state: "running" | "paused" | "defined", differs = false): DecisionContext {
  const file = { digest: "sha256:aa", expected: "sha256:aa" };
  return {
    now: NOW,
    vm: {
      uuid: UUID,
      name: "web-1",
      state,
      tenant: "",
      labels: { tier: "prod" },
      createdAt: new Date(0),
    },
    vasp: { instanceId: "vasp-1", configDigest: "sha256:c0", certified: true, sealedExport: true },
    measurements: {
      kernel_text: region(differs ? "differs" : "ok"),
      kernel_rodata: region(),
      syscall_table: region(),
      idt: region(),
    },
    host: {
      asp: "soft",
      bootId: "b00t",
      measuredAt: new Date(NOW.getTime() - 3_600_000),
      files: Object.fromEntries(
        ["qemu", "host-kernel", "vasp-engine", "libvasp", "policy-bundle"].map((f) => [f, file]),
      ),
    },
  };
}

function event(operation: Operation, details: Record<string, unknown> = {}): LifecycleEvent {
  return { operation, vm: { uuid: UUID, name: "web-1" }, source: "qmp-gate", details };
}

const SCENARIOS: [string, LifecycleEvent, DecisionContext][] = [
  ["measurement, clean (allow)", event("measurement"), context("running")],
  [
    "measurement, kernel text differs (deny, quarantine)",
    event("measurement"),
    context("running", true),
  ],
  ["pause (allow, 1 policy)", event("pause", { command: "stop" }), context("running")],
  ["resume (allow, 4 policies)", event("resume", { command: "cont" }), context("paused")],
  ["resume, kernel text differs (deny)", event("resume"), context("paused", true)],
  ["start (allow, 3 policies)", event("start"), context("defined")],
  [
    "migrate-out (allow, 3 policies)",
    event("migrate-out", { command: "migrate" }),
    context("running"),
  ],
];

/** One scenario's figures, µs per decision. */
export interface DecideBenchRow {
  readonly name: string;
  readonly medianUs: number;
  readonly p99Us: number;
  readonly allow: boolean;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      batches: { type: "string", default: "200" },
      batch: { type: "string", default: "100" },
      json: { type: "boolean" },
    },
  });
  const batches = Number(values.batches);
  const batch = Number(values.batch);
  const { set } = await loadPolicySet({ dir: new URL("../policies", import.meta.url).pathname });
  const rows: DecideBenchRow[] = [];
  for (const [name, ev, ctx] of SCENARIOS) {
    const allow = decide(set, ev, ctx).allow;
    for (let i = 0; i < batch * 20; i++) decide(set, ev, ctx); // warm-up: let the JIT settle
    // A batch's mean per decision, so that the timer's resolution does not count.
    const means: number[] = [];
    for (let b = 0; b < batches; b++) {
      const t = performance.now();
      for (let i = 0; i < batch; i++) decide(set, ev, ctx);
      means.push(((performance.now() - t) * 1000) / batch);
    }
    means.sort((a, b) => a - b);
    const at = (q: number) => means[Math.min(means.length - 1, Math.floor(q * means.length))];
    rows.push({ name, medianUs: +at(0.5).toFixed(2), p99Us: +at(0.99).toFixed(2), allow });
  }
  const worst = Math.max(...rows.map((r) => r.medianUs));
  const verdict = { worstMedianUs: worst, targetUs: 50, met: worst < 50 };
  if (values.json) {
    console.log(JSON.stringify({ revision: set.revision, batches, batch, rows, verdict }, null, 2));
  } else {
    console.log(
      `decide() on the default policy set (${set.policies.length} policies), ${batches}×${batch} per row`,
    );
    console.log("| scenario | decision | median µs | p99 µs |\n| --- | --- | --- | --- |");
    for (const r of rows) {
      console.log(`| ${r.name} | ${r.allow ? "allow" : "deny"} | ${r.medianUs} | ${r.p99Us} |`);
    }
    console.log(`worst median ${worst} µs (target < 50 µs): ${verdict.met ? "met" : "NOT met"}`);
  }
}
