/**
 * The pieces every schema of the API shares: identifiers, times, the error body, and how a
 * failed check is told (the field and the offending value).
 *
 * @module
 */
import { z } from "zod";
import { ERROR_CODES } from "../engine/error.ts";

const UUID_TEXT = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** A UUID as the server writes it: lower-case `8-4-4-4-12` hex. */
export const Uuid = z.string().regex(
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
)
  .meta({ description: "lower-case UUID", format: "uuid" });

/** A UUID as a client may send it (any case); read as lower case. */
export const UuidInput = z.string().regex(UUID_TEXT, { error: "not a UUID" })
  .transform((s) => s.toLowerCase())
  .meta({ description: "a UUID (any case; read as lower case)", format: "uuid" });

/** An ISO 8601 time as the server writes it. */
export const Time = z.iso.datetime().meta({ description: "ISO 8601 time (UTC)" });

/** The body of every error answer. */
export const ErrorBody = z.object({
  code: z.string().meta({
    description: `stable error code (docs/api.md, "Errors"), e.g. ${
      Object.keys(ERROR_CODES).slice(0, 4).join(", ")
    }`,
  }),
  message: z.string().meta({ description: "what could not be done, naming the offending value" }),
  decision_id: z.string().optional().meta({
    description: "the request's decision or event ID, on /v1/decide and /v1/events",
  }),
}).meta({ id: "Error", description: "an error with a stable code" });
/** The body of every error answer. */
export type ErrorBody = z.infer<typeof ErrorBody>;

/** A failed check, told for a human: which field, and what is wrong with which value. */
export interface WireIssue {
  /** Dotted path of the field (`vm.uuid`, `labels.team`); `""` for the whole value. */
  readonly field: string;
  /** `Invalid <field> <value>: <what it must be>`. */
  readonly message: string;
}

function at(value: unknown, path: readonly PropertyKey[]): unknown {
  let here = value;
  for (const key of path) {
    if (typeof here !== "object" || here === null) return undefined;
    here = (here as Record<PropertyKey, unknown>)[key];
  }
  return here;
}

/**
 * Tells the first problem of a failed check: the field, the offending value (at most 120
 * characters of its JSON) and what the schema wants.
 *
 * @param error the schema's error
 * @param input what was checked
 * @param what the name of the whole value (`VM`, `query`)
 * @returns the field and the message
 * @example
 * ```ts
 * import { z } from "zod";
 * import { describeIssue } from "./common.ts";
 * const checked = z.strictObject({ n: z.number() }).safeParse({ n: "1" });
 * if (checked.success) throw new Error("a string is not a number");
 * const { field } = describeIssue(checked.error, { n: "1" }, "body");
 * if (field !== "n") throw new Error(field);
 * ```
 */
export function describeIssue(error: z.ZodError, input: unknown, what: string): WireIssue {
  const issue = error.issues[0];
  if (!issue) return { field: "", message: `Invalid ${what}` };
  const path = issue.path;
  const field = path.map(String).join(".");
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0] ?? "";
    const name = field ? `${field}.${key}` : key;
    return {
      field: name,
      message: `Invalid field ${JSON.stringify(name)}: not a field of the ${field || what}`,
    };
  }
  const value = JSON.stringify(at(input, path))?.slice(0, 120) ?? "undefined";
  return { field, message: `Invalid ${field || what} ${value}: ${issue.message}` };
}
