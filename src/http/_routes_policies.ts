/**
 * The policy routes: what is in force, reload, and a dry run of an event.
 *
 * @module
 */
import type { Hono } from "hono";
import { DryRun, PolicyList, PolicyReload, routes } from "../wire/mod.ts";
import type { AppEnv } from "./_env.ts";
import { mount, reply } from "./_mount.ts";
import type { Services } from "./_services.ts";
import { allow } from "./auth.ts";
import { readJson } from "./_body.ts";

/**
 * Registers the policy routes (operators only).
 *
 * @param app the app
 * @param deps its dependencies
 */
export function policyRoutes(app: Hono<AppEnv>, deps: Services): void {
  mount(app, routes.policiesRoute, {
    middleware: [allow()],
    handler: (c) => {
      const set = deps.policies.current();
      return reply(c, PolicyList, {
        revision: set?.revision ?? null,
        params: set ? jsonParams(set.params) : {},
        policies: (set?.policies ?? []).map((p) => ({
          id: p.id,
          description: p.description,
          on: [...p.on],
          match: p.match?.text ?? null,
          effect: p.effect,
          actions: [...p.actions],
          rules: p.rules.map((r) => ({ name: r.name, expr: r.expr.text, message: r.message.text })),
        })),
      });
    },
  });

  mount(app, routes.reloadRoute, {
    middleware: [allow()],
    handler: async (c) => {
      const result = await deps.policies.reload();
      deps.metrics.reload(result.ok);
      return reply(c, PolicyReload, {
        ok: result.ok,
        revision: result.revision,
        previous_revision: result.previousRevision,
        errors: result.errors.map((e) => ({ ...e })),
      });
    },
  });

  mount(app, routes.evaluateRoute, {
    middleware: [allow(), deps.limit],
    handler: async (c) => {
      // The engine's parseEvent checks the event, as for /v1/decide (see _routes_decide.ts).
      const decision = await deps.decisions.evaluate(await readJson(c));
      return reply(c, DryRun, {
        dry_run: true,
        allow: decision.allow,
        reasons: decision.reasons.map((r) => ({ ...r })),
        actions: [...decision.actions],
        policy_revision: decision.policyRevision,
        transition: decision.transition,
        evaluated: [...decision.evaluated],
      });
    },
  });
}

/** Parameters as JSON: whole numbers are `bigint` in the set. */
function jsonParams(params: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify(params, (_k, v) => typeof v === "bigint" ? Number(v) : v),
  );
}
