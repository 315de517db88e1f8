/**
 * The schema vocabulary and the component schemas of the OpenAPI document.
 *
 * @module
 */
import { EVENT_SOURCES, LIFECYCLE_STATES, OPERATIONS } from "../engine/mod.ts";
import { ERROR_CODES } from "../engine/mod.ts";

/** A JSON Schema object. */
export type Schema = Record<string, unknown>;

/** A reference to a component schema. */
export const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
/** A string schema with a description. */
export const str = (description: string, extra: Schema = {}): Schema => ({
  type: "string",
  description,
  ...extra,
});
/** An object schema. */
export const obj = (properties: Record<string, Schema>, required: string[] = []): Schema => ({
  type: "object",
  properties,
  required,
});
/** A schema that also allows null. */
export const nullable = (schema: Schema): Schema => ({ oneOf: [schema, { type: "null" }] });
/** A lower-case UUID. */
export const uuid = str("lower-case UUID", { format: "uuid" });
/** An ISO 8601 time. */
export const time = str("ISO 8601 time", { format: "date-time" });

const EVENT_FIELDS = {
  operation: str("life-cycle operation", { enum: [...OPERATIONS] }),
  vm: obj({ uuid, name: str("libvirt domain name", { minLength: 1, maxLength: 256 }) }, [
    "uuid",
    "name",
  ]),
  source: str("who sends it", { enum: [...EVENT_SOURCES] }),
  phase: str("the source's step (prepare, reset …) or an outcome phase", { maxLength: 256 }),
  details: { type: "object", description: "operation-specific facts, as sent" },
};

const REASON = obj({
  policy: str("policy id (vasp.lifecycle, vasp.default for the built-in reasons)"),
  rule: str("rule name"),
  message: str("why, for a human"),
  effect: str("deny or warn", { enum: ["deny", "warn"] }),
}, ["policy", "rule", "message"]);

/** The component schemas, by name. */
export const SCHEMAS: Record<string, Schema> = {
  Error: obj({
    code: str("stable error code", { enum: Object.keys(ERROR_CODES) }),
    message: str("what went wrong, naming the offending value"),
    decision_id: str("the request's decision or event ID, on /v1/decide and /v1/events"),
  }, ["code", "message"]),
  Event: { ...obj(EVENT_FIELDS, ["operation", "vm", "source"]), additionalProperties: false },
  EventReport: {
    ...obj({
      ...EVENT_FIELDS,
      outcome: str("how the operation ended", { enum: ["completed", "failed"] }),
    }, ["operation", "vm", "source", "outcome"]),
    additionalProperties: false,
  },
  Reason: REASON,
  Transition: obj({ from: nullable(str("state before")), to: nullable(str("state after")) }),
  Decision: obj({
    decision_id: str("UUIDv7; the audit record carries it"),
    allow: { type: "boolean" },
    reasons: { type: "array", items: ref("Reason") },
    actions: {
      type: "array",
      items: str("asked action; the hook, gate or monitor enforces pause and kill", {
        enum: ["alert", "pause", "kill", "quarantine"],
      }),
    },
    policy_revision: str("git commit or sha256:<hex> of the policy set"),
    state: nullable(str("the VM's recorded state after the decision")),
    transition: ref("Transition"),
    vasp: {
      type: "object",
      description: "what the vASP side did: instance_id, counter (export counter of the " +
        "sealed state kept), created, vboot (entries extended), snapshot, imported, destroyed",
    },
  }, ["decision_id", "allow", "reasons", "actions", "policy_revision"]),
  EventAck: obj({
    event_id: str("UUIDv7; the audit record carries it"),
    state: str('the recorded state after the event ("unknown": unregistered)'),
    from: str("the recorded state before"),
    applied: { type: "boolean", description: "whether the recorded state followed the event" },
  }, ["event_id", "state"]),
  NewVm: {
    ...obj({
      uuid,
      name: str("libvirt domain name"),
      tenant: str('owning tenant; "" for the operator'),
      labels: { type: "object", additionalProperties: { type: "string" } },
      state: str("initial state (default defined)", { enum: [...LIFECYCLE_STATES] }),
      config_digest: str("sha256:<hex> of the VM's configuration: a vASP instance is bound to it"),
      domain_xml: str("the domain XML; its SHA-256 becomes the configuration digest"),
      introspection: ref("Introspection"),
    }, ["uuid", "name"]),
    additionalProperties: false,
  },
  Vm: obj({
    uuid,
    name: { type: "string" },
    tenant: { type: "string" },
    labels: { type: "object", additionalProperties: { type: "string" } },
    state: str("recorded life-cycle state", { enum: [...LIFECYCLE_STATES] }),
    binding: nullable(obj({
      instance_id: { type: "string" },
      config_digest: { type: "string" },
      sealed: { type: "boolean" },
      sealed_counter: { type: "integer" },
    })),
    introspection: nullable(ref("Introspection")),
    created_at: time,
    updated_at: time,
  }, ["uuid", "name", "tenant", "labels", "state", "created_at", "updated_at"]),
  Measurement: obj({
    region: { type: "string" },
    digest: str('measured digest, hex; "" when it could not be measured'),
    reference: nullable(str("the reference digest, hex")),
    status: str("", { enum: ["ok", "differs", "missing", "error"] }),
    time,
    detail: str("why it is not ok"),
  }),
  Introspection: {
    ...obj({
      memory: str("guest RAM file (memory-backend-file share=on)"),
      symbols: str("the guest kernel's System.map"),
      vmlinuz: str("the guest kernel's vmlinuz (normalises KASLR)"),
      qmp: str("QEMU's QMP socket: CR3, IDTR, profile facts; pause and kill go there"),
      interval_ms: { type: "integer", minimum: 100, description: "default 1000" },
      below_4g: { type: "integer", description: "bytes of RAM below the PCI hole" },
      qemu_version: str("profile fact without QMP"),
      cpu: str("profile fact without QMP"),
      smp: { type: "integer", description: "profile fact without QMP" },
    }, ["memory", "symbols"]),
    additionalProperties: false,
  },
  Quote: obj({
    vm_uuid: uuid,
    instance_id: str("the vASP instance, 32 hex digits"),
    alg: str("register bank", { enum: ["sha256", "sm3"] }),
    nonce: str("the nonce, hex"),
    quote: str("the quote, base64 (docs/quote-format.md)"),
    certificates: {
      type: "array",
      items: str("PEM"),
      description: "the signer first: instance, AK, EK; the manufacturer CA is not included",
    },
    event_log: {
      type: "array",
      items: obj({
        reg: { type: "integer" },
        sha256: str("digest of the extended data, hex"),
        sm3: str("digest of the extended data, hex"),
        description: { type: "string" },
      }),
    },
  }, ["vm_uuid", "instance_id", "alg", "nonce", "quote", "certificates", "event_log"]),
  AuditRecord: obj({
    seq: { type: "integer" },
    decision_id: { type: "string" },
    time,
    vm_uuid: { type: "string" },
    vm_name: { type: "string" },
    operation: { type: "string" },
    source: { type: "string" },
    input_digest: { type: "string" },
    policy_revision: { type: "string" },
    result: str("", { enum: ["allow", "deny", "error", "event"] }),
    reasons: { type: "array", items: { type: "object" } },
    actions: { type: "array", items: { type: "string" } },
    engine_latency_us: { type: "integer" },
    prev_hash: { type: "string" },
    hash: { type: "string" },
  }),
  Policy: obj({
    id: { type: "string" },
    description: { type: "string" },
    on: { type: "array", items: { type: "string" } },
    match: nullable(str("CEL match condition")),
    effect: str("", { enum: ["deny", "warn"] }),
    actions: { type: "array", items: { type: "string" } },
    rules: {
      type: "array",
      items: obj({
        name: { type: "string" },
        expr: { type: "string" },
        message: { type: "string" },
      }),
    },
  }),
};
