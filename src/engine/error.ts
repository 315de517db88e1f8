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
