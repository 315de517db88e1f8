/**
 * `POST /v1/decide` and `POST /v1/events`: every request gets its ID first, and every exit
 * path, errors included, leaves one audit record under it before the answer goes out.
 *
 * @module
 */
import type { Hono, MiddlewareHandler } from "hono";
import { DecisionAnswer, EventAnswer, routes } from "../wire/mod.ts";
import type { AppEnv } from "./_env.ts";
import { mount, reply } from "./_mount.ts";
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
 * Registers the decision and event routes. Their bodies are checked by the engine's
 * `parseEvent` inside the decision service, not by the wire schema: the engine may not import
 * zod (it imports nothing but CEL), the monitor and the gate reach the service without HTTP and
 * need the same check, and a failed check must be recorded under the decision's ID as
 * `event_invalid`. src/wire/decision_test.ts holds the schema and `parseEvent` to the same
 * verdicts.
 *
 * @param app the app
 * @param deps its dependencies
 */
export function decisionRoutes(app: Hono<AppEnv>, deps: Services): void {
  mount(app, routes.decideRoute, {
    middleware: [allow("hook"), recorded(deps, { counted: true }), deps.limit],
    handler: async (c) => {
      const body = await readJson(c);
      const answer = await deps.decisions.decide(c.get("decisionId"), {
        body,
        text: c.get("bodyText"),
      });
      return reply(c, DecisionAnswer, answer);
    },
  });
  mount(app, routes.eventRoute, {
    middleware: [allow("hook"), recorded(deps, { counted: false }), deps.limit],
    handler: async (c) => {
      const body = await readJson(c);
      const answer = await deps.decisions.observe(c.get("decisionId"), {
        body,
        text: c.get("bodyText"),
      });
      return reply(c, EventAnswer, answer);
    },
  });
}
