/**
 * The API's OpenAPI 3.1 document, written by hand beside the routes; a test checks that every
 * route of the app is in it and nothing else is.
 *
 * @module
 */
import { nullable, obj, ref, type Schema, SCHEMAS, time, uuid } from "./_openapi_schemas.ts";

const json = (schema: Schema) => ({ "application/json": { schema } });
const ok = (description: string, schema: Schema, status = "200") => ({
  [status]: { description, content: json(schema) },
  default: { description: "an error with a stable code", content: json(ref("Error")) },
});
const body = (schema: Schema) => ({ required: true, content: json(schema) });
const uuidParam = {
  name: "uuid",
  in: "path",
  required: true,
  schema: uuid,
  description: "the VM's UUID",
};
const query = (name: string, description: string, schema: Schema = { type: "string" }) => ({
  name,
  in: "query",
  required: false,
  description,
  schema,
});

const tag = (tags: string[], summary: string, rest: Schema) => ({ tags, summary, ...rest });

const PATHS: Record<string, Record<string, Schema>> = {
  "/healthz": {
    get: tag(["operations"], "The process is up (no token needed)", {
      security: [],
      responses: ok("up", obj({ status: { const: "ok" } })),
    }),
  },
  "/readyz": {
    get: tag(["operations"], "Store writable, policies loaded, ASP open", {
      responses: {
        ...ok("ready", obj({ ready: { type: "boolean" }, checks: { type: "object" } })),
        "503": { description: "not ready; the checks say which part" },
      },
    }),
  },
  "/v1/status": {
    get: tag(["operations"], "ASP, host measured and expected, policy revision, VMs by state", {
      description: "Read-only; for operators and metrics tokens. `vasp status` prints it.",
      responses: ok(
        "the status",
        obj({
          asp_id: { type: ["string", "null"] },
          policy_revision: { type: ["string", "null"] },
          host: { type: ["object", "null"] },
          vms: { type: "object", additionalProperties: { type: "integer" } },
        }),
      ),
    }),
  },
  "/metrics": {
    get: tag(["operations"], "Prometheus text exposition (operators, metrics tokens)", {
      responses: {
        "200": {
          description: "metrics",
          content: { "text/plain": { schema: { type: "string" } } },
        },
        default: { description: "an error", content: json(ref("Error")) },
      },
    }),
  },
  "/openapi.json": {
    get: tag(["operations"], "This document", {
      responses: ok("the document", { type: "object" }),
    }),
  },
  "/v1/decide": {
    post: tag(["decisions"], "May this VM do this now? (hook, operator)", {
      description: "Answered only once the audit record is durable. Every exit path, errors " +
        "included, carries decision_id and leaves a record; a store failure is a 503 (fail " +
        "closed). The server applies quarantine itself; pause and kill are enforced by the " +
        "hook, QMP gate or monitor that asked.",
      requestBody: body(ref("Event")),
      responses: ok("the decision", ref("Decision")),
    }),
  },
  "/v1/events": {
    post: tag(["decisions"], "Something happened; the recorded state follows (hook, operator)", {
      requestBody: body(ref("EventReport")),
      responses: ok("recorded", ref("EventAck")),
    }),
  },
  "/v1/vms": {
    get: tag(["vms"], "List VMs (a tenant sees its own)", {
      parameters: [query("state", "only this state"), query("tenant", "only this tenant")],
      responses: ok("the VMs", obj({ vms: { type: "array", items: ref("Vm") } })),
    }),
    post: tag(["vms"], "Register a VM (operator)", {
      requestBody: body(ref("NewVm")),
      responses: ok("registered", ref("Vm"), "201"),
    }),
  },
  "/v1/vms/{uuid}": {
    get: tag(["vms"], "Show a VM", { parameters: [uuidParam], responses: ok("the VM", ref("Vm")) }),
    delete: tag(["vms"], "Remove a VM; its audit records stay (operator)", {
      parameters: [uuidParam],
      responses: ok("removed", obj({ uuid, removed: { const: true } })),
    }),
  },
  "/v1/vms/{uuid}/measurements": {
    get: tag(["vms"], "Latest measurement per region", {
      parameters: [uuidParam],
      responses: ok(
        "measurements",
        obj({ vm_uuid: uuid, measurements: { type: "array", items: ref("Measurement") } }),
      ),
    }),
  },
  "/v1/vms/{uuid}/quote": {
    get: tag(["vms"], "A quote of the VM's vASP instance, for offline verification (tenant)", {
      description: "Verify with `vasp attest verify --quote <quote, base64-decoded> --chain " +
        "<certificates, concatenated> --ca <state dir>/manufacturer-ca.pem --nonce <nonce> " +
        "--vm <uuid> --event-log <event_log>` (docs/lifecycle.md).",
      parameters: [
        uuidParam,
        { ...query("nonce", "1 to 64 bytes, hex, fresh from the verifier"), required: true },
        query("registers", "registers to quote, e.g. 0,1,8 (default: all 24)"),
        query("alg", "register bank", { enum: ["sha256", "sm3"] }),
      ],
      responses: ok("the quote", ref("Quote")),
    }),
  },
  "/v1/vms/{uuid}/introspection": {
    put: tag(["vms"], "Set (or with null drop) how the monitor measures the VM (operator)", {
      parameters: [uuidParam],
      requestBody: body(nullable(ref("Introspection"))),
      responses: ok("the VM", ref("Vm")),
    }),
  },
  "/v1/vms/{uuid}/release": {
    post: tag(["vms"], "Release a quarantined VM; it stays paused (operator)", {
      parameters: [uuidParam],
      responses: ok("released", ref("Vm")),
    }),
  },
  "/v1/policies": {
    get: tag(["policies"], "The policy set in force (operator)", {
      responses: ok(
        "the set",
        obj({
          revision: nullable({ type: "string" }),
          params: { type: "object" },
          policies: { type: "array", items: ref("Policy") },
        }),
      ),
    }),
  },
  "/v1/policies/reload": {
    post: tag(["policies"], "Reload; any invalid file keeps the previous set (operator)", {
      responses: ok(
        "what happened",
        obj({
          ok: { type: "boolean" },
          revision: nullable({ type: "string" }),
          previous_revision: nullable({ type: "string" }),
          errors: { type: "array", items: { type: "object" } },
        }),
      ),
    }),
  },
  "/v1/policies/evaluate": {
    post: tag(["policies"], "Decide an event without recording or applying it (operator)", {
      requestBody: body(ref("Event")),
      responses: ok(
        "the decision",
        obj({
          dry_run: { const: true },
          allow: { type: "boolean" },
          reasons: { type: "array", items: ref("Reason") },
          actions: { type: "array", items: { type: "string" } },
          policy_revision: { type: "string" },
          transition: ref("Transition"),
          evaluated: { type: "array", items: { type: "string" } },
        }),
      ),
    }),
  },
  "/v1/audit": {
    get: tag(["audit"], "Audit records by VM and time (a tenant: vm= of its own VM)", {
      parameters: [
        query("vm", "VM UUID", uuid),
        query("from", "at or after", time),
        query("to", "before", time),
        query("cursor", "next_cursor of the previous page", { type: "integer" }),
        query("limit", "page size", { type: "integer", minimum: 1, maximum: 1000 }),
        query("result", "allow, deny, error or event"),
        query("order", "asc or desc", { enum: ["asc", "desc"] }),
      ],
      responses: ok(
        "a page",
        obj({
          records: { type: "array", items: ref("AuditRecord") },
          next_cursor: nullable({ type: "integer" }),
        }),
      ),
    }),
  },
  "/v1/audit/verify": {
    get: tag(["audit"], "Walk the hash chain and checkpoints (operator)", {
      responses: ok("the first problem, if any", obj({ ok: { type: "boolean" } })),
    }),
  },
};

/**
 * The OpenAPI 3.1 document of the API.
 *
 * @returns a fresh copy of the document
 */
export function openApiDocument(): Record<string, unknown> {
  return structuredClone({
    openapi: "3.1.0",
    info: {
      title: "vASP decision API",
      version: "1",
      description: "Decisions on VM life-cycle operations, VM records, policies and the audit " +
        "trail. Over the Unix socket no token is needed; over TCP a bearer token is required " +
        "on every route but /healthz. Roles: hook (decide, events), operator (everything), " +
        "tenant (read its own VMs, their measurements and audit).",
    },
    servers: [{ url: "http://127.0.0.1:8787" }],
    security: [{ bearer: [] }],
    paths: PATHS,
    components: {
      schemas: SCHEMAS,
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    },
  });
}
