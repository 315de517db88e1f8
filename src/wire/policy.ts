/**
 * The policy routes' shapes: the set in force, a reload's outcome, and a dry run.
 *
 * @module
 */
import { z } from "zod";
import { Actions, Reason, Transition } from "./decision.ts";

/** A policy as `GET /v1/policies` shows it. */
export const Policy = z.object({
  id: z.string(),
  description: z.string(),
  on: z.array(z.string()).meta({ description: "operations it applies to" }),
  match: z.string().nullable().meta({ description: "CEL match condition" }),
  effect: z.enum(["deny", "warn"]),
  actions: Actions,
  rules: z.array(z.object({ name: z.string(), expr: z.string(), message: z.string() })),
}).meta({ id: "Policy" });
/** A policy as shown. */
export type Policy = z.infer<typeof Policy>;

/** The answer of `GET /v1/policies`. */
export const PolicyList = z.object({
  revision: z.string().nullable().meta({ description: "null: no set has loaded" }),
  params: z.record(z.string(), z.unknown()).meta({ description: "the set's parameters" }),
  policies: z.array(Policy),
}).meta({ id: "PolicyList" });
/** The answer of `GET /v1/policies`. */
export type PolicyList = z.infer<typeof PolicyList>;

/** The answer of `POST /v1/policies/reload`. */
export const PolicyReload = z.object({
  ok: z.boolean().meta({ description: "whether the new set is in force" }),
  revision: z.string().nullable(),
  previous_revision: z.string().nullable(),
  errors: z.array(z.object({
    file: z.string().optional(),
    line: z.number().int().optional(),
    column: z.number().int().optional(),
    message: z.string(),
  })).meta({ description: "every problem; the previous set stays in force when any" }),
}).meta({ id: "PolicyReload" });
/** The answer of `POST /v1/policies/reload`. */
export type PolicyReload = z.infer<typeof PolicyReload>;

/** The answer of `POST /v1/policies/evaluate`: a decision neither recorded nor applied. */
export const DryRun = z.object({
  dry_run: z.literal(true),
  allow: z.boolean(),
  reasons: z.array(Reason),
  actions: Actions,
  policy_revision: z.string(),
  transition: Transition,
  evaluated: z.array(z.string()).meta({ description: "the policies that matched" }),
}).meta({ id: "DryRun" });
/** The answer of `POST /v1/policies/evaluate`. */
export type DryRun = z.infer<typeof DryRun>;
