/**
 * The decision API: `createApp(deps)` builds the Hono app; the decider, token registry,
 * metrics and ID source it is built from; and a small client for the `vasp` command.
 *
 * Routes (see `openApiDocument()` and docs/api.md): `POST /v1/decide`, `POST /v1/events`, the
 * VM, policy and audit routes under `/v1/`, `GET /metrics`, `/healthz`, `/readyz`,
 * `/openapi.json`.
 *
 * @module
 */
export { type App, type AppDeps, createApp } from "./app.ts";
export type { AppEnv, Principal } from "./_env.ts";
export type { AspStatus } from "./_services.ts";
export { allow, authenticate, tenantScope, type TokenAuthenticator } from "./auth.ts";
export { Decider, type DeciderDeps } from "./decider.ts";
export {
  type AnsweredReason,
  type DecisionAnswer,
  decisionAnswer,
  ERROR_POLICY,
  EVENT_POLICY,
  type EventAnswer,
} from "./answers.ts";
export type { PolicyProblem, PolicyProvider, PolicyReloadResult } from "./policy_provider.ts";
export {
  ERROR_STATUS,
  type ErrorBody,
  errorResponse,
  isStoreFailure,
  mapError,
  type MappedError,
  requestError,
} from "./errors.ts";
export { type IdSource, uuidV7Source } from "./ids.ts";
export { type DecisionOutcome, Metrics } from "./metrics.ts";
export { openApiDocument } from "./openapi.ts";
export {
  bootstrapOperatorToken,
  OPERATOR_TOKEN_FILE,
  type Role,
  ROLES,
  type TokenInfo,
  TokenRegistry,
  TOKENS_FILE,
} from "./tokens.ts";
export { DEFAULT_BODY_LIMIT } from "./_body.ts";
export { ApiClient, type ApiClientOptions } from "./client.ts";
export {
  refuseDecision,
  VASP_POLICY,
  type VaspOutcome,
  type VaspPort,
  type VaspQuote,
  type VaspStep,
} from "./vasp_port.ts";
