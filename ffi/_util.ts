/**
 * Helpers private to the bindings: C strings, out-parameters, error checks, and copying
 * library-owned buffers into JavaScript.
 *
 * @module
 */
import { NativeError } from "./error.ts";
import { native } from "./loader.ts";

const encoder = new TextEncoder();

/**
 * A NUL-terminated UTF-8 copy of `s` for a `const char *` parameter.
 *
 * @throws {TypeError} when `s` contains a NUL character
 */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  if (s.includes("\0")) {
    throw new TypeError(`String contains a NUL character: ${JSON.stringify(s)}`);
  }
  const bytes = new Uint8Array(encoder.encode(s).length + 1);
  encoder.encodeInto(s, bytes);
  return bytes;
}

/** The library's message for the last failure on `handle` (null: the thread's). */
export function errmsg(handle: Deno.PointerValue): string {
  const p = native().vasp_errmsg(handle);
  return p === null ? "" : new Deno.UnsafePointerView(p).getCString();
}

/**
 * Turns a return code into an error carrying the library's message.
 *
 * @param rc the C return code
 * @param handle the handle the call took, or null for handle-less calls
 * @param what what was being done, e.g. `Cannot import vASP state for VM "…"`
 * @throws {NativeError} when rc is not 0
 */
export function check(rc: number, handle: Deno.PointerValue, what: string): void {
  if (rc === 0) return;
  const detail = errmsg(handle);
  throw new NativeError(NativeError.codeFor(rc), detail ? `${what}: ${detail}` : what, { rc });
}

/** An out-parameter slot for a pointer or size_t or uint64_t. */
export function outSlot(): BigUint64Array<ArrayBuffer> {
  return new BigUint64Array(1);
}

/** The pointer value written to an out slot. */
export function slotPointer(slot: BigUint64Array): Deno.PointerValue {
  return Deno.UnsafePointer.create(slot[0]);
}

/**
 * Copies a library-allocated buffer (pointer and length slots filled by a call) into a fresh
 * Uint8Array and releases the original with `vasp_free()`, also on failure.
 */
export function takeBuffer(
  ptrSlot: BigUint64Array,
  lenSlot: BigUint64Array,
): Uint8Array<ArrayBuffer> {
  const ptr = slotPointer(ptrSlot);
  try {
    if (ptr === null) return new Uint8Array(0);
    const len = Number(lenSlot[0]);
    const copy = new Uint8Array(len);
    if (len > 0) copy.set(new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(ptr, len)));
    return copy;
  } finally {
    native().vasp_free(ptr);
  }
}
