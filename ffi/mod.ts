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
  type RegionTag,
  type WalkOptions,
} from "./guest.ts";
export { MAC_LEN, macBatch } from "./mac.ts";
export { Asp, type AspCertKind, type AspOpenOptions } from "./asp.ts";
export { type ExportedInstance, VaspInstance } from "./instance.ts";
export { type QuoteOptions } from "./_registers.ts";
export { parseQuote, type Quote, QUOTE_MAGIC, QUOTE_SIGNATURE_LEN } from "./quote.ts";
export { type EventLogEntry, parseEventLog } from "./event_log.ts";
export {
  closeFd,
  type FdKind,
  fdKind,
  Lane,
  type LaneNote,
  type Received,
  UnixSocket,
} from "./unix_socket.ts";
export { type FileDigest, fileDigest, type FileIdentity, fileIdentity } from "./file.ts";
