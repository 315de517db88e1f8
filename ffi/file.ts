/**
 * Streamed file measurement in libvasp: a file's identity (device, inode, size, mtime and
 * ctime to the nanosecond) and its digests, read in constant memory whatever its size.
 *
 * @module
 */
import { check, cstr } from "./_util.ts";
import { NativeError } from "./error.ts";
import { DIGEST_LEN } from "./hash.ts";
import { native } from "./loader.ts";

/** What changes when a file's content can have changed (`vasp_file_id`). */
export interface FileIdentity {
  /** Device of the file system. */
  readonly dev: bigint;
  /** Inode number. */
  readonly ino: bigint;
  /** Size in bytes. */
  readonly size: bigint;
  /** Modification time, nanoseconds since the epoch. */
  readonly mtimeNs: bigint;
  /** Status change time, nanoseconds since the epoch (set by the kernel on every change). */
  readonly ctimeNs: bigint;
}

/** A file's digests and the identity it had while it was read. */
export interface FileDigest {
  /** SHA-256 of the content. */
  readonly sha256: Uint8Array<ArrayBuffer>;
  /** SM3 of the content, when asked for. */
  readonly sm3?: Uint8Array<ArrayBuffer>;
  /** The file's identity, unchanged from open to end of read. */
  readonly identity: FileIdentity;
}

const ID_BYTES = 56;

function identity(out: Uint8Array<ArrayBuffer>): FileIdentity {
  const v = new DataView(out.buffer);
  const ns = (at: number) => v.getBigInt64(at, true) * 1_000_000_000n + v.getBigInt64(at + 8, true);
  return {
    dev: v.getBigUint64(0, true),
    ino: v.getBigUint64(8, true),
    size: v.getBigUint64(16, true),
    mtimeNs: ns(24),
    ctimeNs: ns(40),
  };
}

/**
 * The identity of a regular file (symlinks followed): one `stat(2)`.
 *
 * @param path the file
 * @returns its identity
 * @throws {NativeError} `io_failed` when it cannot be stat'ed or is not a regular file
 */
export function fileIdentity(path: string): FileIdentity {
  const out = new Uint8Array(ID_BYTES);
  check(native().vasp_file_stat(cstr(path), out), null, `Cannot stat "${path}"`);
  return identity(out);
}

/**
 * Streams a regular file through SHA-256 (and SM3 when asked) on a library thread, in
 * constant memory.
 *
 * @param path the file
 * @param options `sm3`: also compute SM3 (halves the speed; for the small boot files)
 * @returns the digests and the identity the file had while read
 * @throws {NativeError} `io_failed` when it cannot be read or changed while it was read
 */
export async function fileDigest(
  path: string,
  options: { sm3?: boolean } = {},
): Promise<FileDigest> {
  const sha256 = new Uint8Array(DIGEST_LEN);
  const sm3 = options.sm3 ? new Uint8Array(DIGEST_LEN) : null;
  const out = new Uint8Array(ID_BYTES);
  const msg = new Uint8Array(512);
  const rc = await native().vasp_file_digest(cstr(path), sha256, sm3, out, msg, BigInt(msg.length));
  if (rc !== 0) {
    // The library's thread-local message is the worker thread's: it wrote it to `msg` too.
    const detail = new TextDecoder().decode(msg.subarray(0, msg.indexOf(0)));
    throw new NativeError(NativeError.codeFor(rc), `Cannot measure "${path}": ${detail}`, { rc });
  }
  return { sha256, ...(sm3 ? { sm3 } : {}), identity: identity(out) };
}
