/**
 * `POST /v1/decide` and `POST /v1/events`: every request gets its ID first, and every exit
 * path, errors included, leaves one audit record under it before the answer goes out.
 *
 * @module
 */
import type { Hono, MiddlewareHandler } from "hono";
import type { AppEnv } from "./_env.ts";
import { isOperation } from "../engine/mod.ts";
import type { Services } from "./_services.ts";
import { allow } from "./auth.ts";
import { readJson } from "./_body.ts";
import { errorResponse } from "./errors.ts";

/**
 * Assigns the ID, and after the handler ran records a failure as an `error` record. When the
 * store cannot take even that, the answer becomes a 503 carrying the ID: fail closed.
 */
function recorded(
  deps: Services,
  options: { counted: boolean },
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const start = performance.now();
    const id = deps.ids.next();
    c.set("decisionId", id);
    await next();
    if (c.error) {
      try {
        await deps.decider.recordFailure(
          id,
          { body: c.get("body"), text: c.get("bodyText") },
          c.error,
        );
      } catch (error) {
        deps.log(`vasp: cannot record the failure of ${id}: ${(error as Error).message}`);
        c.res = errorResponse(error, id);
        deps.metrics.error((error as { code?: string }).code ?? "internal_error");
      }
    }
    if (options.counted) {
      // Only known operations become label values: a client cannot grow the metrics.
      const asked = (c.get("body") as { operation?: unknown } | undefined)?.operation;
      const operation = isOperation(asked) ? asked : "unknown";
      const outcome = c.error ? "error" : c.get("allow") ? "allow" : "deny";
      deps.metrics.decision(operation, outcome, (performance.now() - start) / 1000);
    }
  };
}

/**
 * Registers the decision and event routes.
 *
 * @param app the app
 * @param deps its dependencies
 */
export function decisionRoutes(app: Hono<AppEnv>, deps: Services): void {
  app.post(
    "/v1/decide",
    allow("hook"),
    recorded(deps, { counted: true }),
    deps.limit,
    async (c) => {
      const body = await readJson(c);
      const answer = await deps.decider.decide(c.get("decisionId"), body, {
        text: c.get("bodyText"),
      });
      c.set("allow", answer.allow);
      return c.json(answer);
    },
  );
  app.post(
    "/v1/events",
    allow("hook"),
    recorded(deps, { counted: false }),
    deps.limit,
    async (c) => {
      const body = await readJson(c);
      return c.json(
        await deps.decider.observe(c.get("decisionId"), body, { text: c.get("bodyText") }),
      );
    },
  );
}
