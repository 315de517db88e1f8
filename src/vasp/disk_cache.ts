/**
 * Disk content digests at every start, cheaply: a cache from a file's identity (device, inode,
 * size, mtime and ctime to the nanosecond) to the SHA-256 of its content, kept in a file sealed
 * by the ASP. An unchanged image costs one `stat(2)`; a changed one is always hashed again
 * (streamed by the native library, in constant memory). docs/lifecycle.md, "Disk contents",
 * says why this is sound.
 *
 * @module
 */
import { join } from "node:path";
import { type Asp, fileDigest, type FileIdentity, fileIdentity } from "../../ffi/mod.ts";
import { toHex } from "../codec/mod.ts";
import { describeError, type Logger } from "../engine/mod.ts";

/** The sealed cache's file name in the state directory. */
export const DISK_CACHE_FILE = "disk-digests.sealed";
/** Authenticated data of the sealed cache: a blob sealed for anything else does not open. */
const AAD = new TextEncoder().encode("vasp-disk-digests-v1");
/**
 * An entry whose mtime or ctime is this close to when it was hashed is not trusted later:
 * Linux stamps files from a coarse clock (one tick, 1 to 10 ms), so a write just after the
 * hash can leave every field of the identity as it was (git's "racy" entries). Such an entry
 * is hashed again at its next use, when it is old enough to be trusted.
 */
export const DISK_CACHE_RACY_MS = 1000;
const RACY_NS = BigInt(DISK_CACHE_RACY_MS) * 1_000_000n;
/** At most this many entries are kept (the least recently used go first). */
const MAX_ENTRIES = 4096;

interface Entry {
  readonly id: FileIdentity;
  readonly sha256: string;
  /** Hashed too close to its last change to be trusted again. */
  readonly racy: boolean;
}

/** A disk's content digest, and how it was had. */
export interface DiskDigest {
  /** SHA-256 of the content, hex. */
  readonly sha256: string;
  /** Whether it came from the cache (the file was not read). */
  readonly cached: boolean;
  /** The identity the file had. */
  readonly identity: FileIdentity;
}

/** Counters of a {@link DiskCache}, for the metrics and the tests. */
export interface DiskCacheStats {
  /** Digests served from the cache. */
  readonly hits: number;
  /** Files hashed. */
  readonly hashed: number;
  /** Bytes hashed. */
  readonly bytesHashed: number;
}

function sameId(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs &&
    a.ctimeNs === b.ctimeNs;
}

const big = (v: unknown) => {
  if (typeof v !== "string" || !/^-?\d{1,24}$/.test(v)) throw new Error("not an integer");
  return BigInt(v);
};

/** The cache; one per server, its file in the ASP's state directory. */
export class DiskCache {
  readonly #asp: Asp | undefined;
  readonly #path: string | undefined;
  readonly #log: Logger | undefined;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  #hits = 0;
  #hashed = 0;
  #bytes = 0;

  /**
   * Opens the cache, reading its sealed file when there is one. A file the ASP refuses (altered,
   * another ASP's) or that does not parse is logged and ignored: every disk is hashed again.
   *
   * @param asp the ASP that seals the file; without it the cache lives in memory only
   * @param options `log`; `now` (ms since the epoch, for the racy check)
   */
  constructor(asp?: Asp, options: { log?: Logger; now?: () => number } = {}) {
    this.#asp = asp;
    this.#path = asp ? join(asp.stateDir, DISK_CACHE_FILE) : undefined;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.#load();
  }

  /** The counters since the cache was opened. */
  get stats(): DiskCacheStats {
    return { hits: this.#hits, hashed: this.#hashed, bytesHashed: this.#bytes };
  }

  #load(): void {
    if (!this.#path || !this.#asp) return;
    let blob: Uint8Array;
    try {
      blob = Deno.readFileSync(this.#path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) this.#refused(describeError(error));
      return;
    }
    try {
      const text = new TextDecoder().decode(this.#asp.unseal(blob, { aad: AAD }));
      const rows = JSON.parse(text) as unknown;
      if (!Array.isArray(rows)) throw new Error("not a list");
      for (const row of rows) {
        const [path, dev, ino, size, mtime, ctime, sha256] = row as unknown[];
        if (
          typeof path !== "string" || typeof sha256 !== "string" || !/^[0-9a-f]{64}$/.test(sha256)
        ) {
          throw new Error("malformed entry");
        }
        const id = {
          dev: big(dev),
          ino: big(ino),
          size: big(size),
          mtimeNs: big(mtime),
          ctimeNs: big(ctime),
        };
        this.#entries.set(path, { id, sha256, racy: false });
      }
    } catch (error) {
      this.#entries.clear();
      this.#refused(describeError(error));
    }
  }

  #refused(why: string): void {
    this.#log?.log(
      "error",
      `The sealed disk digest cache ${this.#path} was refused (${why}); every disk is hashed again`,
      { path: this.#path },
    );
  }

  #save(): void {
    if (!this.#path || !this.#asp) return;
    const rows = [...this.#entries].filter(([, e]) => !e.racy).map(([path, e]) => [
      path,
      String(e.id.dev),
      String(e.id.ino),
      String(e.id.size),
      String(e.id.mtimeNs),
      String(e.id.ctimeNs),
      e.sha256,
    ]);
    const sealed = this.#asp.seal(new TextEncoder().encode(JSON.stringify(rows)), { aad: AAD });
    const tmp = `${this.#path}.tmp-${crypto.randomUUID()}`;
    try {
      Deno.writeFileSync(tmp, sealed, { mode: 0o600 });
      Deno.renameSync(tmp, this.#path);
    } catch (error) {
      // The cache is an optimisation: failing to keep it costs a hash at the next start.
      this.#log?.log(
        "warn",
        `Cannot keep the disk digest cache ${this.#path}: ${describeError(error)}`,
      );
      try {
        Deno.removeSync(tmp);
      } catch { /* it was not written */ }
    }
  }

  /**
   * The SHA-256 of a disk image's content: from the cache when its identity is the one it had
   * when hashed, else streamed through the native library (and cached).
   *
   * @param path the image
   * @returns the digest, whether it was cached, and the identity
   * @throws {NativeError} `io_failed` when it cannot be stat'ed or read, or changed while read
   */
  async digest(path: string): Promise<DiskDigest> {
    const now = fileIdentity(path);
    const entry = this.#entries.get(path);
    if (entry && !entry.racy && sameId(entry.id, now)) {
      this.#hits++;
      // Most recently used last, so the oldest go first when the cache is full.
      this.#entries.delete(path);
      this.#entries.set(path, entry);
      return { sha256: entry.sha256, cached: true, identity: now };
    }
    const measured = await fileDigest(path);
    const sha256 = toHex(measured.sha256);
    const id = measured.identity;
    this.#hashed++;
    this.#bytes += Number(id.size);
    const hashedAt = BigInt(this.#now()) * 1_000_000n;
    const latest = id.mtimeNs > id.ctimeNs ? id.mtimeNs : id.ctimeNs;
    this.#entries.delete(path);
    this.#entries.set(path, { id, sha256, racy: hashedAt - latest < RACY_NS });
    while (this.#entries.size > MAX_ENTRIES) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
    this.#log?.log("info", "disk hashed", { path, bytes: Number(id.size), sha256 });
    this.#save();
    return { sha256, cached: false, identity: id };
  }
}
