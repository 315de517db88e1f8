/**
 * The one place where errors become HTTP answers: a stable code maps to a status, and the
 * body is always `{ "code", "message", "decision_id"? }`. Handlers only throw.
 *
 * @module
 */
import { type ErrorCode, errorStatus, isClientVisible, VaspError } from "../engine/error.ts";

/** An error answer's body. */
export interface ErrorBody {
  /** Stable code, e.g. `json_invalid`. */
  readonly code: string;
  /** What went wrong, for a human. */
  readonly message: string;
  /** The decision or event ID, on `/v1/decide` and `/v1/events`. */
  readonly decision_id?: string;
}

/** An error mapped to its answer. */
export interface MappedError {
  /** HTTP status. */
  readonly status: number;
  /** JSON body. */
  readonly body: ErrorBody;
}

/**
 * Maps any thrown value to a status and body. Only a {@link VaspError} with a listed code
 * shows its message; anything else is `internal_error` with a fixed message, so a stack
 * trace or an internal path never reaches a client.
 *
 * @param error what was thrown
 * @param decisionId the request's decision ID, if it has one
 * @returns status and body
 * @example
 * ```ts
 * import { VaspError } from "../engine/error.ts";
 * import { mapError } from "./errors.ts";
 * const { status } = mapError(new VaspError("vm_not_found", "No VM with UUID u"));
 * if (status !== 404) throw new Error(`status ${status}`);
 * ```
 */
export function mapError(error: unknown, decisionId?: string): MappedError {
  const known = isClientVisible(error);
  const code: ErrorCode = known ? error.code : "internal_error";
  const message = known ? error.message : "The server failed to answer; the error is in its log" +
    (decisionId ? ` under decision ${decisionId}` : "");
  return {
    status: errorStatus(code),
    body: { code, message, ...(decisionId ? { decision_id: decisionId } : {}) },
  };
}

/**
 * Whether an error means the store could not keep a record.
 *
 * @param error what was thrown
 * @returns true for the store's failure codes (answered 503)
 */
export function isStoreFailure(error: unknown): boolean {
  return error instanceof VaspError && errorStatus(error.code) === 503;
}

/**
 * A request error with a stable code.
 *
 * @param code an error code
 * @param message what is wrong, naming the offending value
 * @param details structured facts
 * @returns the error, to throw
 */
export function requestError(
  code: ErrorCode,
  message: string,
  details: Record<string, unknown> = {},
): VaspError {
  return new VaspError(code, message, { details });
}

/**
 * The answer for an error: JSON `{ code, message, decision_id? }` with its status, and
 * `WWW-Authenticate` on a 401.
 *
 * @param error what was thrown
 * @param decisionId the request's decision ID, if it has one
 * @returns the response
 */
export function errorResponse(error: unknown, decisionId?: string): Response {
  const { status, body } = mapError(error, decisionId);
  const headers: Record<string, string> = {};
  if (status === 401) headers["www-authenticate"] = 'Bearer realm="vasp"';
  return Response.json(body, { status, headers });
}
