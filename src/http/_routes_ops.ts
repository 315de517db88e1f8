/**
 * Operational routes: liveness, readiness, metrics and the OpenAPI document.
 *
 * @module
 */
import type { Hono } from "hono";
import { Health, openApiDocument, Readiness, routes } from "../wire/mod.ts";
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

/**
 * Registers `/readyz`, `/metrics` and `/openapi.json`.
 *
 * @param app the app
 * @param deps its dependencies
 */
export function opsRoutes(app: Hono<AppEnv>, deps: Services): void {
  mount(app, routes.readyRoute, {
    middleware: [allow("hook", "tenant")],
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

  mount(app, routes.metricsRoute, {
    middleware: [allow()],
    handler: (c) => {
      const text = deps.metrics.render({
        policyRevision: deps.policies.current()?.revision ?? null,
      });
      return c.body(text, 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
    },
  });

  mount(app, routes.openApiRoute, {
    middleware: [allow("hook", "tenant")],
    handler: async (c) => c.json(await openApiDocument()),
  });
}
