/**
 * Deno FFI bindings to libvasp: the only code that opens the library or touches pointers.
 *
 * @module
 */
export { ABI_VERSION, libraryPath, native } from "./loader.ts";
export { NativeError } from "./error.ts";
export { algValue, DIGEST_LEN, hash, HashAlg, type HashAlgName, hashBatch } from "./hash.ts";
export {
  GuestMemory,
  type GuestRegion,
  type PagingLevels,
  type RegionResult,
  type WalkOptions,
} from "./guest.ts";
