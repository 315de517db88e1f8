/**
 * The error a failed libvasp call becomes: a {@link VaspError} (one vocabulary, one type
 * guard) that also keeps the C return code. Native codes are mapped here, once.
 *
 * @module
 */
import { type ErrorCode, VaspError } from "../src/engine/error.ts";

/** Stable codes for libvasp's return codes (`vasp_rc`), by value. */
const CODES: Readonly<Record<number, ErrorCode>> = {
  1: "argument_invalid",
  2: "memory_exhausted",
  3: "io_failed",
  4: "crypto_failed",
  5: "state_invalid",
  6: "auth_failed",
  7: "rollback_refused",
  8: "binding_mismatch",
  9: "item_not_found",
  10: "value_out_of_range",
  11: "page_walk_failed",
  12: "instance_destroyed",
  13: "socket_closed",
};

/** A libvasp failure, or a misuse of a binding (closed handle, failed load). */
export class NativeError extends VaspError {
  /** The C return code, 0 when the error did not come from a C call. */
  readonly rc: number;

  /**
   * @param code stable string code
   * @param message what could not be done, with the offending value
   * @param options `cause`, and the C return code `rc`
   */
  constructor(code: ErrorCode, message: string, options: ErrorOptions & { rc?: number } = {}) {
    super(code, message, { cause: options.cause });
    this.name = "NativeError";
    this.rc = options.rc ?? 0;
  }

  /**
   * The stable code for a C return code.
   *
   * @param rc a `vasp_rc` value
   * @returns its code, or `native_failed` for a value this binding does not know
   */
  static codeFor(rc: number): ErrorCode {
    return CODES[rc] ?? "native_failed";
  }
}
