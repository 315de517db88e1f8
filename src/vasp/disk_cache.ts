/**
 * Content digests of what a start reads (disk images and boot files: firmware, kernel, initrd)
 * at every start, cheaply: a cache from a file's identity (device, inode, size, mtime and ctime
 * to the nanosecond) to the SHA-256 of its content (and its SM3, for the boot files vBoot
 * extends with both), kept in a file sealed by the ASP. An unchanged file costs one `stat(2)`;
 * a changed one is always hashed again (streamed by the native library, in constant memory).
 * docs/lifecycle.md, "Disk contents", says why this is sound.
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
  /** SM3, hex, when it was asked for; `""` when not. */
  readonly sm3: string;
  /** Hashed too close to its last change to be trusted again. */
  readonly racy: boolean;
}

/** A file's content digest, and how it was had. */
export interface DiskDigest {
  /** SHA-256 of the content, hex. */
  readonly sha256: string;
  /** SM3 of the content, hex, when asked for. */
  readonly sm3?: string;
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

const digests = (e: Entry) =>
  e.sm3 === "" ? { sha256: e.sha256 } : { sha256: e.sha256, sm3: e.sm3 };

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
  /** Counters in total (key `""`) and per path. */
  readonly #counts = new Map<string, { hits: number; hashed: number; bytesHashed: number }>();

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

  /**
   * The counters since the cache was opened.
   *
   * @param path one file's counters (while it has an entry); all files' without
   * @returns hits, files hashed, bytes hashed
   */
  stats(path = ""): DiskCacheStats {
    return { hits: 0, hashed: 0, bytesHashed: 0, ...this.#counts.get(path) };
  }

  #count(path: string, hit: boolean, bytes = 0): void {
    for (const key of ["", path]) {
      const c = this.#counts.get(key) ?? { hits: 0, hashed: 0, bytesHashed: 0 };
      if (hit) c.hits++;
      else (c.hashed++, c.bytesHashed += bytes);
      this.#counts.set(key, c);
    }
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
        const [path, dev, ino, size, mtime, ctime, sha256, sm3 = ""] = row as unknown[];
        if (
          typeof path !== "string" || typeof sha256 !== "string" ||
          !/^[0-9a-f]{64}$/.test(sha256) || typeof sm3 !== "string" ||
          !/^([0-9a-f]{64})?$/.test(sm3)
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
        this.#entries.set(path, { id, sha256, sm3, racy: false });
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
      e.sm3,
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
   * The SHA-256 (and SM3, when asked) of a file's content: from the cache when its identity is
   * the one it had when hashed, else streamed through the native library (and cached).
   *
   * @param path the file
   * @param options `sm3`: also its SM3 (an entry cached without it is hashed again)
   * @returns the digests, whether they were cached, and the identity
   * @throws {NativeError} `io_failed` when it cannot be stat'ed or read, or changed while read
   */
  async digest(path: string, options: { sm3?: boolean } = {}): Promise<DiskDigest> {
    const now = fileIdentity(path);
    const entry = this.#entries.get(path);
    if (entry && !entry.racy && sameId(entry.id, now) && (!options.sm3 || entry.sm3 !== "")) {
      this.#count(path, true);
      // Most recently used last, so the oldest go first when the cache is full.
      this.#entries.delete(path);
      this.#entries.set(path, entry);
      return { ...digests(entry), cached: true, identity: now };
    }
    const measured = await fileDigest(path, options);
    const sha256 = toHex(measured.sha256);
    const sm3 = measured.sm3 ? toHex(measured.sm3) : "";
    const id = measured.identity;
    this.#count(path, false, Number(id.size));
    const hashedAt = BigInt(this.#now()) * 1_000_000n;
    const latest = id.mtimeNs > id.ctimeNs ? id.mtimeNs : id.ctimeNs;
    this.#entries.delete(path);
    const hashed = { id, sha256, sm3, racy: hashedAt - latest < RACY_NS };
    this.#entries.set(path, hashed);
    while (this.#entries.size > MAX_ENTRIES) {
      const oldest = this.#entries.keys().next().value!;
      this.#entries.delete(oldest);
      this.#counts.delete(oldest);
    }
    this.#log?.log("info", "file hashed", { path, bytes: Number(id.size), sha256 });
    this.#save();
    return { ...digests(hashed), cached: false, identity: id };
  }
}
