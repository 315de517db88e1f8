/**
 * Every route of the API as one definition: method, path, `operationId`, request schemas and
 * answer schemas per status. The server mounts these (validation comes from them), the
 * OpenAPI document is generated from them, and the tests check real answers against them.
 *
 * @module
 */
import type { RouteConfig } from "@hono/zod-openapi";
import { z } from "zod";
import { ErrorBody } from "./common.ts";
import { AuditPage, AuditQuery, AuditVerification } from "./audit.ts";
import { DecideRequest, DecisionAnswer, EventAnswer, EventReport } from "./decision.ts";
import { Health, Readiness, Status } from "./ops.ts";
import { DryRun, PolicyList, PolicyReload } from "./policy.ts";
import {
  BootReferences,
  BootReferencesRequest,
  IntrospectionRequest,
  Measurements,
  NewVmRequest,
  QuoteAnswer,
  QuoteQuery,
  Vm,
  VmList,
  VmListQuery,
  VmPath,
  VmRemoved,
} from "./vm.ts";
import {
  DestinationEvidence,
  MigrationChallenge,
  MigrationOpenRequest,
  MigrationPath,
  MigrationTransfer,
  NewPeerRequest,
  Peer,
  PeerList,
  PeerPath,
} from "./migration.ts";

/**
 * A route definition, kept as written. `@hono/zod-openapi`'s own `createRoute` only adds a
 * routing path; importing it would load that package (and Hono's validator) into every client
 * of these schemas, about 70–120 ms of the CLI's start here. Only `openapi.ts` loads it, when the
 * document is first asked for.
 */
const createRoute = <P extends string, R extends Omit<RouteConfig, "path"> & { path: P }>(
  config: R,
): R => config;

const json = <S extends z.ZodType>(description: string, schema: S) => ({
  description,
  content: { "application/json": { schema } },
});
const body = <S extends z.ZodType>(schema: S) => ({
  required: true,
  content: { "application/json": { schema } },
});
const ERRORS = {
  400: "a request that does not fit its schema (the message names the field)",
  401: "no or an unknown bearer token (TCP)",
  403: "the token's role may not do this",
  404: "no such VM (or another tenant's), peer or open migration",
  409: "the VM's state, its vASP instance or the decision does not allow it",
  413: "the body is over the limit",
  502: "a peer host did not answer, or not as it should",
  500: "the server failed; the error is in its log",
  503: "the store cannot keep the record, or a part is unavailable: fail closed",
} as const;
/** The error answers a route may give, each with the one error body. */
const errors = <K extends keyof typeof ERRORS>(...statuses: K[]) =>
  Object.fromEntries(statuses.map((s) => [s, json(ERRORS[s], ErrorBody)])) as Record<
    K,
    ReturnType<typeof json<typeof ErrorBody>>
  >;
const AUTH = [401, 403, 500] as const;

/** `GET /healthz`: the process is up (no token needed). */
export const healthRoute = createRoute({
  method: "get",
  path: "/healthz",
  operationId: "getHealth",
  tags: ["operations"],
  summary: "The process is up (no token needed)",
  security: [],
  responses: { 200: json("up", Health) },
});

/** `GET /readyz`: store writable, policies loaded, ASP open. */
export const readyRoute = createRoute({
  method: "get",
  path: "/readyz",
  operationId: "getReadiness",
  tags: ["operations"],
  summary: "Store writable, policies loaded, ASP open",
  responses: { 200: json("ready", Readiness), 503: json("not ready", Readiness), ...errors(401) },
});

/** `GET /v1/status`: the server at a glance (operators, metrics tokens). */
export const statusRoute = createRoute({
  method: "get",
  path: "/v1/status",
  operationId: "getStatus",
  tags: ["operations"],
  summary: "ASP, host measured and expected, policy revision, VMs by state",
  responses: { 200: json("the status", Status), ...errors(...AUTH) },
});

/** `GET /metrics`: Prometheus text exposition. */
export const metricsRoute = createRoute({
  method: "get",
  path: "/metrics",
  operationId: "getMetrics",
  tags: ["operations"],
  summary: "Prometheus text exposition (operators, metrics tokens)",
  responses: {
    200: { description: "metrics", content: { "text/plain": { schema: z.string() } } },
    ...errors(...AUTH),
  },
});

/** `GET /openapi.json`: the document generated from these definitions. */
export const openApiRoute = createRoute({
  method: "get",
  path: "/openapi.json",
  operationId: "getOpenApi",
  tags: ["operations"],
  summary: "This document",
  responses: { 200: json("the document", z.record(z.string(), z.unknown())), ...errors(...AUTH) },
});

/** `POST /v1/decide`. */
export const decideRoute = createRoute({
  method: "post",
  path: "/v1/decide",
  operationId: "decide",
  tags: ["decisions"],
  summary: "May this VM do this now? (hook, operator)",
  description: "Answered only once the audit record is durable. Every exit path, errors " +
    "included, carries decision_id and leaves a record; a store failure is a 503 (fail " +
    "closed). The server applies quarantine itself; pause and kill are enforced by the hook, " +
    "QMP gate or monitor that asked. A body that does not fit is `event_invalid`.",
  request: { body: body(DecideRequest) },
  responses: { 200: json("the decision", DecisionAnswer), ...errors(400, ...AUTH, 413, 503) },
});

/** `POST /v1/events`. */
export const eventRoute = createRoute({
  method: "post",
  path: "/v1/events",
  operationId: "reportEvent",
  tags: ["decisions"],
  summary: "Something happened; the recorded state follows (hook, operator)",
  request: { body: body(EventReport) },
  responses: { 200: json("recorded", EventAnswer), ...errors(400, ...AUTH, 409, 413, 503) },
});

/** `GET /v1/vms`. */
export const listVmsRoute = createRoute({
  method: "get",
  path: "/v1/vms",
  operationId: "listVms",
  tags: ["vms"],
  summary: "List VMs (a tenant sees its own)",
  request: { query: VmListQuery },
  responses: { 200: json("the VMs", VmList), ...errors(400, ...AUTH, 503) },
});

/** `POST /v1/vms`. */
export const registerVmRoute = createRoute({
  method: "post",
  path: "/v1/vms",
  operationId: "registerVm",
  tags: ["vms"],
  summary: "Register a VM (operator)",
  request: { body: body(NewVmRequest) },
  responses: { 201: json("registered", Vm), ...errors(400, ...AUTH, 409, 413, 503) },
});

/** `GET /v1/vms/{uuid}`. */
export const showVmRoute = createRoute({
  method: "get",
  path: "/v1/vms/{uuid}",
  operationId: "showVm",
  tags: ["vms"],
  summary: "Show a VM",
  request: { params: VmPath },
  responses: { 200: json("the VM", Vm), ...errors(400, ...AUTH, 404, 503) },
});

/** `DELETE /v1/vms/{uuid}`. */
export const removeVmRoute = createRoute({
  method: "delete",
  path: "/v1/vms/{uuid}",
  operationId: "removeVm",
  tags: ["vms"],
  summary: "Remove a VM; its audit records stay (operator)",
  request: { params: VmPath },
  responses: { 200: json("removed", VmRemoved), ...errors(400, ...AUTH, 404, 503) },
});

/** `GET /v1/vms/{uuid}/measurements`. */
export const measurementsRoute = createRoute({
  method: "get",
  path: "/v1/vms/{uuid}/measurements",
  operationId: "listMeasurements",
  tags: ["vms"],
  summary: "Latest measurement per region",
  request: { params: VmPath },
  responses: { 200: json("measurements", Measurements), ...errors(400, ...AUTH, 404, 503) },
});

/** `GET /v1/vms/{uuid}/quote`. */
export const quoteRoute = createRoute({
  method: "get",
  path: "/v1/vms/{uuid}/quote",
  operationId: "quoteVm",
  tags: ["vms"],
  summary: "A quote of the VM's vASP instance, for offline verification (tenant)",
  description: "Save the answer and verify it offline with `vasp attest verify --evidence " +
    "<answer.json> --ca <state dir>/manufacturer-ca.pem --nonce <nonce> [--expect <refs>]`; " +
    "`ear` is the server's own EAT Attestation Result, a JWT signed by a key the ASP's AK " +
    "endorses (docs/quote-format.md).",
  request: { params: VmPath, query: QuoteQuery },
  responses: { 200: json("the quote", QuoteAnswer), ...errors(400, ...AUTH, 404, 409, 503) },
});

/** `PUT /v1/vms/{uuid}/introspection`. */
export const introspectionRoute = createRoute({
  method: "put",
  path: "/v1/vms/{uuid}/introspection",
  operationId: "setIntrospection",
  tags: ["vms"],
  summary: "Set (or with null drop) how the monitor measures the VM (operator)",
  request: { params: VmPath, body: body(IntrospectionRequest.nullable()) },
  responses: { 200: json("the VM", Vm), ...errors(400, ...AUTH, 404, 413, 503) },
});

/** `POST /v1/vms/{uuid}/release`. */
export const releaseRoute = createRoute({
  method: "post",
  path: "/v1/vms/{uuid}/release",
  operationId: "releaseVm",
  tags: ["vms"],
  summary: "Release a quarantined VM; it stays paused (operator)",
  request: { params: VmPath },
  responses: { 200: json("released", Vm), ...errors(400, ...AUTH, 404, 409, 503) },
});

/** `GET /v1/policies`. */
export const policiesRoute = createRoute({
  method: "get",
  path: "/v1/policies",
  operationId: "listPolicies",
  tags: ["policies"],
  summary: "The policy set in force (operator)",
  responses: { 200: json("the set", PolicyList), ...errors(...AUTH) },
});

/** `POST /v1/policies/reload`. */
export const reloadRoute = createRoute({
  method: "post",
  path: "/v1/policies/reload",
  operationId: "reloadPolicies",
  tags: ["policies"],
  summary: "Reload; any invalid file keeps the previous set (operator)",
  responses: { 200: json("what happened", PolicyReload), ...errors(...AUTH) },
});

/** `POST /v1/policies/evaluate`. */
export const evaluateRoute = createRoute({
  method: "post",
  path: "/v1/policies/evaluate",
  operationId: "evaluatePolicies",
  tags: ["policies"],
  summary: "Decide an event without recording or applying it (operator)",
  request: { body: body(DecideRequest) },
  responses: { 200: json("the decision", DryRun), ...errors(400, ...AUTH, 413, 503) },
});

/** `GET /v1/audit`. */
export const auditRoute = createRoute({
  method: "get",
  path: "/v1/audit",
  operationId: "queryAudit",
  tags: ["audit"],
  summary: "Audit records by VM and time (a tenant: vm= of its own VM)",
  request: { query: AuditQuery },
  responses: { 200: json("a page", AuditPage), ...errors(400, ...AUTH, 404, 503) },
});

/** `GET /v1/audit/verify`. */
export const verifyAuditRoute = createRoute({
  method: "get",
  path: "/v1/audit/verify",
  operationId: "verifyAudit",
  tags: ["audit"],
  summary: "Walk the hash chain and checkpoints (operator)",
  responses: { 200: json("the first problem, if any", AuditVerification), ...errors(...AUTH) },
});

/** `GET /v1/vms/{uuid}/boot-references`. */
export const bootReferencesRoute = createRoute({
  method: "get",
  path: "/v1/vms/{uuid}/boot-references",
  operationId: "showBootReferences",
  tags: ["vms"],
  summary: "The digests a VM's boot must have (measured launch)",
  request: { params: VmPath },
  responses: { 200: json("references", BootReferences), ...errors(400, ...AUTH, 404, 503) },
});

/** `PUT /v1/vms/{uuid}/boot-references`. */
export const setBootReferencesRoute = createRoute({
  method: "put",
  path: "/v1/vms/{uuid}/boot-references",
  operationId: "setBootReferences",
  tags: ["vms"],
  summary: "Replace a VM's boot references, measured or declared (operator, audited)",
  request: { params: VmPath, body: body(BootReferencesRequest) },
  responses: { 200: json("references", BootReferences), ...errors(400, ...AUTH, 404, 413, 503) },
});

/** `GET /v1/peers`. */
export const listPeersRoute = createRoute({
  method: "get",
  path: "/v1/peers",
  operationId: "listPeers",
  tags: ["peers"],
  summary: "The vASP hosts this host trusts as migration peers (operator)",
  responses: { 200: json("peers", PeerList), ...errors(...AUTH) },
});

/** `POST /v1/peers`. */
export const enrolPeerRoute = createRoute({
  method: "post",
  path: "/v1/peers",
  operationId: "enrolPeer",
  tags: ["peers"],
  summary: "Enrol a vASP host as a migration peer (operator, audited)",
  request: { body: body(NewPeerRequest) },
  responses: { 201: json("enrolled", Peer), ...errors(400, ...AUTH, 409, 413, 503) },
});

/** `DELETE /v1/peers/{name}`. */
export const removePeerRoute = createRoute({
  method: "delete",
  path: "/v1/peers/{name}",
  operationId: "removePeer",
  tags: ["peers"],
  summary: "Trust a peer no more (operator, audited)",
  request: { params: PeerPath },
  responses: { 200: json("removed", Peer), ...errors(400, ...AUTH, 404, 503) },
});

/** `POST /v1/migrations`. */
export const openMigrationRoute = createRoute({
  method: "post",
  path: "/v1/migrations",
  operationId: "openMigration",
  tags: ["migrations"],
  summary: "A destination's vASP opens the migration of a VM to it: the nonce to answer (peer)",
  request: { body: body(MigrationOpenRequest) },
  responses: { 201: json("challenge", MigrationChallenge), ...errors(400, ...AUTH, 404, 409) },
});

/** `POST /v1/migrations/{id}/evidence`. */
export const migrationEvidenceRoute = createRoute({
  method: "post",
  path: "/v1/migrations/{id}/evidence",
  operationId: "answerMigration",
  tags: ["migrations"],
  summary: "The destination's evidence; answered with the VM's vASP state sealed to it (peer)",
  description: "Decided as `migrate-out` phase `transfer` and audited; a denial is " +
    "`migration_refused` (409) with the decision's reasons.",
  request: { params: MigrationPath, body: body(DestinationEvidence) },
  responses: {
    200: json("the sealed state", MigrationTransfer),
    ...errors(400, ...AUTH, 404, 409, 413, 503),
  },
});

/** Every route, in the document's order. */
export const ROUTES = [
  healthRoute,
  readyRoute,
  statusRoute,
  metricsRoute,
  openApiRoute,
  decideRoute,
  eventRoute,
  listVmsRoute,
  registerVmRoute,
  showVmRoute,
  removeVmRoute,
  measurementsRoute,
  quoteRoute,
  introspectionRoute,
  releaseRoute,
  bootReferencesRoute,
  setBootReferencesRoute,
  policiesRoute,
  reloadRoute,
  evaluateRoute,
  auditRoute,
  verifyAuditRoute,
  listPeersRoute,
  enrolPeerRoute,
  removePeerRoute,
  openMigrationRoute,
  migrationEvidenceRoute,
] as const;

/** One route's definition. */
export type WireRoute = typeof ROUTES[number];
