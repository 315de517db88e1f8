/**
 * What the route modules share: the app's dependencies with their defaults filled in.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import type { CheckpointVerifier, Store } from "../store/mod.ts";
import type { AppEnv } from "./_env.ts";
import type { TokenAuthenticator } from "./auth.ts";
import type { Decider } from "./decider.ts";
import type { PolicyProvider } from "./policy_provider.ts";
import type { IdSource } from "./ids.ts";
import type { Metrics } from "./metrics.ts";
import type { VaspPort } from "./vasp_port.ts";

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
  readonly decider: Decider;
  readonly tokens: TokenAuthenticator;
  readonly metrics: Metrics;
  readonly ids: IdSource;
  readonly asp: AspStatus | null;
  readonly auditVerifier: CheckpointVerifier | undefined;
  readonly limit: MiddlewareHandler<AppEnv>;
  readonly log: (line: string) => void;
  readonly vasp: VaspPort | null;
}
