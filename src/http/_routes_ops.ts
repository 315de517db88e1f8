/**
 * Operational routes: liveness, readiness, status, metrics and the OpenAPI document. A
 * `metrics` token (a scraper's) reads readiness, status and metrics, nothing else.
 *
 * @module
 */
import type { Hono } from "hono";
import { Health, openApiDocument, Readiness, routes, Status } from "../wire/mod.ts";
import type { AppEnv } from "./_env.ts";
import { mount, reply } from "./_mount.ts";
import type { Services } from "./_services.ts";
import { allow } from "./auth.ts";

/** A probe UUID no VM has: reading it exercises the store without touching a record. */
const PROBE = "00000000-0000-0000-0000-000000000000";

/**
 * Registers `/healthz`; it needs no token and must come before the auth middleware.
 *
 * @param app the app
 */
export function healthRoute(app: Hono<AppEnv>): void {
  mount(app, routes.healthRoute, { handler: (c) => reply(c, Health, { status: "ok" }) });
}

/** VMs by life-cycle state. */
async function vmsByState(deps: Services): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const vm of await deps.store.listVms()) counts[vm.state] = (counts[vm.state] ?? 0) + 1;
  return counts;
}

/**
 * Registers `/readyz`, `/v1/status`, `/metrics` and `/openapi.json`.
 *
 * @param app the app
 * @param deps its dependencies
 */
export function opsRoutes(app: Hono<AppEnv>, deps: Services): void {
  mount(app, routes.readyRoute, {
    middleware: [allow("hook", "tenant", "metrics")],
    handler: async (c) => {
      let store = deps.decisions.lastWriteOk;
      try {
        await deps.store.getVm(PROBE);
      } catch {
        store = false;
      }
      const set = deps.policies.current();
      const checks = {
        store,
        policies: set !== null,
        asp: deps.asp !== null && !deps.asp.closed,
      };
      const ready = checks.store && checks.policies && checks.asp;
      const failing = Object.entries(checks).filter(([, ok]) => !ok).map(([name]) => name);
      return reply(c, Readiness, {
        ready,
        checks,
        policy_revision: set?.revision ?? null,
        asp_id: deps.asp?.id ?? null,
        ...(ready ? {} : {
          code: "not_ready" as const,
          message: `Not ready: ${failing.join(", ")} failing`,
        }),
      }, ready ? 200 : 503);
    },
  });

  mount(app, routes.statusRoute, {
    middleware: [allow("metrics")],
    handler: async (c) => {
      const set = deps.policies.current();
      const host = deps.decisions.host;
      const files = Object.entries(host?.files ?? {}).map(([name, f]) => ({
        name,
        digest: f.digest,
        expected: f.expected === "" ? null : f.expected,
        ok: f.expected !== "" && f.digest === f.expected,
      }));
      const recorded = files.some((f) => f.expected !== null);
      return reply(c, Status, {
        asp_id: deps.asp?.id ?? null,
        policy_revision: set?.revision ?? null,
        host: host === null ? null : {
          asp: host.asp,
          measured_at: host.measuredAt.toISOString(),
          expected_recorded: recorded,
          all_match: recorded && files.every((f) => f.ok),
          files,
        },
        vms: await vmsByState(deps),
      });
    },
  });

  mount(app, routes.metricsRoute, {
    middleware: [allow("metrics")],
    handler: async (c) => {
      const text = deps.metrics.render({
        policyRevision: deps.policies.current()?.revision ?? null,
        vmsByState: await vmsByState(deps),
      });
      return c.body(text, 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
    },
  });

  mount(app, routes.openApiRoute, {
    middleware: [allow("hook", "tenant")],
    handler: async (c) => c.json(await openApiDocument()),
  });
}
