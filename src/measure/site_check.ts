/**
 * Checks every patch site of a running kernel's text against the encodings the kernel itself
 * can write there (Linux 6.x, x86-64: `arch/x86/kernel/jump_label.c`, `ftrace.c`,
 * `static_call.c`, `alternative.c`, `paravirt.c`), and masks the sites out of the text so
 * that its digest covers every other byte.
 *
 * Checks run on the guest's raw bytes (KASLR slide applied): relative branches are the same
 * under any slide, and what may hold absolute addresses (an alternative's original or
 * replacement) is compared after applying the slide to the image's bytes, as the
 * decompressor did. Sites that overlap (a paravirt call that is also an alternative, a
 * return inside an alternative) form one cluster: it passes when one site spanning it
 * accepts all of it, or when the spanning site accepts everything but the nested sites and
 * each nested site accepts its own bytes.
 *
 * @module
 */
import { applyRelocations, type Relocations } from "./relocs.ts";
import type { PatchSite, PatchSites, SiteKind } from "./patch_sites.ts";
import {
  cluster,
  type Clusters,
  QUICK_CALL,
  QUICK_LOCK,
  QUICK_NOP,
  QUICK_ORIGINAL,
  QUICK_RETURN,
  QUICK_TAIL_CALL,
  quickOf,
} from "./_site_clusters.ts";
import {
  bytesHex,
  describe,
  equalsAt,
  type Holes,
  INT3,
  isInt3s,
  isNops,
  matchesWithNops,
  NOP5,
  NOPS,
  rel32,
  RET,
  sameBytes,
  XOR5RAX,
} from "./_x86.ts";
import type { KernelSymbols } from "./symbols.ts";

/** A site holding bytes its kind cannot legitimately hold. */
export interface SiteViolation {
  /** What patches the site. */
  readonly kind: SiteKind;
  /** The site, as `symbol+0xoffset`. */
  readonly at: string;
  /** Its runtime address. */
  readonly address: bigint;
  /** What it holds and what was allowed. */
  readonly message: string;
}

/** What the sites hold, beyond pass or fail: facts the policies may judge. */
export interface SiteState {
  /** Jump labels holding their JMP (the static key's branch taken). */
  readonly jumpLabelsOn: number;
  /** Function-entry (`__fentry__`) sites calling into ftrace. */
  readonly ftraceEnabledSites: number;
  /** What `ftrace_call` calls: the tracer function, `ftrace_stub` when off. */
  readonly ftraceTracer: string | null;
  /** Static call sites and trampolines not holding their bytes as linked. */
  readonly staticCallsRetargeted: number;
  /** Of those, the ones calling into the module space (a module's function). */
  readonly staticCallsIntoModules: number;
  /** Sites caught while the kernel rewrites them (an INT3 over their first byte). */
  readonly sitesInFlux: number;
}

/** The outcome of checking every site. */
export interface SiteReport {
  readonly violations: readonly SiteViolation[];
  readonly state: SiteState;
}

/** Reads guest memory at a runtime virtual address; undefined when it cannot. */
export type GuestReader = (va: bigint, len: number) => Uint8Array | undefined;

/** Facts a site's bytes state, counted into {@link SiteState}. */
const FACT_NONE = 0;
const FACT_JUMP_ON = 1;
const FACT_FTRACE_ON = 2;
const FACT_STATIC_CALL = 3;
const FACT_MODULE_CALL = 4;
/** An ftrace site calling a trampoline out of the text. */
const FACT_EXTERNAL = 5;
/** A site the kernel is rewriting: see {@linkcode SiteChecker} `#inFlux`. */
const FACT_IN_FLUX = 6;
/**
 * How long a site may hold the kernel's INT3: a rewrite takes one `text_poke_bp` batch
 * (milliseconds, seconds under TCG on a loaded host); an INT3 left longer is not one.
 */
const FLUX_LIMIT_MS = 10_000;

/** What {@linkcode SiteChecker} `#accepts` returns: 0 for no, else 1 + the fact. */
const yes = (ok: boolean, fact = FACT_NONE) => ok ? 1 + fact : 0;

/** x86-64's module mapping space (`MODULES_VADDR`..`MODULES_END`), the same under KASLR. */
const MODULES_START = 0xffffffffc0000000n;
const MODULES_END = 0xffffffffff000000n;
const inModules = (va: bigint) => va >= MODULES_START && va < MODULES_END;

/** Distinct ftrace trampolines out of the text read per check; calls to more are violations. */
const MAX_TRAMPOLINES = 64;

/** Bytes of `ftrace_caller` a dynamically allocated ftrace trampoline starts with. */
const TRAMPOLINE_PROBE = 16;

const hex = (v: bigint) => `0x${v.toString(16)}`;

/** Checks the sites of one kernel under one KASLR slide. */
export class SiteChecker {
  readonly #sites: PatchSites;
  readonly #symbols: KernelSymbols;
  readonly #slide: bigint;
  /** Per alternative or paravirt site: its original and replacements with the slide applied. */
  readonly #slid = new Map<PatchSite, Uint8Array<ArrayBuffer>[]>();
  /** Offsets from `_stext` (numbers: the checks run 100,000 times) of function entries. */
  readonly #functions: Set<number>;
  readonly #returnThunks: Set<number>;
  readonly #ftraceEntries: Set<number>;
  readonly #ftraceCaller: bigint[];
  readonly #retpolineThunks: bigint | undefined;
  readonly #clusters: Clusters;
  /** Whether every cluster has been checked once. */
  #checked = false;
  /** Trampolines out of the text ftrace sites called at the last check, and their verdict. */
  readonly #trampolines = new Map<bigint, boolean>();

  /**
   * @param sites the kernel's sites, from its image
   * @param options `symbols`: its System.map; `relocations`: its relocation list;
   *   `slide`: the KASLR slide of this boot
   */
  constructor(
    sites: PatchSites,
    options: { symbols: KernelSymbols; relocations: Relocations; slide: bigint },
  ) {
    this.#sites = sites;
    this.#symbols = options.symbols;
    this.#slide = options.slide;
    const slid = (va: bigint, bytes: Uint8Array): Uint8Array<ArrayBuffer> => {
      const copy = bytes.slice();
      applyRelocations(copy, va, { slide: options.slide, relocations: options.relocations });
      return copy;
    };
    for (const s of sites.sites) {
      if (s.kind !== "alternative" && s.kind !== "paravirt") continue;
      const va = sites.start + BigInt(s.offset);
      const list = [slid(va, s.original)];
      for (const r of s.replacements ?? []) {
        list.push(this.#replacement(s, va, slid(r.va, r.bytes), r.va));
      }
      this.#slid.set(s, list);
    }
    const sym = (n: string) => options.symbols.get(n);
    const offsets = (names: string[]) =>
      new Set(names.map(sym).filter((v) => v !== undefined).map((v) => Number(v - sites.start)));
    this.#functions = new Set(
      options.symbols.codeSymbolsIn(sites.start, sites.end).map((v) => Number(v - sites.start)),
    );
    this.#returnThunks = offsets([
      "__x86_return_thunk",
      "srso_return_thunk",
      "srso_alias_return_thunk",
      "retbleed_return_thunk",
      "its_return_thunk",
    ]);
    this.#ftraceCaller = ["ftrace_caller", "ftrace_regs_caller"].map(sym).filter((v) =>
      v !== undefined
    );
    this.#ftraceEntries = offsets(["ftrace_caller", "ftrace_regs_caller", "__fentry__"]);
    this.#retpolineThunks = sym("__x86_indirect_thunk_array");
    const tracer = sym("ftrace_call");
    this.#clusters = cluster(
      sites.sites,
      tracer === undefined ? undefined : Number(tracer - sites.start),
    );
  }

  /**
   * An alternative's replacement as `apply_alternatives` writes it at the site: a leading
   * CALL's displacement moved, a leading JMP re-aimed at the same target (short when it
   * fits), NOP (0x90) padding to the site's length.
   */
  #replacement(
    s: PatchSite,
    siteVa: bigint,
    bytes: Uint8Array,
    replVa: bigint,
  ): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(s.len).fill(0x90);
    out.set(bytes.subarray(0, s.len));
    if (bytes.length === 5 && s.len >= 5 && (bytes[0] === 0xe8 || bytes[0] === 0xe9)) {
      const target = replVa + 5n + BigInt(rel32(bytes, 1));
      const disp = Number(target - siteVa);
      if (bytes[0] === 0xe9 && disp - 2 >= -128 && disp - 2 <= 127 && disp >= 0) {
        out.set([0xeb, (disp - 2) & 0xff, 0x90, 0x90, 0x90]);
      } else new DataView(out.buffer).setInt32(1, disp - 5, true);
    }
    return out;
  }

  /**
   * Checks every site in a raw copy of the text. Sites whose bytes are what they held at the
   * last check keep its verdict (a changed MAC usually means a few flipped sites). The
   * trampolines out of the text that ftrace sites called at the last check are read again
   * first: when one no longer looks like ftrace's, every site is checked again.
   *
   * Sites in flux are checked again every time, until they settle or hold their INT3 too
   * long.
   *
   * @param text the guest's bytes of `[_stext, _etext)`, KASLR slide applied (not changed)
   * @param read reads guest memory, for CALLs out of the text (ftrace trampolines)
   * @param now the time in milliseconds (default `performance.now()`), for sites in flux
   * @returns the violations, by address, and the sites' state
   */
  check(text: Uint8Array, read: GuestReader, now: number = performance.now()): SiteReport {
    const c = this.#clusters;
    const known = [...this.#trampolines];
    this.#trampolines.clear();
    if (known.some(([target, ok]) => this.#isTrampoline(text, target, read) !== ok)) {
      this.#checked = false;
    }
    for (let k = 0; k < c.count; k++) {
      const at = c.spanAt[k]!, len = c.spanLen[k]!, seen = c.seenAt[k]!;
      let same = this.#checked && c.fluxSince[k] === 0;
      for (let i = 0; same && i < len; i++) same = text[at + i] === c.seen[seen + i];
      if (same) continue;
      for (let i = 0; i < len; i++) c.seen[seen + i] = text[at + i]!;
      const fact = c.failing[k] === 0
        ? this.#common(c.quick[k]!, text, at, len, c.original, seen)
        : -1;
      if (fact >= 0) {
        c.fact[k] = fact;
        c.fluxSince[k] = 0;
        continue;
      }
      this.#evaluate(k, text, read, now);
    }
    this.#checked = true;
    const violations: SiteViolation[] = [];
    for (const found of c.violations.values()) violations.push(...found);
    const facts = new Array<number>(FACT_IN_FLUX + 1).fill(0);
    for (let k = 0; k < c.count; k++) facts[c.fact[k]!]!++;
    return {
      violations: violations.sort((a, b) => (a.address < b.address ? -1 : 1)),
      state: {
        jumpLabelsOn: facts[FACT_JUMP_ON]!,
        ftraceEnabledSites: facts[FACT_FTRACE_ON]! + facts[FACT_EXTERNAL]!,
        ftraceTracer: c.tracer,
        staticCallsRetargeted: facts[FACT_STATIC_CALL]! + facts[FACT_MODULE_CALL]!,
        staticCallsIntoModules: facts[FACT_MODULE_CALL]!,
        sitesInFlux: facts[FACT_IN_FLUX]!,
      },
    };
  }

  /**
   * The fact of a site at `at` holding one of its kind's common (`QUICK_*`) states, -1 when
   * it does not; its bytes as linked are `original[from, from + len)`.
   */
  #common(
    q: number,
    text: Uint8Array,
    at: number,
    len: number,
    original: Uint8Array,
    from: number,
  ): number {
    switch (q) {
      case QUICK_NOP:
        return equalsAt(text, at, NOPS[len]!) ? FACT_NONE : -1;
      case QUICK_LOCK:
        return text[at] === 0xf0 || text[at] === 0x3e ? FACT_NONE : -1;
      case QUICK_RETURN: {
        const ok = text[at] === RET
          ? isInt3s(text, at + 1, at + len)
          : text[at] === 0xe9 && this.#returnThunks.has(this.#target(text, at, 5)) &&
            isInt3s(text, at + 5, at + len);
        return ok ? FACT_NONE : -1;
      }
      case QUICK_ORIGINAL:
        return sameBytes(text, at, original, from, len) ? FACT_NONE : -1;
      case QUICK_CALL:
      case QUICK_TAIL_CALL: {
        if (sameBytes(text, at, original, from, len)) return FACT_NONE;
        const opcode = q === QUICK_TAIL_CALL ? 0xe9 : 0xe8;
        return text[at] === opcode && this.#functions.has(this.#target(text, at, 5))
          ? FACT_STATIC_CALL
          : -1;
      }
      default:
        return -1;
    }
  }

  /** Checks one cluster of sites and keeps its verdict and fact. */
  #evaluate(k: number, text: Uint8Array, read: GuestReader, now: number): void {
    const c = this.#clusters;
    if (c.first[k + 1]! - c.first[k]! === 1) {
      // Most clusters are one site: no allocation on this path.
      const s = this.#sites.sites[c.first[k]!]!;
      const got = this.#accepts(s, text, read) || this.#inFlux(s, text);
      c.fact[k] = got > 0 ? got - 1 : FACT_NONE;
      const stuck = this.#stuck(k, now);
      if (got > 0 && !stuck && c.failing[k] === 0) return;
      this.#verdict(k, got > 0 && !stuck ? [] : [this.#violation(s, text, stuck)]);
      return;
    }
    const cluster = this.#sites.sites.slice(c.first[k]!, c.first[k + 1]!);
    const first = cluster[0]!;
    const end = c.spanAt[k]! + c.spanLen[k]!;
    const failed: PatchSite[] = [];
    let fact = 0;
    const accepts = (s: PatchSite, holes?: Holes) => {
      const got = this.#accepts(s, text, read, holes) || this.#inFlux(s, text);
      if (got > 0) fact ||= got - 1;
      return got > 0;
    };
    const spanning = cluster.filter((s) => s.offset === first.offset && s.offset + s.len === end);
    if (!spanning.some((s) => accepts(s))) {
      const nested = cluster.filter((s) => !spanning.includes(s));
      const holes = nested.map((s) =>
        [s.offset - first.offset, s.offset - first.offset + s.len] as const
      );
      const outer = spanning.some((s) => accepts(s, holes));
      failed.push(...nested.filter((s) => !accepts(s)));
      if (spanning.length > 0 && !outer) failed.splice(0, failed.length, spanning[0]!);
    }
    c.fact[k] = fact;
    const stuck = this.#stuck(k, now);
    if (stuck) failed.splice(0, failed.length, first);
    this.#verdict(k, failed.map((s) => this.#violation(s, text, stuck)));
  }

  /** Tracks how long a cluster has been in flux; whether that is longer than a rewrite takes. */
  #stuck(k: number, now: number): boolean {
    const c = this.#clusters;
    if (c.fact[k] !== FACT_IN_FLUX) {
      c.fluxSince[k] = 0;
      return false;
    }
    if (c.fluxSince[k] === 0) c.fluxSince[k] = now;
    return now - c.fluxSince[k]! > FLUX_LIMIT_MS;
  }

  /** Keeps a cluster's violations, none when it passed. */
  #verdict(k: number, violations: SiteViolation[]): void {
    const c = this.#clusters;
    if (violations.length === 0) {
      c.failing[k] = 0;
      c.violations.delete(k);
    } else {
      c.failing[k] = 1;
      c.violations.set(k, violations);
    }
  }

  /**
   * A site the kernel is rewriting while it was copied. `text_poke_bp` writes an INT3 over
   * the first byte, then the new tail, then the new first byte, so that a CPU running into
   * the site traps into the kernel's handler, which runs the new instruction: while the
   * INT3 stands the tail is never run, and a copy may catch it half written (seen on the
   * systemd guest: `cc 1f 44 34 39`, a NOP's tail becoming a CALL's). So a site holding INT3
   * is in flux whatever its tail; {@linkcode #stuck} makes one that stays so a violation.
   * An INT3 the kernel did not write traps into an oops: it gives its writer no control.
   *
   * @returns 1 + `FACT_IN_FLUX`, or 0
   */
  #inFlux(s: PatchSite, text: Uint8Array): number {
    return yes(s.len > 1 && text[s.offset] === INT3, FACT_IN_FLUX);
  }

  /** Offset from `_stext` of a rel32 branch's target at `at` (outside the text: any number). */
  #target(text: Uint8Array, at: number, len: number): number {
    return at + len + rel32(text, at + len - 4);
  }

  /** The link-time address at an offset from `_stext`. */
  #va(offset: number): bigint {
    return BigInt.asUintN(64, this.#sites.start + BigInt(offset));
  }

  /**
   * Whether a site's bytes are something its kind may hold: 0 when not, else 1 + the fact
   * they state (`FACT_*`).
   */
  #accepts(s: PatchSite, text: Uint8Array, read: GuestReader, holes?: Holes): number {
    const common = this.#common(quickOf(s), text, s.offset, s.len, s.original, 0);
    if (common >= 0) return 1 + common;
    const at = s.offset;
    const b = text;
    switch (s.kind) {
      case "jump_label": {
        const opcode = s.len === 2 ? 0xeb : 0xe9;
        if (b[at] !== opcode) return 0;
        const target = s.len === 2 ? at + 2 + ((b[at + 1]! << 24) >> 24) : this.#target(b, at, 5);
        return yes(this.#va(target) === s.target, FACT_JUMP_ON);
      }
      case "ftrace": {
        if (b[at] !== 0xe8) return 0;
        const target = this.#target(b, at, 5);
        if (this.#ftraceEntries.has(target)) return yes(true, FACT_FTRACE_ON);
        return yes(this.#isTrampoline(b, this.#va(target), read), FACT_EXTERNAL);
      }
      case "ftrace_call": {
        if (b[at] !== 0xe8) return 0;
        const target = this.#target(b, at, 5);
        if (!this.#functions.has(target)) return 0;
        if (s.offset === this.#clusters.tracerAt) {
          this.#clusters.tracer = this.#symbols.locate(this.#va(target)).replace(/\+0x0$/, "");
        }
        return yes(true);
      }
      case "static_call":
      case "static_call_tramp": {
        const tail = s.kind === "static_call_tramp" || s.tail === true;
        // A module may point a core static call at its own function (KVM's perf guest
        // callbacks do): a fact, since module code is not measured here.
        if (b[at] === (tail ? 0xe9 : 0xe8)) {
          return yes(inModules(this.#va(this.#target(b, at, 5)) + this.#slide), FACT_MODULE_CALL);
        }
        const ok = (tail && b[at] === RET && isInt3s(b, at + 1, at + 5)) ||
          (s.kind === "static_call" &&
            (equalsAt(b, at, NOP5) || (!tail && equalsAt(b, at, XOR5RAX))));
        return yes(ok, FACT_STATIC_CALL);
      }
      case "alternative":
        return yes(this.#slid.get(s)!.some((c) => matchesWithNops(b, at, c, holes)));
      case "paravirt":
        return yes(
          matchesWithNops(b, at, this.#slid.get(s)![0]!, holes) || isNops(b, at, at + s.len) ||
            (b[at] === 0xe8 && s.len >= 5 && this.#functions.has(this.#target(b, at, 5)) &&
              isNops(b, at + 5, at + s.len)),
        );
      case "retpoline":
        return yes(this.#isPatchedRetpoline(s, b));
      case "return_thunk":
        return yes(equalsAt(b, at, s.original));
      case "smp_lock":
        return 0;
    }
  }

  /**
   * `patch_retpoline`: `[Jncc.d8 over] [LFENCE] CALL/JMP *%reg [INT3] NOPs…`, the register
   * being the one whose thunk the original called, and a JMP for a JMP or a Jcc.
   */
  #isPatchedRetpoline(s: PatchSite, b: Uint8Array): boolean {
    if (this.#retpolineThunks === undefined) return false;
    const o = s.original;
    const p = o[0] === 0x2e ? 1 : 0;
    const jcc = o[p] === 0x0f;
    const reg = Number(
      this.#sites.start + BigInt(s.offset + s.len + rel32(o, s.len - 4)) - this.#retpolineThunks,
    ) / 32;
    if (!Number.isInteger(reg) || reg < 0 || reg > 15) return false;
    const end = s.offset + s.len;
    let i = s.offset;
    if (jcc) {
      if (b[i] !== (0x70 | ((o[p + 1]! & 0xf) ^ 1)) || b[i + 1] !== s.len - 2) return false;
      i += 2;
    }
    if (equalsAt(b, i, [0x0f, 0xae, 0xe8])) i += 3;
    if (reg >= 8 && b[i++] !== 0x41) return false;
    const call = !jcc && o[p] === 0xe8;
    if (b[i] !== 0xff || b[i + 1] !== ((call ? 0xd0 : 0xe0) | (reg & 7))) return false;
    i += 2;
    if (!call && b[i] === INT3 && i < end) i++;
    return isNops(b, i, end);
  }

  /**
   * Whether a CALL target outside the text is a copy of the kernel's ftrace trampolines;
   * read once per check and target (35,000 sites may call one trampoline).
   */
  #isTrampoline(text: Uint8Array, target: bigint, read: GuestReader): boolean {
    if (target >= this.#sites.start && target < this.#sites.end) return false;
    let ok = this.#trampolines.get(target);
    // ftrace allocates a trampoline per tracer: thousands of targets are a guest making
    // every check read thousands of pages, not ftrace.
    if (ok === undefined && this.#trampolines.size >= MAX_TRAMPOLINES) return false;
    if (ok === undefined) {
      const got = read(target + this.#slide, TRAMPOLINE_PROBE);
      ok = got !== undefined && this.#ftraceCaller.some((c) => {
        const at = Number(c - this.#sites.start);
        return equalsAt(got, 0, text.subarray(at, at + TRAMPOLINE_PROBE));
      });
      this.#trampolines.set(target, ok);
    }
    return ok;
  }

  #violation(s: PatchSite, text: Uint8Array, stuck = false): SiteViolation {
    const va = this.#sites.start + BigInt(s.offset);
    const bytes = text.subarray(s.offset, s.offset + s.len);
    const at = this.#symbols.locate(va);
    const held = stuck ? ` (an INT3 for over ${FLUX_LIMIT_MS / 1000} s: no kernel rewrite)` : "";
    return {
      kind: s.kind,
      at,
      address: va + this.#slide,
      message: `${s.kind.replaceAll("_", " ")} site ${at} holds ${describe(bytes, va, this)}` +
        `${held}; the image has ${bytesHex(s.original)}`,
    };
  }

  /** Names a link-time address, or says it is outside the kernel's text. */
  name(va: bigint): string {
    return va >= this.#sites.start && va < this.#sites.end
      ? this.#symbols.locate(va)
      : `${hex(va + this.#slide)}, outside kernel text`;
  }
}
