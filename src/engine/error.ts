/**
 * The one error vocabulary of vASP's TypeScript code: every domain failure is a
 * {@link VaspError} whose stable `code` comes from {@link ERROR_CODES}, the one table that
 * says each code's HTTP status and when it is used. Codes are named `<noun>_<condition>`
 * (`vm_not_found`, `policy_invalid`, `quote_malformed`); messages say what could not be done
 * and the offending value: `Cannot start VM "web-1": …`. Native failures become the same
 * class in ffi/ (`NativeError` extends it), so one type guard, {@link isVaspError}, serves.
 *
 * @module
 */

/** One code's entry: its HTTP status (500: never shown to a client) and when it is used. */
export interface ErrorCodeInfo {
  /** The HTTP status an API answer with this code gets; 500 hides the message. */
  readonly status: number;
  /** When the code is used. */
  readonly when: string;
}

/** Every error code, its status and when it is used. */
export const ERROR_CODES = {
  // Requests (HTTP 4xx)
  json_invalid: { status: 400, when: "a request body is not JSON" },
  event_invalid: {
    status: 400,
    when: "an event has wrong types, an unknown operation, source or field, a bad outcome",
  },
  request_invalid: { status: 400, when: "a bad VM body, path UUID, query parameter or option" },
  token_invalid: { status: 401, when: "no bearer token, or one the server does not know" },
  role_forbidden: { status: 403, when: "the caller's role may not do this" },
  route_not_found: { status: 404, when: "no such route" },
  vm_not_found: { status: 404, when: "no VM with that UUID or name" },
  token_not_found: { status: 404, when: "no token with that ID" },
  vm_exists: { status: 409, when: "a VM with that UUID is already registered" },
  peer_not_found: { status: 404, when: "no enrolled peer host of that name" },
  peer_exists: { status: 409, when: "a peer host of that name is enrolled already" },
  peer_invalid: { status: 400, when: "a peer's CA, EK, endpoint or name is not usable" },
  migration_not_found: { status: 404, when: "no outgoing migration with that ID is open" },
  migration_refused: {
    status: 409,
    when: "a VM's state may not go to the asking host (the decision's reasons say why)",
  },
  peer_store_failed: { status: 500, when: "the peer file cannot be read or written" },
  peer_unavailable: { status: 502, when: "a peer host did not answer, or not as it should" },
  vm_state_conflict: { status: 409, when: "the VM's state changed meanwhile" },
  transition_invalid: { status: 409, when: "the life cycle has no such step from this state" },
  vasp_instance_exists: { status: 409, when: "the VM already has a vASP instance" },
  vasp_instance_unavailable: { status: 409, when: "the VM's vASP instance cannot be used" },
  body_too_large: { status: 413, when: "a request body over the limit" },
  // The server cannot keep or reach what a decision needs: fail closed (HTTP 503)
  store_closed: { status: 503, when: "the store was closed" },
  store_open_failed: { status: 503, when: "the store cannot be opened" },
  store_corrupt: { status: 503, when: "the database fails its integrity check" },
  store_record_malformed: { status: 503, when: "a stored row does not decode" },
  audit_write_failed: { status: 503, when: "an audit record cannot be made durable" },
  audit_record_malformed: { status: 503, when: "a stored audit record does not decode" },
  policies_unavailable: { status: 503, when: "no policy set is loaded" },
  vasp_unavailable: { status: 503, when: "the server has no vASP side" },
  // Internal (HTTP 500: the message stays in the server's log)
  internal_error: { status: 500, when: "anything not foreseen; the log has the details" },
  context_invalid: { status: 500, when: "a decision context for another VM (a bug)" },
  audit_checkpoint_failed: { status: 500, when: "a checkpoint cannot be signed or written" },
  store_not_found: { status: 500, when: "a read-only store where none exists" },
  store_schema_too_new: { status: 500, when: "the database was made by a newer vASP" },
  store_schema_too_old: { status: 500, when: "the database needs a migration this build lacks" },
  token_store_failed: { status: 500, when: "the token file cannot be read or written" },
  key_unreadable: { status: 500, when: "a checkpoint key or certificate cannot be read" },
  ak_untrusted: { status: 500, when: "the ASP's AK chain does not lead to the trusted CA" },
  anchor_unreadable: {
    status: 500,
    when: "the ASP counter anchoring the audit log cannot be read",
  },
  // Command line and configuration
  usage_invalid: { status: 400, when: "a command-line flag or argument is missing or malformed" },
  policy_invalid: { status: 400, when: "a policy file does not parse, type-check or compile" },
  policy_source_unreadable: {
    status: 500,
    when: "the policy directory or git ref cannot be read",
  },
  server_unreachable: { status: 503, when: "the CLI cannot reach a running vasp serve" },
  socket_in_use: { status: 500, when: "another live server holds the Unix socket" },
  address_in_use: { status: 500, when: "the TCP address is taken" },
  demo_step_failed: { status: 500, when: "a demo step did not behave as expected" },
  io_failed: { status: 500, when: "a file cannot be read or written" },
  reference_missing: { status: 500, when: "no reference set for a guest's profile" },
  tool_missing: { status: 500, when: "a program vASP drives is not installed" },
  // Attestation
  certificate_malformed: { status: 400, when: "a certificate does not parse" },
  binding_malformed: { status: 400, when: "a binding extension does not parse" },
  // Guest introspection
  guest_read_failed: { status: 500, when: "guest memory cannot be read" },
  kaslr_not_found: { status: 500, when: "the kernel cannot be found in guest memory" },
  kernel_image_invalid: { status: 500, when: "a vmlinuz does not parse" },
  kernel_mapping_mismatch: { status: 500, when: "guest page tables disagree with System.map" },
  kernel_mismatch: { status: 500, when: "the guest runs another kernel build than the image" },
  relocations_invalid: { status: 500, when: "a vmlinuz's relocation table does not parse" },
  patch_sites_invalid: {
    status: 500,
    when: "a kernel image's patch-site tables do not parse or name bytes their kind cannot patch",
  },
  relocation_straddles: { status: 500, when: "a relocation crosses a region's edge" },
  symbols_invalid: { status: 500, when: "a System.map does not parse" },
  symbol_missing: { status: 500, when: "a symbol a region needs is not in System.map" },
  reference_invalid: { status: 500, when: "a reference set does not parse" },
  reference_mismatch: { status: 500, when: "a reference set is for another profile" },
  reference_refused: { status: 500, when: "a measurement with failures cannot be learned" },
  // Hypervisor
  domain_xml_invalid: { status: 400, when: "a libvirt domain XML is refused" },
  xml_invalid: { status: 400, when: "XML does not parse under the strict reader" },
  qmp_unreachable: { status: 500, when: "QEMU's QMP socket cannot be reached" },
  qmp_failed: { status: 500, when: "QEMU answered a QMP command with an error" },
  qmp_timeout: { status: 500, when: "QEMU did not answer in time" },
  qmp_closed: { status: 500, when: "QEMU closed the monitor" },
  qmp_protocol_violated: { status: 500, when: "QEMU's answer breaks the QMP protocol" },
  gate_listen_failed: { status: 500, when: "the QMP gate cannot listen" },
  upstream_unavailable: { status: 500, when: "the QMP gate cannot reach QEMU" },
  decision_unavailable: { status: 503, when: "a hook got no decision in time" },
  answer_malformed: { status: 502, when: "a client got an answer that does not fit its route" },
  // vASP instances
  vasp_import_unknown: { status: 500, when: "an import of an instance nobody exported" },
  // Native library (ffi/: NativeError), one per `vasp_rc` and binding misuse
  argument_invalid: { status: 500, when: "a native call got an invalid argument" },
  memory_exhausted: { status: 500, when: "the native library cannot allocate" },
  crypto_failed: { status: 500, when: "OpenSSL failed" },
  state_invalid: { status: 500, when: "the ASP state file is corrupt, foreign or unsafe" },
  auth_failed: { status: 500, when: "a sealed blob fails authentication" },
  rollback_refused: { status: 500, when: "a sealed state older than the newest export" },
  binding_mismatch: { status: 500, when: "a sealed state for another VM or ASP" },
  item_not_found: { status: 500, when: "no such counter, snapshot or instance in the ASP" },
  value_out_of_range: { status: 500, when: "an address or length outside the mapping" },
  page_walk_failed: { status: 500, when: "a guest virtual address does not translate" },
  instance_destroyed: { status: 500, when: "the vASP instance was destroyed" },
  quote_malformed: { status: 400, when: "a quote's bytes do not parse" },
  handle_closed: { status: 500, when: "a native handle was used after close" },
  socket_closed: { status: 500, when: "a native socket was shut down or its peer left" },
  handle_busy: { status: 500, when: "a native handle is in use by another call" },
  native_unloadable: { status: 500, when: "libvasp cannot be loaded or has another ABI" },
  native_failed: { status: 500, when: "a native return code this binding does not know" },
} as const satisfies Record<string, ErrorCodeInfo>;

/** A stable error code. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** The domain failure of vASP: a stable `code`, a message naming the offending value, a cause. */
export class VaspError extends Error {
  /** Stable, machine-readable code from {@link ERROR_CODES}. */
  readonly code: ErrorCode;
  /** Structured facts about the failure (file, line, VM…), safe to show a client. */
  readonly details: Readonly<Record<string, unknown>>;

  /**
   * @param code stable code
   * @param message what could not be done, and the offending value
   * @param options `cause`, and `details` for structured facts
   */
  constructor(
    code: ErrorCode,
    message: string,
    options: ErrorOptions & { details?: Record<string, unknown> } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "VaspError";
    this.code = code;
    this.details = options.details ?? {};
  }
}

/**
 * Whether `error` is a {@link VaspError} (of one of `codes`, when given).
 *
 * @param error what was thrown
 * @param codes the codes to accept (none: any)
 * @returns the type guard
 * @example
 * ```ts
 * import { isVaspError, VaspError } from "./error.ts";
 * const e: unknown = new VaspError("vm_not_found", "No VM with UUID u");
 * if (!isVaspError(e, "vm_not_found") || isVaspError(e, "vm_exists")) throw new Error();
 * ```
 */
export function isVaspError(error: unknown, ...codes: ErrorCode[]): error is VaspError {
  return error instanceof VaspError && (codes.length === 0 || codes.includes(error.code));
}

/**
 * The message of anything thrown, for a log line or a CLI error.
 *
 * @param error what was thrown
 * @returns its message (`String(error)` for a non-Error)
 */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * What was thrown, as an Error (a non-Error is wrapped).
 *
 * @param error what was thrown
 * @returns it, or an Error carrying its text
 */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * The message of anything thrown with its code, for a log line or a refusal:
 * `message [code]`.
 *
 * @param error what was thrown
 * @returns the text
 */
export function describeError(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return `${errorMessage(error)}${typeof code === "string" ? ` [${code}]` : ""}`;
}

/**
 * Whether a string is one of the codes (e.g. a code a server answered with).
 *
 * @param code what claims to be a code
 * @returns the type guard
 */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.hasOwn(ERROR_CODES, code);
}

/**
 * Whether an error may be shown to a client as it is: a {@link VaspError} whose code's status
 * is not 500 (an internal failure's message may name paths and stays in the log).
 *
 * @param error what was thrown
 * @returns the type guard
 */
export function isClientVisible(error: unknown): error is VaspError {
  return error instanceof VaspError && ERROR_CODES[error.code].status !== 500;
}

/**
 * The HTTP status of a code (500 for a code a client never sees).
 *
 * @param code an error code
 * @returns the status
 */
export function errorStatus(code: ErrorCode): number {
  return ERROR_CODES[code].status;
}
