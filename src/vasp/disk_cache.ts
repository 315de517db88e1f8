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
 * An entry whose mtime or ctime is this close to when its hash began is not trusted later: a
 * file system stamps files from a coarse clock, so a write just after the hash began can leave
 * every field of the identity as it was (git's "racy" entries). Such an entry is hashed again
 * at its next use, when it is old enough to be trusted. This margin holds for file systems
 * that keep whole seconds; {@link DISK_CACHE_RACY_FINE_MS} for those with finer stamps.
 */
export const DISK_CACHE_RACY_MS = 1000;
/**
 * The racy margin for a file whose stamps have a fraction of a second (ext4, xfs, btrfs,
 * tmpfs: nanoseconds, from the kernel's coarse clock, one tick of 1 to 10 ms): five ticks and
 * more. A file whose mtime and ctime both fall on a whole second is taken to be on a file
 * system that keeps seconds only (one in a billion from a fine one: it waits a second).
 */
export const DISK_CACHE_RACY_FINE_MS = 50;
const SECOND_NS = 1_000_000_000n;

/** How long after its last change a file with identity `id` can be hashed and trusted. */
function racyMarginNs(id: FileIdentity): bigint {
  const whole = id.mtimeNs % SECOND_NS === 0n && id.ctimeNs % SECOND_NS === 0n;
  return BigInt(whole ? DISK_CACHE_RACY_MS : DISK_CACHE_RACY_FINE_MS) * 1_000_000n;
}

const latestChange = (id: FileIdentity) => id.mtimeNs > id.ctimeNs ? id.mtimeNs : id.ctimeNs;
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
  /** Hashes under way, by path: a second asker waits for the first. */
  readonly #inflight = new Map<string, Promise<unknown>>();
  /** Hashes scheduled by {@linkcode warm}. */
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>();
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

  /** The entry for `path` when it holds for identity `id` and has the digests asked for. */
  #trusted(path: string, id: FileIdentity, options: { sm3?: boolean }): Entry | undefined {
    const entry = this.#entries.get(path);
    return entry && !entry.racy && sameId(entry.id, id) && (!options.sm3 || entry.sm3 !== "")
      ? entry
      : undefined;
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
    // The same file being hashed (a warm-up, another start): its result may serve this one.
    // (Looked up without awaiting when there is none: the check and the hash's registration
    // below then happen in one turn, so that a second asker finds it.)
    const pending = this.#inflight.get(path);
    if (pending) await pending.catch(() => {});
    const now = fileIdentity(path);
    const entry = this.#trusted(path, now, options);
    if (entry) {
      this.#count(path, true);
      // Most recently used last, so the oldest go first when the cache is full.
      this.#entries.delete(path);
      this.#entries.set(path, entry);
      return { ...digests(entry), cached: true, identity: now };
    }
    // Racy is judged from when the read began: a write during the read in the tick of the
    // last change would leave the identity as it was.
    const began = BigInt(this.#now()) * 1_000_000n;
    const hashing = fileDigest(path, options);
    this.#inflight.set(path, hashing);
    let measured;
    try {
      measured = await hashing;
    } finally {
      if (this.#inflight.get(path) === hashing) this.#inflight.delete(path);
    }
    const sha256 = toHex(measured.sha256);
    const sm3 = measured.sm3 ? toHex(measured.sm3) : "";
    const id = measured.identity;
    this.#count(path, false, Number(id.size));
    this.#entries.delete(path);
    const hashed = { id, sha256, sm3, racy: began - latestChange(id) < racyMarginNs(id) };
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

  /**
   * Hashes a file in the background once it can be trusted (past the racy margin after its
   * last change), so that the next start finds it cached: libvirt changes the owner of a
   * domain's boot files and disks at every start and puts it back at every stop, and each
   * change of owner is a new ctime, which the cache must not look past. A warm-up already
   * scheduled for the file is replaced; failures are logged.
   *
   * @param path the file
   * @param options `sm3`: also its SM3
   */
  warm(path: string, options: { sm3?: boolean } = {}): void {
    let id: FileIdentity;
    try {
      id = fileIdentity(path);
    } catch {
      return; // Gone or unreadable: the next start says so.
    }
    const due = latestChange(id) + racyMarginNs(id) - BigInt(this.#now()) * 1_000_000n;
    clearTimeout(this.#timers.get(path));
    const timer = setTimeout(() => {
      this.#timers.delete(path);
      if (this.#trusted(path, id, options)) return;
      this.digest(path, options).catch((error) =>
        this.#log?.log("warn", `Cannot hash ${path} ahead of its next use: ${describeError(error)}`)
      );
    }, due > 0n ? Number(due / 1_000_000n) + 1 : 0);
    Deno.unrefTimer(timer);
    this.#timers.set(path, timer);
  }

  /** Cancels the warm-ups not yet begun. */
  close(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  /** Same as {@linkcode close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
