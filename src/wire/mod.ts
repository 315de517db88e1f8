/**
 * The API's wire shapes in one place: one zod schema per request and answer, the TypeScript
 * types inferred from them, every route's definition (method, path, `operationId`, schemas per
 * status), the OpenAPI document generated from those, and the one client. The server, the
 * CLI, the gate, the hook tests and the demo import these types, never a copy.
 *
 * May import only src/engine and npm packages.
 *
 * @module
 */
export { describeIssue, ErrorBody, Time, Uuid, UuidInput, type WireIssue } from "./common.ts";
export {
  Actions,
  DecideRequest,
  DecisionAnswer,
  EventAnswer,
  EventReport,
  NAME_MAX,
  Reason,
  Transition,
  VmRef,
} from "./decision.ts";
export {
  BootReference,
  BootReferences,
  BootReferencesRequest,
  DEFAULT_INTERVAL_MS,
  EarJwk,
  Introspection,
  IntrospectionRequest,
  Measurement,
  Measurements,
  NewVmRequest,
  QuoteAnswer,
  QuoteEar,
  QuoteQuery,
  Vm,
  VmList,
  VmListQuery,
  VmPath,
  VmRemoved,
} from "./vm.ts";
export { DryRun, Policy, PolicyList, PolicyReload } from "./policy.ts";
export { AUDIT_RESULTS, AuditPage, AuditQuery, AuditRecord, AuditVerification } from "./audit.ts";
export { Health, Readiness, Status } from "./ops.ts";
export * as routes from "./routes.ts";
export { ROUTES, type WireRoute } from "./routes.ts";
export { openApiDocument } from "./openapi.ts";
export { type ClientOptions, VaspClient } from "./client.ts";
export {
  DestinationEvidence,
  MigrationChallenge,
  MigrationOpenRequest,
  MigrationTransfer,
  NewPeerRequest,
  Peer,
  PeerList,
} from "./migration.ts";
