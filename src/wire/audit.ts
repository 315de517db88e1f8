/**
 * The audit routes' shapes: a query by VM and time, a page of records, and the chain check.
 *
 * @module
 */
import { z } from "zod";
import { Time, UuidInput } from "./common.ts";

const Integer = (min: number, max: number) =>
  z.string().regex(/^\d{1,16}$/, { error: `${min} to ${max}` }).transform(Number)
    .pipe(
      z.number().int().min(min, { error: `${min} to ${max}` }).max(max, {
        error: `${min} to ${max}`,
      }),
    );
const At = z.string().refine((s) => !Number.isNaN(Date.parse(s)), "not an ISO 8601 time")
  .transform((s) => new Date(s));

/** The results an audit record can have. */
export const AUDIT_RESULTS = ["allow", "deny", "error", "event"] as const;

/** The query of `GET /v1/audit`. */
export const AuditQuery = z.strictObject({
  vm: UuidInput.optional().meta({ description: "VM UUID (a tenant must give one of its own)" }),
  from: At.optional().meta({ description: "at or after (ISO 8601)" }),
  to: At.optional().meta({ description: "before (ISO 8601)" }),
  cursor: Integer(0, Number.MAX_SAFE_INTEGER).optional().meta({
    description: "next_cursor of the previous page",
  }),
  limit: Integer(1, 1000).optional().meta({ description: "page size, 1 to 1000" }),
  result: z.enum(AUDIT_RESULTS).optional(),
  order: z.enum(["asc", "desc"]).optional(),
});
/** The query of `GET /v1/audit`, as sent. */
export type AuditQuery = z.input<typeof AuditQuery>;

/** An audit record as answered, with the field names of the hash chain's body. */
export const AuditRecord = z.object({
  seq: z.number().int(),
  decision_id: z.string(),
  time: Time,
  vm_uuid: z.string(),
  vm_name: z.string(),
  operation: z.string(),
  source: z.string(),
  input_digest: z.string(),
  policy_revision: z.string(),
  result: z.enum(AUDIT_RESULTS),
  reasons: z.array(
    z.looseObject({
      policy: z.string(),
      rule: z.string(),
      message: z.string(),
      effect: z.string().optional(),
    }).meta({ description: "a reason as recorded; event records add from and to" }),
  ),
  actions: z.array(z.string()),
  engine_latency_us: z.number(),
  prev_hash: z.string(),
  hash: z.string(),
}).meta({ id: "AuditRecord" });
/** An audit record as answered. */
export type AuditRecord = z.infer<typeof AuditRecord>;

/** The answer of `GET /v1/audit`. */
export const AuditPage = z.object({
  records: z.array(AuditRecord),
  next_cursor: z.number().int().nullable().meta({ description: "null: the last page" }),
}).meta({ id: "AuditPage" });
/** The answer of `GET /v1/audit`. */
export type AuditPage = z.infer<typeof AuditPage>;

/** The answer of `GET /v1/audit/verify`. */
export const AuditVerification = z.object({
  ok: z.boolean(),
  recordsChecked: z.number().int(),
  checkpointsChecked: z.number().int(),
  lastCheckpointSeq: z.number().int().nullable(),
  recordsAfterLastCheckpoint: z.number().int(),
  signatureKey: z.enum(["given", "recorded", "none"]),
  problem: z.object({ seq: z.number().int(), kind: z.string(), message: z.string() }).nullable(),
  anchor: z.object({
    counter: z.number().int().meta({ description: "the ASP's audit counter, read first" }),
    checkpointCounter: z.number().int().nullable(),
    checkpointSeq: z.number().int().nullable(),
    status: z.enum(["matches", "ahead", "behind"]),
  }).nullable().meta({
    description: "the newest checkpoint against the ASP counter that anchors the log " +
      "(docs/audit.md); behind: its tail was cut or it is an older copy",
  }),
}).meta({ id: "AuditVerification", description: "the first problem of the chain, if any" });
/** The answer of `GET /v1/audit/verify`. */
export type AuditVerification = z.infer<typeof AuditVerification>;
