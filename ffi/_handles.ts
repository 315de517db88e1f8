/**
 * Ownership of native handles: an ASP and the instances that borrow it. A cell holds a
 * pointer until released; releasing the ASP releases its open instances first, because C
 * instances borrow the ASP and must never outlive it. FinalizationRegistry is a backstop for
 * handles nobody closed, never the way they are meant to be released.
 *
 * @module
 */
import { NativeError } from "./error.ts";
import { native } from "./loader.ts";

/** An open ASP handle and the cells of the instances borrowing it. */
export interface AspCell {
  ptr: Deno.PointerObject | null;
  readonly instances: Set<InstanceCell>;
}

/** An open instance handle and the ASP it borrows. */
export interface InstanceCell {
  ptr: Deno.PointerObject | null;
  readonly asp: AspCell;
}

/** Lets only the bindings construct classes that wrap a handle. */
export const ADOPT: unique symbol = Symbol("adopt a native handle");

/**
 * Takes the pointer out of an instance cell: afterwards the cell is closed.
 *
 * @returns the pointer, or null when the cell was already closed
 */
export function takeInstance(cell: InstanceCell): Deno.PointerObject | null {
  const ptr = cell.ptr;
  cell.ptr = null;
  cell.asp.instances.delete(cell);
  return ptr;
}

/** Closes an instance handle once; later calls do nothing. */
export function releaseInstance(cell: InstanceCell): void {
  const ptr = takeInstance(cell);
  if (ptr) native().vasp_instance_close(ptr);
}

/** Closes an ASP's open instances, then the ASP, once; later calls do nothing. */
export function releaseAsp(cell: AspCell): void {
  for (const child of [...cell.instances]) releaseInstance(child);
  const ptr = cell.ptr;
  cell.ptr = null;
  if (ptr) native().vasp_asp_close(ptr);
}

/** Backstop for ASP objects collected while open. */
export const aspFinalizer: FinalizationRegistry<AspCell> = new FinalizationRegistry(releaseAsp);
/** Backstop for instance objects collected while open. */
export const instanceFinalizer: FinalizationRegistry<InstanceCell> = new FinalizationRegistry(
  releaseInstance,
);

/**
 * The pointer of an open cell.
 *
 * @param cell the cell
 * @param what what was being done, for the message
 * @throws {NativeError} `handle_closed` when the cell was closed
 */
export function live(cell: { ptr: Deno.PointerObject | null }, what: string): Deno.PointerObject {
  if (cell.ptr === null) {
    throw new NativeError("handle_closed", `Cannot ${what}: the handle is closed`);
  }
  return cell.ptr;
}
