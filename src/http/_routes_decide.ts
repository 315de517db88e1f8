/**
 * `POST /v1/decide` and `POST /v1/events`: every request gets its ID first, and every exit
 * path, errors included, leaves one audit record under it before the answer goes out.
 *
 * @module
 */
import type { Hono, MiddlewareHandler } from "hono";
import type { AppEnv } from "./_env.ts";
import type { Services } from "./_services.ts";
import { allow } from "./auth.ts";
import { readJson } from "./_body.ts";
import { errorResponse } from "./errors.ts";

/**
 * Assigns the ID first; a failure the decision service did not see (a body that is not JSON,
 * or too large) is recorded through it all the same. When the store cannot take even that,
 * the answer becomes a 503 carrying the ID: fail closed.
 */
function recorded(deps: Services, options: { counted: boolean }): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const id = deps.ids.next();
    c.set("decisionId", id);
    await next();
    if (!c.error) return;
    try {
      await deps.decisions.recordFailure(
        id,
        { body: c.get("body"), text: c.get("bodyText") },
        c.error,
        options,
      );
    } catch (error) {
      c.res = errorResponse(error, id);
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
      return c.json(
        await deps.decisions.decide(c.get("decisionId"), { body, text: c.get("bodyText") }),
      );
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
        await deps.decisions.observe(c.get("decisionId"), { body, text: c.get("bodyText") }),
      );
    },
  );
}
