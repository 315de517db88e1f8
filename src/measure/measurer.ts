/**
 * Measures a running guest kernel through its RAM file: finds the kernel (KASLR), confirms
 * the placement through the guest's own page tables, and hashes every planned region with
 * the slide undone.
 *
 * Text and read-only data (23 MB on the test kernel) are not hashed every time: one native
 * call MACs them straight from the mapping under the process's secret key (GMAC, about four
 * times cheaper than SHA-256 here), and only a region whose tag differs from the tag of the
 * bytes last hashed — or that was never hashed — is copied, its KASLR relocations undone,
 * and hashed again. The stored tag is computed from that same copy, so a digest is always
 * paired with the tag of exactly the bytes it digests, even when the guest writes during
 * the copy. The small tables (syscall tables, IDT) are copied and hashed each time because
 * their entries are checked too. Why this is sound: docs/introspection.md, "Keyed change
 * detection".
 *
 * @module
 */
import { GuestMemory, type HashAlgName, hashBatch, macBatch, NativeError } from "../../ffi/mod.ts";
import { describeError, VaspError } from "../engine/error.ts";
import { discoverKaslr, type KernelLayout } from "./kaslr.ts";
import type { KernelMeasurement, RegionMeasurement } from "./measurement.ts";
import {
  expectedBytes,
  expectedDigest,
  imageSites,
  locateChanges,
  maskSites,
} from "./image_reference.ts";
import type { PatchSites } from "./patch_sites.ts";
import { planRegions, type RegionSpec } from "./regions.ts";
import { undoRelocations } from "./relocs.ts";
import { SiteChecker, type SiteState } from "./site_check.ts";
import type { KernelSymbols } from "./symbols.ts";
import {
  checkIdt,
  checkSyscallTable,
  decodeIdt,
  type Finding,
  normaliseIdt,
  normaliseSyscallTable,
  type TextBounds,
} from "./tables.ts";
import type { KernelImage } from "./vmlinuz.ts";
import { toHex } from "../codec/mod.ts";

/** Options for {@linkcode KernelMeasurer.create}. */
export interface KernelMeasurerOptions {
  /** The kernel's vmlinuz, for its relocations: needed to normalise text under KASLR. */
  image?: KernelImage;
  /** CR3 from the hypervisor (QMP); default: the kernel's `init_top_pgt`, found in RAM. */
  cr3?: bigint;
  /** Paging depth (from CR4.LA57); default: whichever maps `_text` where it was found. */
  paging?: 4 | 5;
  /** IDTR base from the hypervisor; checked to reach `idt_table`. */
  idtr?: bigint;
}

/** What one copy of a bulk region gave. */
interface Hashed {
  readonly tag: string;
  readonly digest: string;
  readonly findings: readonly Finding[];
  readonly state?: SiteState;
}

/** A region placed in this boot. */
interface Placed extends RegionSpec {
  readonly va: bigint;
  readonly phys: bigint;
}

/** PTI's user page tables sit one page above the kernel's. */
const PTI_USER_BIT = 0x1000n;
const hex = (v: bigint) => `0x${v.toString(16)}`;

/** A guest kernel found in RAM, ready to be measured repeatedly. */
export class KernelMeasurer {
  /** Where the kernel was found. */
  readonly layout: KernelLayout;
  /** The page-table root regions are read through. */
  readonly cr3: bigint;
  /** Paging depth. */
  readonly paging: 4 | 5;
  /** Milliseconds KASLR discovery and confirmation took. */
  readonly discoveryMs: number;
  readonly #memory: GuestMemory;
  readonly #symbols: KernelSymbols;
  readonly #image: KernelImage | undefined;
  readonly #regions: Placed[];
  readonly #text: TextBounds;
  readonly #idtr: bigint | undefined;
  /** The text's patch sites and their checker for this boot, when the image is known. */
  readonly #sites: { sites: PatchSites; checker: SiteChecker } | undefined;
  /**
   * Per algorithm and region: the MAC of the bytes last hashed, their (normalised, masked)
   * digest, and what checking those bytes found.
   */
  readonly #hashed = new Map<string, Hashed>();

  private constructor(
    memory: GuestMemory,
    symbols: KernelSymbols,
    options: KernelMeasurerOptions,
    found: { layout: KernelLayout; cr3: bigint; paging: 4 | 5; ms: number },
  ) {
    this.#memory = memory;
    this.#symbols = symbols;
    this.#image = options.image;
    this.#idtr = options.idtr;
    this.layout = found.layout;
    this.cr3 = found.cr3;
    this.paging = found.paging;
    this.discoveryMs = found.ms;
    const text = symbols.require("_text");
    this.#regions = planRegions(symbols).map((r) => ({
      ...r,
      va: r.linkedVa + found.layout.virtOffset,
      phys: found.layout.physText + (r.linkedVa - text),
    }));
    this.#text = {
      start: symbols.require("_stext"),
      end: symbols.require("_etext"),
      slide: found.layout.virtOffset,
      earlyIdtHandlers: symbols.get("early_idt_handler_array"),
    };
    if (options.image) {
      const sites = imageSites(options.image, symbols);
      this.#sites = {
        sites,
        checker: new SiteChecker(sites, {
          symbols,
          relocations: options.image.relocations,
          slide: found.layout.virtOffset,
        }),
      };
    }
  }

  /**
   * Finds the kernel in guest RAM and confirms it through the guest's page tables.
   *
   * @param memory the guest's RAM (borrowed; keep it open while measuring)
   * @param symbols the kernel's System.map
   * @param options vmlinuz, CR3/paging/IDTR from the hypervisor
   * @returns a measurer for this boot
   * @throws {VaspError} `kaslr_not_found`; `kernel_mapping_mismatch` when the page tables do
   *   not map `_text` at the physical address found
   */
  static create(
    memory: GuestMemory,
    symbols: KernelSymbols,
    options: KernelMeasurerOptions = {},
  ): KernelMeasurer {
    const started = performance.now();
    const layout = discoverKaslr(memory, symbols, {
      alignment: options.image ? BigInt(options.image.header.alignment) : undefined,
    });
    const text = symbols.require("_text");
    const roots = options.cr3 !== undefined
      ? [options.cr3, options.cr3 & ~PTI_USER_BIT]
      : [layout.physText + (symbols.require("init_top_pgt") - text)];
    const depths: (4 | 5)[] = options.paging ? [options.paging] : [4, 5];
    const va = text + layout.virtOffset;
    const tried: string[] = [];
    for (const cr3 of roots) {
      for (const paging of depths) {
        let phys: bigint | string;
        try {
          phys = memory.translate(va, { cr3, paging });
        } catch (error) {
          if (!(error instanceof NativeError)) throw error;
          phys = error.code;
        }
        if (phys === layout.physText) {
          return new KernelMeasurer(memory, symbols, options, {
            layout,
            cr3,
            paging,
            ms: performance.now() - started,
          });
        }
        tried.push(
          `CR3 ${hex(cr3)} ${paging}-level: ${typeof phys === "string" ? phys : hex(phys)}`,
        );
      }
    }
    throw new VaspError(
      "kernel_mapping_mismatch",
      `The guest's page tables do not map _text (${hex(va)}) to ${hex(layout.physText)}, ` +
        `where its banner is (${tried.join("; ")})`,
      { details: { va: hex(va), phys: hex(layout.physText) } },
    );
  }

  /**
   * Measures every region once.
   *
   * @param options `alg`: `sha256` (default) or `sm3`
   * @returns digests, placement and findings; a region that cannot be read gets a null
   *   digest and its error
   * @throws {NativeError} when the guest RAM is closed or busy
   */
  async measure(options: { alg?: HashAlgName } = {}): Promise<KernelMeasurement> {
    const started = performance.now();
    const alg = options.alg ?? "sha256";
    const walk = { cr3: this.cr3, paging: this.paging };
    const slide = this.layout.virtOffset;
    const normalised = slide === 0n || this.#image !== undefined;
    const bulk = this.#regions.filter((r) => r.kind === "text" || r.kind === "rodata");
    const tables = this.#regions.filter((r) => r.kind === "syscall_table" || r.kind === "idt");
    const tags = await this.#memory.mac(
      bulk.map((r) => ({ addr: r.va, len: r.len, virtual: true })),
      walk,
    );
    const digests = new Map<string, { digest: string | null; error: string | null }>();
    const rehashed: string[] = [];
    const findings: Finding[] = [];
    let state: SiteState | undefined;
    bulk.forEach((r, i) => {
      const { tag, error } = tags[i]!;
      if (tag === null) {
        digests.set(r.name, { digest: null, error: error && describeError(error) });
        return;
      }
      let known = this.#hashed.get(`${alg}:${r.name}`);
      if (known?.tag !== toHex(tag)) {
        rehashed.push(r.name);
        try {
          known = this.#hashBulk(r, alg, normalised);
        } catch (error) {
          digests.set(r.name, { digest: null, error: describeError(error) });
          return;
        }
      }
      digests.set(r.name, { digest: known.digest, error: null });
      findings.push(...known.findings);
      state ??= known.state;
    });
    const copies: { region: Placed; bytes: Uint8Array<ArrayBuffer> }[] = [];
    for (const r of tables) {
      try {
        const bytes = this.#memory.readVirt(r.va, r.len, walk) as Uint8Array<ArrayBuffer>;
        if (r.kind === "idt") {
          findings.push(...checkIdt(decodeIdt(bytes), this.#text), ...this.#checkIdtr(r));
          normaliseIdt(bytes, slide);
        } else {
          findings.push(...checkSyscallTable(r.name, bytes, this.#text));
          normaliseSyscallTable(bytes, slide);
        }
        copies.push({ region: r, bytes });
      } catch (error) {
        digests.set(r.name, { digest: null, error: describeError(error) });
      }
    }
    hashBatch(alg, copies.map((c) => c.bytes)).forEach((d, i) => {
      const { region, bytes } = copies[i]!;
      const digest = toHex(d);
      digests.set(region.name, { digest, error: null });
      if (normalised && region.kind === "syscall_table") {
        findings.push(...this.#changes(region, alg, digest, bytes));
      }
    });
    const regions = this.#regions.map((r): RegionMeasurement => ({
      name: r.name,
      kind: r.kind,
      linkedVa: r.linkedVa,
      va: r.va,
      phys: r.phys,
      len: r.len,
      ...digests.get(r.name)!,
      ...this.#expected(r, alg),
    }));
    return {
      alg,
      layout: this.layout,
      cr3: this.cr3,
      paging: this.paging,
      normalised,
      regions,
      findings,
      elapsedMs: performance.now() - started,
      rehashed,
      ...(this.#sites && state ? { sites: { counts: this.#sites.sites.counts, state } } : {}),
    };
  }

  /** The region's digest from the kernel image, when the image is known and holds it. */
  #expected(r: Placed, alg: HashAlgName): { expected?: string } {
    const expected = this.#image && expectedDigest(this.#image, this.#symbols, { region: r, alg });
    return expected ? { expected } : {};
  }

  /** Where a normalised region differs from the image, when its digest does. */
  #changes(r: Placed, alg: HashAlgName, digest: string, bytes: Uint8Array): Finding[] {
    const { expected } = this.#expected(r, alg);
    if (expected === undefined || expected === digest) return [];
    return locateChanges(bytes, expectedBytes(this.#image!, this.#symbols, r)!, {
      region: r,
      symbols: this.#symbols,
      slide: this.layout.virtOffset,
    });
  }

  /**
   * Copies a region, MACs the copy, checks the text's patch sites in it, undoes its
   * relocations when it can, masks the sites, hashes it, locates what differs from the
   * image, and remembers tag → digest and findings. Without a vmlinuz under KASLR the raw
   * digest is given (and the measurement says `normalised: false`), as before.
   *
   * @throws what reading guest memory or undoing relocations throws
   */
  #hashBulk(r: Placed, alg: HashAlgName, normalise: boolean): Hashed {
    const walk = { cr3: this.cr3, paging: this.paging };
    const bytes = this.#memory.readVirt(r.va, r.len, walk) as Uint8Array<ArrayBuffer>;
    const tag = toHex(macBatch([bytes])[0]!);
    const sites = r.kind === "text" ? this.#sites : undefined;
    const report = sites?.checker.check(bytes, (va, len) => {
      try {
        return this.#memory.readVirt(va, len, walk);
      } catch {
        return undefined;
      }
    });
    if (normalise && this.layout.virtOffset !== 0n) {
      undoRelocations(bytes, r.linkedVa, {
        slide: this.layout.virtOffset,
        relocations: this.#image!.relocations,
      });
    }
    if (sites) maskSites(sites.sites, bytes, r.linkedVa);
    const digest = toHex(hashBatch(alg, [bytes])[0]!);
    const findings: Finding[] = (report?.violations ?? []).map((v) => ({
      region: r.name,
      code: "patch_site_invalid",
      address: v.address,
      violation: true,
      message: v.message,
    }));
    if (normalise) findings.push(...this.#changes(r, alg, digest, bytes));
    // Sites caught mid-rewrite are checked again at the next measurement, changed or not.
    const settled = (report?.state.sitesInFlux ?? 0) === 0;
    const hashed = { tag: settled ? tag : "", digest, findings, state: report?.state };
    this.#hashed.set(`${alg}:${r.name}`, hashed);
    return hashed;
  }

  /** The CPU's IDTR must reach the same page as `idt_table`. */
  #checkIdtr(idt: Placed): Finding[] {
    if (this.#idtr === undefined) return [];
    const walk = { cr3: this.cr3, paging: this.paging };
    let reached: bigint | string;
    try {
      reached = this.#memory.translate(this.#idtr, walk);
    } catch (error) {
      reached = describeError(error);
    }
    const expected = this.#memory.translate(idt.va, walk);
    if (reached === expected) return [];
    return [{
      region: idt.name,
      code: "idtr_mismatch",
      address: this.#idtr,
      violation: true,
      message: `The CPU's IDTR ${hex(this.#idtr)} reaches ${
        typeof reached === "string" ? reached : hex(reached)
      }, not idt_table at ${hex(expected)}`,
    }];
  }
}
