/**
 * Masked text measurement against the plain hash it replaced, on a real KASLR guest:
 *
 * - plain: copy `[_stext, _etext)` out of guest RAM, undo the KASLR relocations, SHA-256;
 * - masked: the same, plus checking every patch site against what the kernel may write
 *   there and masking the sites before hashing (what `KernelMeasurer` does when a text's
 *   MAC changed).
 *
 * Both run interleaved in one process, 15 times each; the ratio of the medians is the
 * figure (goal: masked within 1.5× of plain). A checker re-checks only the sites whose bytes
 * changed since its last check, so the first check of a boot (every site) is given apart. Also: how many sites of each kind, and the
 * time to read them from the image and to prepare a checker for one boot.
 *
 * Run: `deno run -A bench/sites_bench.ts` (boots one guest, about 30 s). Prints a table.
 *
 * @module
 */
import { GuestMemory, hashBatch } from "../ffi/mod.ts";
import {
  KernelMeasurer,
  loadPatchSites,
  maskSites,
  SiteChecker,
  undoRelocations,
} from "../src/measure/mod.ts";
import { bootGuest, loadGuestKernel } from "../tests/fixtures/guest.ts";

const GOAL = 1.5;
const RUNS = 15;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const kernel = await loadGuestKernel();
await using guest = await bootGuest({ kaslr: true });
using memory = GuestMemory.open(guest.ramPath);
const measurer = KernelMeasurer.create(memory, kernel.symbols, { image: kernel.image });
const slide = measurer.layout.virtOffset;
const walk = { cr3: measurer.cr3, paging: measurer.paging };

const loads: number[] = [];
const prepares: number[] = [];
let sites = loadPatchSites(kernel.image, kernel.symbols);
let checker!: SiteChecker;
for (let i = 0; i < 5; i++) {
  sites = loadPatchSites(kernel.image, kernel.symbols);
  loads.push(sites.loadMs);
  const t = performance.now();
  checker = new SiteChecker(sites, {
    symbols: kernel.symbols,
    relocations: kernel.image.relocations,
    slide,
  });
  prepares.push(performance.now() - t);
}

const len = Number(sites.end - sites.start);
const read = (va: bigint, n: number) => {
  try {
    return memory.readVirt(va, n, walk);
  } catch {
    return undefined;
  }
};
const copy = () => memory.readVirt(sites.start + slide, len, walk) as Uint8Array<ArrayBuffer>;
const normalise = (b: Uint8Array) =>
  undoRelocations(b, sites.start, { slide, relocations: kernel.image.relocations });

// The first check of a boot looks at every site; later ones only at the sites whose bytes
// changed since (a changed MAC), plus those calling out of the text.
const firstChecks: number[] = [];
for (let i = 0; i < 5; i++) {
  const fresh = new SiteChecker(sites, {
    symbols: kernel.symbols,
    relocations: kernel.image.relocations,
    slide,
  });
  const text = copy();
  const t = performance.now();
  fresh.check(text, read);
  firstChecks.push(performance.now() - t);
}

const plain: number[] = [];
const masked: number[] = [];
const checks: number[] = [];
let violations = 0;
for (let i = 0; i < RUNS + 2; i++) {
  let t = performance.now();
  const a = copy();
  normalise(a);
  hashBatch("sha256", [a]);
  const p = performance.now() - t;

  t = performance.now();
  const b = copy();
  const c0 = performance.now();
  violations = checker.check(b, read).violations.length;
  const c = performance.now() - c0;
  normalise(b);
  maskSites(sites, b, sites.start);
  hashBatch("sha256", [b]);
  const m = performance.now() - t;
  if (i >= 2) { // the first two warm the JIT
    plain.push(p);
    masked.push(m);
    checks.push(c);
  }
}

const ratio = median(masked) / median(plain);
const total = sites.sites.length;
const ms = (v: number) => `${v.toFixed(1)} ms`;
console.log(`kernel text: ${(len / 1e6).toFixed(1)} MB, slide 0x${slide.toString(16)}`);
console.log(
  `patch sites: ${total} (${Object.entries(sites.counts).map(([k, n]) => `${k} ${n}`).join(", ")})`,
);
console.log(
  `reading them from the image: ${ms(median(loads))}; a checker for one boot: ${
    ms(median(prepares))
  }`,
);
console.log(`violations on the running guest: ${violations}`);
const row = (what: string, v: number) =>
  console.log(`| ${what.padEnd(44)} | ${ms(v).padStart(12)} |`);
console.log(`| ${"path".padEnd(44)} | median of ${RUNS} |`);
console.log(`| ${"-".repeat(44)} | ------------ |`);
row("plain: copy + undo relocations + SHA-256", median(plain));
row(`masked: + check ${total} sites + mask`, median(masked));
row("  of which the site checks (sites unchanged)", median(checks));
row("first check of a boot (every site)", median(firstChecks));
console.log(
  `masked / plain: ${ratio.toFixed(2)}× (goal ≤ ${GOAL}×) ${ratio <= GOAL ? "MET" : "MISSED"}`,
);
const first = (median(masked) - median(checks) + median(firstChecks)) / median(plain);
console.log(`first measurement of a boot, masked / plain: ${first.toFixed(2)}×`);
