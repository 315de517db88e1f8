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
