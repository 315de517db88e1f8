/**
 * The operational routes' shapes: liveness and readiness.
 *
 * @module
 */
import { z } from "zod";

/** The answer of `GET /healthz`. */
export const Health = z.object({ status: z.literal("ok") }).meta({ id: "Health" });
/** The answer of `GET /healthz`. */
export type Health = z.infer<typeof Health>;

/** The answer of `GET /v1/status`: what `vasp status` shows of the running server. */
export const Status = z.object({
  asp_id: z.string().nullable(),
  policy_revision: z.string().nullable(),
  host: z.object({
    asp: z.string(),
    measured_at: z.string().meta({ description: "when the ASP last measured the host" }),
    expected_recorded: z.boolean(),
    all_match: z.boolean(),
    files: z.array(z.object({
      name: z.string(),
      digest: z.string(),
      expected: z.string().nullable(),
      ok: z.boolean(),
    })),
  }).nullable(),
  vms: z.record(z.string(), z.number().int()).meta({ description: "VMs by life-cycle state" }),
}).meta({ id: "Status" });
/** The answer of `GET /v1/status`. */
export type Status = z.infer<typeof Status>;

/** The answer of `GET /readyz` (200 when ready, 503 when not). */
export const Readiness = z.object({
  ready: z.boolean(),
  checks: z.object({ store: z.boolean(), policies: z.boolean(), asp: z.boolean() }),
  policy_revision: z.string().nullable(),
  asp_id: z.string().nullable(),
  code: z.literal("not_ready").optional(),
  message: z.string().optional().meta({ description: "which checks fail" }),
}).meta({ id: "Readiness" });
/** The answer of `GET /readyz`. */
export type Readiness = z.infer<typeof Readiness>;
