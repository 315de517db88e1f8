/**
 * What the route modules share: the app's dependencies with their defaults filled in.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import type { CheckpointVerifier, Store } from "../store/mod.ts";
import type { AppEnv } from "./_env.ts";
import type { TokenAuthenticator } from "./auth.ts";
import type { Logger } from "../engine/mod.ts";
import type { DecisionService, IdSource, Metrics, PolicyProvider } from "../decision/mod.ts";
import type { Migrations, VaspPort } from "../vasp/mod.ts";
import type { EarIssuer } from "../attest/mod.ts";

/** What the ASP tells about itself, for readiness. */
export interface AspStatus {
  /** The ASP ID. */
  readonly id: string;
  /** Whether it has been closed. */
  readonly closed: boolean;
}

/** The resolved dependencies every route module gets. */
export interface Services {
  readonly store: Store;
  readonly policies: PolicyProvider;
  readonly decisions: DecisionService;
  readonly tokens: TokenAuthenticator;
  readonly metrics: Metrics;
  readonly ids: IdSource;
  readonly asp: AspStatus | null;
  readonly auditVerifier: CheckpointVerifier | undefined;
  readonly limit: MiddlewareHandler<AppEnv>;
  readonly log: Logger;
  readonly vasp: VaspPort | null;
  readonly ear: EarIssuer | null;
  readonly migrations: Migrations | null;
}
