/**
 * The policy routes: what is in force, reload, and a dry run of an event.
 *
 * @module
 */
import type { Hono } from "hono";
import type { AppEnv } from "./_env.ts";
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
  app.get("/v1/policies", allow(), (c) => {
    const set = deps.policies.current();
    return c.json({
      revision: set?.revision ?? null,
      params: set ? jsonParams(set.params) : {},
      policies: (set?.policies ?? []).map((p) => ({
        id: p.id,
        description: p.description,
        on: p.on,
        match: p.match?.text ?? null,
        effect: p.effect,
        actions: p.actions,
        rules: p.rules.map((r) => ({ name: r.name, expr: r.expr.text, message: r.message.text })),
      })),
    });
  });

  app.post("/v1/policies/reload", allow(), async (c) => {
    const result = await deps.policies.reload();
    deps.metrics.reload(result.ok);
    return c.json({
      ok: result.ok,
      revision: result.revision,
      previous_revision: result.previousRevision,
      errors: result.errors,
    });
  });

  app.post("/v1/policies/evaluate", allow(), deps.limit, async (c) => {
    const decision = await deps.decisions.evaluate(await readJson(c));
    return c.json({
      dry_run: true,
      allow: decision.allow,
      reasons: decision.reasons,
      actions: decision.actions,
      policy_revision: decision.policyRevision,
      transition: decision.transition,
      evaluated: decision.evaluated,
    });
  });
}

/** Parameters as JSON: whole numbers are `bigint` in the set. */
function jsonParams(params: Readonly<Record<string, unknown>>): unknown {
  return JSON.parse(
    JSON.stringify(params, (_k, v) => typeof v === "bigint" ? Number(v) : v),
  );
}
