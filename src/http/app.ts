/**
 * `createApp(deps)`: the decision server's Hono app. Everything it uses is passed in; it opens
 * nothing itself. Listeners call `app.fetch(request, { transport })`: `"unix"` for the Unix
 * socket (trusted), anything else needs a bearer token.
 *
 * @module
 */
import { Hono } from "hono";
import type { CheckpointVerifier, Store } from "../store/mod.ts";
import { DEFAULT_BODY_LIMIT, limitBody } from "./_body.ts";
import type { AppEnv } from "./_env.ts";
import { auditRoutes } from "./_routes_audit.ts";
import { decisionRoutes } from "./_routes_decide.ts";
import { healthRoute, opsRoutes } from "./_routes_ops.ts";
import { migrationRoutes } from "./_routes_migrations.ts";
import { policyRoutes } from "./_routes_policies.ts";
import { vmRoutes } from "./_routes_vms.ts";
import { quoteRoutes } from "./_routes_quote.ts";
import { introspectionRoutes } from "./_routes_introspection.ts";
import type { Logger } from "../engine/mod.ts";
import {
  type DecisionService,
  type IdSource,
  type Metrics,
  type PolicyProvider,
  uuidV7Source,
} from "../decision/mod.ts";
import type { Migrations, VaspPort } from "../vasp/mod.ts";
import type { EarIssuer } from "../attest/mod.ts";
import type { AspStatus, Services } from "./_services.ts";
import { authenticate, type TokenAuthenticator } from "./auth.ts";
import { errorResponse, mapError, requestError } from "./errors.ts";

/** What {@link createApp} needs. */
export interface AppDeps {
  /** VM records, measurements, audit. */
  readonly store: Store;
  /** The policy set in force. */
  readonly policies: PolicyProvider;
  /** The decision service (on the same store and policies). */
  readonly decisions: DecisionService;
  /** Checks bearer tokens. */
  readonly tokens: TokenAuthenticator;
  /** Where counts and timings go. */
  readonly metrics: Metrics;
  /** Decision and event IDs (default: UUIDv7 on the system clock). */
  readonly ids?: IdSource;
  /** The ASP, for readiness and identity; `null`/absent: the server is not ready. */
  readonly asp?: AspStatus | null;
  /** Checks audit checkpoint signatures against a trusted key (the ASP's AK). */
  readonly auditVerifier?: CheckpointVerifier;
  /** Largest accepted request body in bytes (default 1 MiB, {@link DEFAULT_BODY_LIMIT}). */
  readonly bodyLimit?: number;
  /** Where internal errors are logged. */
  readonly log: Logger;
  /** The vASP side: instances for registered VMs, quotes (absent: neither). */
  readonly vasp?: VaspPort;
  /** Appraises each quote and signs an EAR beside it (absent: quotes carry no EAR). */
  readonly ear?: EarIssuer;
  /** Peers and migration between vASP hosts (absent: this server takes part in none). */
  readonly migrations?: Migrations;
}

/** The app's type. */
export type App = Hono<AppEnv>;

/**
 * Builds the app.
 *
 * @param deps store, policies, decision service, tokens, metrics, logger and options
 * @returns the Hono app; serve it with `app.fetch(request, { transport })`
 * @throws {RangeError} for a body limit that is not a positive integer
 * @example
 * ```ts ignore
 * // Needs the whole composition (store, policies, decision service …): createServer builds it.
 * const app = createApp({ store, policies, decisions, tokens, metrics, log });
 * Deno.serve({ path: "vasp.sock" }, (req) => app.fetch(req, { transport: "unix" }));
 * ```
 */
export function createApp(deps: AppDeps): App {
  const bodyLimit = deps.bodyLimit ?? DEFAULT_BODY_LIMIT;
  if (!Number.isInteger(bodyLimit) || bodyLimit < 1) {
    throw new RangeError(`bodyLimit must be a positive integer, got ${bodyLimit}`);
  }
  const services: Services = {
    store: deps.store,
    policies: deps.policies,
    decisions: deps.decisions,
    tokens: deps.tokens,
    metrics: deps.metrics,
    ids: deps.ids ?? uuidV7Source(),
    asp: deps.asp ?? null,
    auditVerifier: deps.auditVerifier,
    limit: limitBody(bodyLimit),
    log: deps.log,
    vasp: deps.vasp ?? null,
    ear: deps.ear ?? null,
    migrations: deps.migrations ?? null,
  };
  const app = new Hono<AppEnv>();

  app.onError((error, c) => {
    const decisionId = c.get("decisionId");
    const { status, body } = mapError(error, decisionId);
    if (status === 500) {
      services.log.log("error", "internal error", {
        method: c.req.method,
        path: c.req.path,
        ...(decisionId ? { decision_id: decisionId } : {}),
        error: error instanceof Error ? error.stack ?? error.message : String(error),
      });
    }
    services.metrics.error(body.code);
    return errorResponse(error, decisionId);
  });
  app.notFound((c) => {
    throw requestError("route_not_found", `No route ${c.req.method} ${c.req.path}`);
  });

  healthRoute(app);
  app.use("*", authenticate(services.tokens));
  decisionRoutes(app, services);
  vmRoutes(app, services);
  quoteRoutes(app, services);
  introspectionRoutes(app, services);
  policyRoutes(app, services);
  auditRoutes(app, services);
  opsRoutes(app, services);
  migrationRoutes(app, services);
  return app;
}
