/**
 * The one error class of vASP's TypeScript code: a stable string code, a message that names
 * the offending value, and the cause kept.
 *
 * @module
 */

/** A domain failure with a stable `code` (`policy_compile_error`, `vm_not_found`, …). */
export class VaspError extends Error {
  /** Stable, machine-readable code; HTTP maps it to a status. */
  readonly code: string;
  /** Structured facts about the failure (file, line, VM…), safe to show a client. */
  readonly details: Readonly<Record<string, unknown>>;

  /**
   * @param code stable string code
   * @param message what could not be done, and the offending value
   * @param options `cause`, and `details` for structured facts
   */
  constructor(
    code: string,
    message: string,
    options: ErrorOptions & { details?: Record<string, unknown> } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "VaspError";
    this.code = code;
    this.details = options.details ?? {};
  }
}

/** Status of each code a client can see; a code not listed is an internal error. */
export const ERROR_STATUS: Readonly<Record<string, number>> = {
  invalid_json: 400,
  invalid_event: 400,
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  vm_not_found: 404,
  vm_exists: 409,
  vm_state_conflict: 409,
  invalid_transition: 409,
  vasp_instance_exists: 409,
  vasp_instance_unavailable: 409,
  body_too_large: 413,
  internal_error: 500,
  // The store cannot keep a record: fail closed, and say it may pass.
  store_closed: 503,
  store_open_failed: 503,
  store_corrupt: 503,
  audit_write_failed: 503,
  store_record_malformed: 503,
  audit_record_malformed: 503,
  policies_unavailable: 503,
  vasp_unavailable: 503,
};
