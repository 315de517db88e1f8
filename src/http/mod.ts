/**
 * The decision API: `createApp(deps)` builds the Hono app over the decision service; tokens
 * and roles; the one error writer; the OpenAPI document (generated from src/wire's route
 * definitions, which the routes are mounted from). The client is src/wire's `VaspClient`.
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
export {
  type ErrorBody,
  errorResponse,
  isStoreFailure,
  mapError,
  type MappedError,
  requestError,
} from "./errors.ts";
export { openApiDocument } from "../wire/mod.ts";
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
