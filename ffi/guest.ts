/**
 * A guest's RAM read from the host: guest-physical reads, x86-64 page walks, and batched
 * measurement (SHA-256/SM3) and keyed change detection (GMAC) of many regions in one call
 * that runs off the main thread.
 *
 * @module
 */
import { check, cstr, errmsg, outSlot, slotPointer } from "./_util.ts";
import { NativeError } from "./error.ts";
import { algValue, DIGEST_LEN, type HashAlgName } from "./hash.ts";
import { native } from "./loader.ts";
import { MAC_LEN } from "./mac.ts";

/** One region to measure. */
export interface GuestRegion {
  /** Guest-physical address, or guest-virtual when `virtual` is set. */
  addr: bigint;
  /** Length in bytes (1 B to 1 GiB; the library refuses the rest per region). */
  len: number;
  /** Whether `addr` is guest-virtual (translated with the `cr3` given to `measure()`). */
  virtual?: boolean;
  /** Hash algorithm, `sha256` by default. */
  alg?: HashAlgName;
}

/** The outcome for one region: a digest, or the error that region met. */
export interface RegionResult {
  /** The 32-byte digest, or null when the region failed. */
  digest: Uint8Array | null;
  /** Why the region failed, or null. */
  error: NativeError | null;
}

/** The outcome of MACing one region: a tag, or the error that region met. */
export interface RegionTag {
  /** The 16-byte tag, or null when the region failed. */
  tag: Uint8Array | null;
  /** Why the region failed, or null. */
  error: NativeError | null;
}

/** x86-64 paging depth: 4-level, or 5-level (LA57). */
export type PagingLevels = 4 | 5;

/** Options naming the page tables to walk. */
export interface WalkOptions {
  /** The guest's CR3 value (PCID and bits above 51 are ignored). */
  cr3: bigint;
  /** Paging depth, 4 by default. */
  paging?: PagingLevels;
}

const U64_MAX = (1n << 64n) - 1n;
const REGION_BYTES = 24; // sizeof(vasp_guest_region)
const REGION_VIRT = 1; // VASP_REGION_VIRT
/** A status slot the library has not written: the call failed as a whole. */
const UNWRITTEN = -1;

const hex = (v: bigint) => `0x${v.toString(16)}`;

function u64(name: string, value: bigint): bigint {
  if (typeof value !== "bigint") throw new TypeError(`${name} must be a bigint, got ${value}`);
  if (value < 0n || value > U64_MAX) {
    throw new RangeError(`${name} ${value} is not a 64-bit unsigned value`);
  }
  return value;
}

function byteLength(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} ${value} is not a non-negative integer`);
  }
  return value;
}

function pagingValue(paging: PagingLevels | undefined): number {
  if (paging === undefined || paging === 4) return 0; // VASP_PAGING_4LEVEL
  if (paging === 5) return 1; // VASP_PAGING_5LEVEL
  throw new RangeError(`Paging levels ${paging} are not 4 or 5`);
}

function walkArgs(options: WalkOptions): [bigint, number] {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Walk options { cr3, paging? } are required");
  }
  return [u64("cr3", options.cr3), pagingValue(options.paging)];
}

/** The vasp_guest_region array (24 bytes each, little-endian). */
function regionTable(regions: readonly GuestRegion[], hasCr3: boolean): Uint8Array<ArrayBuffer> {
  const table = new Uint8Array(regions.length * REGION_BYTES);
  const view = new DataView(table.buffer);
  regions.forEach((r, i) => {
    const at = i * REGION_BYTES;
    const addr = u64(`regions[${i}].addr`, r.addr);
    if (r.virtual && !hasCr3) {
      throw new TypeError(`Region ${i} at guest-virtual ${hex(addr)} needs options.cr3`);
    }
    view.setBigUint64(at, addr, true);
    view.setBigUint64(at + 8, BigInt(byteLength(`regions[${i}].len`, r.len)), true);
    view.setUint32(at + 16, r.virtual ? REGION_VIRT : 0, true);
    view.setUint32(at + 20, algValue(r.alg ?? "sha256"), true);
  });
  return table;
}

/** Closes handles whose GuestMemory was dropped without close(); a backstop only. */
const registry = new FinalizationRegistry<Deno.PointerObject>((handle) => {
  native().vasp_guest_close(handle);
});

/**
 * A guest's RAM file mapped read-only (QEMU `memory-backend-file,share=on`, or a raw
 * physical dump). Everything read is guest-controlled: walks and reads are bounded and
 * fail with a NativeError, never a crash.
 *
 * One call at a time: while `measure()` is in flight every other call throws `handle_busy`,
 * and `close()` marks the handle closed at once but releases it when the measurement
 * settles.
 */
export class GuestMemory implements Disposable {
  #handle: Deno.PointerObject | null;
  #busy = false;
  #closing = false;
  readonly #path: string;

  private constructor(handle: Deno.PointerObject, path: string) {
    this.#handle = handle;
    this.#path = path;
    registry.register(this, handle, this);
  }

  /**
   * Maps a guest RAM file.
   *
   * @param path the RAM file
   * @param options `below4g`: bytes of RAM below the PCI hole, the rest continuing at
   *   guest-physical 4 GiB (0 or absent: the whole file sits below 4 GiB)
   * @returns the open guest memory; close it with `close()` or `using`
   * @throws {NativeError} `io_failed` when the file cannot be opened or mapped,
   *   `argument_invalid` when it is empty or below4g does not fit it
   * @example
   * ```ts
   * import { GuestMemory } from "./guest.ts";
   * const file = Deno.makeTempFileSync(); // a real one: /dev/shm/vm1.ram (share=on)
   * Deno.truncateSync(file, 0x2000000);
   * {
   *   using ram = GuestMemory.open(file);
   *   const bytes = ram.readPhys(0x1000000n, 64);
   *   if (bytes.length !== 64) throw new Error(`read ${bytes.length} bytes`);
   * }
   * Deno.removeSync(file);
   * ```
   */
  static open(path: string, options: { below4g?: bigint } = {}): GuestMemory {
    if (typeof path !== "string") throw new TypeError(`Guest RAM path must be a string`);
    const below4g = u64("below4g", options.below4g ?? 0n);
    const pathBytes = cstr(path);
    const opts = new BigUint64Array(2); // vasp_guest_opts { const char *path; uint64_t below_4g }
    const out = outSlot();
    // No allocation between taking the pointer and the call: pathBytes stays where it is.
    opts[0] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(pathBytes)));
    opts[1] = below4g;
    check(native().vasp_guest_open(opts, out), null, `Cannot open guest RAM "${path}"`);
    return new GuestMemory(slotPointer(out)!, path);
  }

  /**
   * Guest RAM size in bytes (the file's size when it was opened).
   *
   * @throws {NativeError} `handle_closed`, `handle_busy`
   */
  get size(): bigint {
    const handle = this.#live();
    const out = outSlot();
    check(native().vasp_guest_size(handle, out), handle, `Cannot size guest RAM "${this.#path}"`);
    return out[0]!;
  }

  /**
   * Copies guest-physical memory.
   *
   * @param gpa guest-physical address
   * @param len bytes to read
   * @returns a fresh copy of the bytes
   * @throws {NativeError} `value_out_of_range` when any byte lies outside guest RAM (PCI hole,
   *   past the end, or the file shrank); `handle_closed`, `handle_busy`
   * @throws {RangeError} for an address or length out of range
   */
  readPhys(gpa: bigint, len: number): Uint8Array {
    const handle = this.#live();
    const buf = new Uint8Array(byteLength("len", len));
    const rc = native().vasp_guest_read_phys(handle, u64("gpa", gpa), buf, BigInt(len));
    check(rc, handle, `Cannot read ${len} bytes at guest-physical ${hex(gpa)}`);
    return buf;
  }

  /**
   * Translates a guest-virtual address by walking the guest's page tables.
   *
   * @param gva guest-virtual address
   * @param options `cr3` and `paging` (4 or 5 levels, default 4)
   * @returns the guest-physical address (not checked against guest RAM)
   * @throws {NativeError} `page_walk_failed` naming the level and entry
   * @throws {TypeError} without options.cr3
   */
  translate(gva: bigint, options: WalkOptions): bigint {
    const handle = this.#live();
    const [cr3, paging] = walkArgs(options);
    const out = outSlot();
    const rc = native().vasp_guest_translate(handle, cr3, paging, u64("gva", gva), out);
    check(rc, handle, `Cannot translate guest-virtual ${hex(gva)} (CR3 ${hex(cr3)})`);
    return out[0]!;
  }

  /**
   * Copies guest-virtual memory, translating page by page.
   *
   * @param gva guest-virtual address
   * @param len bytes to read
   * @param options `cr3` and `paging` (4 or 5 levels, default 4)
   * @returns a fresh copy of the bytes
   * @throws {NativeError} `page_walk_failed` or `value_out_of_range`
   * @throws {TypeError} without options.cr3
   */
  readVirt(gva: bigint, len: number, options: WalkOptions): Uint8Array {
    const handle = this.#live();
    const [cr3, paging] = walkArgs(options);
    const buf = new Uint8Array(byteLength("len", len));
    const rc = native().vasp_guest_read_virt(
      handle,
      cr3,
      paging,
      u64("gva", gva),
      buf,
      BigInt(len),
    );
    check(rc, handle, `Cannot read ${len} bytes at guest-virtual ${hex(gva)} (CR3 ${hex(cr3)})`);
    return buf;
  }

  /**
   * Measures many regions in one native call, off the main thread, hashing straight from
   * the mapping.
   *
   * @param regions the regions (at most 65,536; each 1 B to 1 GiB)
   * @param options `cr3` and `paging`, needed when a region is virtual
   * @returns one result per region, in order: a digest, or that region's error
   * @throws {NativeError} when the call fails as a whole (`argument_invalid` for too many
   *   regions); `handle_closed`, `handle_busy`
   * @throws {TypeError} for a virtual region without options.cr3, or an unknown algorithm
   */
  async measure(
    regions: readonly GuestRegion[],
    options: { cr3?: bigint; paging?: PagingLevels } = {},
  ): Promise<RegionResult[]> {
    const results = await this.#batch("measure", regions, options);
    return results.map(({ bytes, error }) => ({ digest: bytes, error }));
  }

  /**
   * MACs many regions in one native call, off the main thread, straight from the mapping,
   * under the process's secret key (ffi/mac.ts): equal bytes give equal tags for the life of
   * the process. For change detection only; `alg` of the regions is ignored.
   *
   * @param regions the regions (at most 65,536; each 1 B to 1 GiB)
   * @param options `cr3` and `paging`, needed when a region is virtual
   * @returns one result per region, in order: a 16-byte tag, or that region's error
   * @throws {NativeError} when the call fails as a whole; `handle_closed`, `handle_busy`
   * @throws {TypeError} for a virtual region without options.cr3
   */
  async mac(
    regions: readonly GuestRegion[],
    options: { cr3?: bigint; paging?: PagingLevels } = {},
  ): Promise<RegionTag[]> {
    const results = await this.#batch("mac", regions, options);
    return results.map(({ bytes, error }) => ({ tag: bytes, error }));
  }

  /** One batched native pass over the regions: digests (`measure`) or tags (`mac`). */
  async #batch(
    kind: "measure" | "mac",
    regions: readonly GuestRegion[],
    options: { cr3?: bigint; paging?: PagingLevels },
  ): Promise<{ bytes: Uint8Array | null; error: NativeError | null }[]> {
    const handle = this.#live();
    const cr3 = options.cr3 === undefined ? 0n : u64("cr3", options.cr3);
    const paging = pagingValue(options.paging);
    const table = regionTable(regions, options.cr3 !== undefined);
    if (regions.length === 0) return [];
    const size = kind === "mac" ? MAC_LEN : DIGEST_LEN;
    const out = new Uint8Array(regions.length * size);
    const status = new Int32Array(regions.length).fill(UNWRITTEN);
    const call = kind === "mac" ? native().vasp_guest_mac : native().vasp_guest_measure;
    let rc: number;
    let detail = "";
    this.#busy = true;
    try {
      // table, out and status stay referenced below, so they outlive the call.
      rc = await call(handle, cr3, paging, table, BigInt(regions.length), out, status);
      if (rc !== 0) detail = errmsg(handle);
    } finally {
      this.#busy = false;
      if (this.#closing) this.#release();
    }
    const what = `Cannot ${kind === "mac" ? "MAC" : "measure"} guest RAM "${this.#path}"`;
    if (rc !== 0 && status.includes(UNWRITTEN)) {
      throw new NativeError(NativeError.codeFor(rc), `${what}: ${detail}`, { rc });
    }
    const first = status.findIndex((s) => s !== 0);
    return regions.map((r, i) => {
      const s = status[i]!;
      if (s === 0) return { bytes: out.slice(i * size, (i + 1) * size), error: null };
      const code = NativeError.codeFor(s);
      // The library keeps the reason of the first failure only; the others get their code.
      const reason = i === first
        ? detail
        : `region ${i} (guest-${r.virtual ? "virtual" : "physical"} ${
          hex(r.addr)
        }, ${r.len} bytes): ${code}`;
      return { bytes: null, error: new NativeError(code, `${what}: ${reason}`, { rc: s }) };
    });
  }

  /**
   * Unmaps the RAM file. Idempotent. During a `measure()` the handle counts as closed at
   * once and is released when the measurement settles.
   */
  close(): void {
    if (this.#handle === null || this.#closing) return;
    registry.unregister(this);
    this.#closing = true;
    if (!this.#busy) this.#release();
  }

  /** Same as {@link GuestMemory.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #release(): void {
    const handle = this.#handle;
    this.#handle = null;
    if (handle !== null) native().vasp_guest_close(handle);
  }

  #live(): Deno.PointerObject {
    if (this.#handle === null || this.#closing) {
      throw new NativeError("handle_closed", `Guest RAM "${this.#path}" is closed`);
    }
    if (this.#busy) {
      throw new NativeError(
        "handle_busy",
        `Guest RAM "${this.#path}" is busy with a measurement; await measure() first`,
      );
    }
    return this.#handle;
  }
}
