/**
 * The error a failed libvasp call becomes.
 *
 * @module
 */

/** Stable codes for libvasp's return codes (`vasp_rc`), by value. */
const CODES: Record<number, string> = {
  1: "invalid_argument",
  2: "out_of_memory",
  3: "io_error",
  4: "crypto_error",
  5: "state_invalid",
  6: "auth_failed",
  7: "rollback_refused",
  8: "binding_mismatch",
  9: "not_found",
  10: "out_of_range",
  11: "page_walk_failed",
  12: "instance_destroyed",
  13: "socket_closed",
};

/** A libvasp failure, or a misuse of a binding (closed handle, failed load). */
export class NativeError extends Error {
  /** A stable string code, e.g. `rollback_refused`, `handle_closed`. */
  readonly code: string;
  /** The C return code, 0 when the error did not come from a C call. */
  readonly rc: number;

  /**
   * @param code stable string code
   * @param message what could not be done, with the offending value
   * @param options `cause`, and the C return code `rc`
   */
  constructor(code: string, message: string, options: ErrorOptions & { rc?: number } = {}) {
    super(message, { cause: options.cause });
    this.name = "NativeError";
    this.code = code;
    this.rc = options.rc ?? 0;
  }

  /**
   * The stable code for a C return code.
   *
   * @param rc a `vasp_rc` value
   * @returns its code, or `native_error` for a value this binding does not know
   */
  static codeFor(rc: number): string {
    return CODES[rc] ?? "native_error";
  }
}
