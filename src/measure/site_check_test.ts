import assert from "node:assert/strict";
import { maskSites } from "./image_reference.ts";
import { loadPatchSites } from "./patch_sites.ts";
import { SiteChecker } from "./site_check.ts";
import { parseSymbolMap } from "./symbols.ts";
import type { KernelImage } from "./vmlinuz.ts";

// A synthetic kernel: 8 functions of 0x1000 bytes of INT3, one site of each kind, the site
// tables after the text, laid out as Linux 6.x lays them out.
const TEXT = 0xffffffff81000000n;
const ETEXT = TEXT + 0x8000n;
const TABLES = TEXT + 0x10000n;
const fn = (i: number) => TEXT + BigInt(i) * 0x1000n;
const SIZE = 0x20000;
const image = new Uint8Array(SIZE).fill(0xcc);
const view = new DataView(image.buffer);
const off = (va: bigint) => Number(va - TEXT);
const put = (va: bigint, bytes: number[]) => image.set(bytes, off(va));
const rel = (from: bigint, to: bigint) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, Number(to - from), true);
  return [...b];
};

const SITES = {
  jump: fn(1) + 0x10n,
  jumpTarget: fn(1) + 0x40n,
  ftrace: fn(2),
  call: fn(3) + 8n,
  tramp: fn(7) + 0x800n,
  alt: fn(4) + 0x10n,
  ret: fn(5) + 0x20n,
  retpoline: fn(6),
  lock: fn(7) + 5n,
  /** An alternative whose original holds a return site (nested: one cluster). */
  outer: fn(4) + 0x40n,
};
const REPL = TABLES + 0x800n;
const map: [bigint, string, string][] = [
  [TEXT, "T", "_text"],
  [TEXT, "T", "_stext"],
  ...Array.from({ length: 7 }, (_, i) => [fn(i), "T", `f${i}`] as [bigint, string, string]),
  [fn(0) + 0x100n, "T", "ftrace_caller"],
  [fn(0) + 0x200n, "T", "ftrace_regs_caller"],
  [fn(0) + 0x300n, "T", "__x86_return_thunk"],
  [fn(0) + 0x400n, "T", "__x86_indirect_thunk_array"],
  [fn(7), "T", "f7"],
  [fn(7) + 0x800n, "T", "__static_call_text_start"],
  [SITES.tramp, "T", "__SCT__x"],
  [SITES.tramp + 8n, "T", "__static_call_text_end"],
  [ETEXT, "T", "_etext"],
  [TABLES, "D", "__start___jump_table"],
  [TABLES + 16n, "D", "__stop___jump_table"],
  [TABLES + 0x100n, "D", "__start_mcount_loc"],
  [TABLES + 0x108n, "D", "__stop_mcount_loc"],
  [TABLES + 0x200n, "D", "__start_static_call_sites"],
  [TABLES + 0x208n, "D", "__stop_static_call_sites"],
  [TABLES + 0x300n, "R", "__alt_instructions"],
  [TABLES + 0x318n, "R", "__alt_instructions_end"],
  [TABLES + 0x400n, "R", "__return_sites"],
  [TABLES + 0x408n, "R", "__return_sites_end"],
  [TABLES + 0x500n, "R", "__retpoline_sites"],
  [TABLES + 0x504n, "R", "__retpoline_sites_end"],
  [TABLES + 0x600n, "R", "__smp_locks"],
  [TABLES + 0x604n, "R", "__smp_locks_end"],
];
const symbols = parseSymbolMap(
  map.map(([a, t, n]) => `${a.toString(16)} ${t} ${n}`).join("\n"),
  "synthetic System.map",
);
const NOP5 = [0x0f, 0x1f, 0x44, 0x00, 0x00];
// The bytes as linked.
put(SITES.jump, NOP5);
put(SITES.ftrace, NOP5);
put(SITES.call, [0xe8, ...rel(SITES.call + 5n, SITES.tramp)]);
put(SITES.tramp, [0xe9, ...rel(SITES.tramp + 5n, fn(3)), 0x0f, 0xb9, 0xcc]);
put(SITES.alt, [0x0f, 0x1f, 0x00]);
put(REPL, [0x0f, 0x01, 0xca]);
put(SITES.ret, [0xe9, ...rel(SITES.ret + 5n, fn(0) + 0x300n)]);
put(SITES.retpoline, [0x2e, 0xe8, ...rel(SITES.retpoline + 6n, fn(0) + 0x400n)]);
put(SITES.lock, [0xf0]);
// The tables, each entry relative to itself where the kernel's are.
const entryRel = (at: bigint, to: bigint) => view.setInt32(off(at), Number(to - at), true);
entryRel(TABLES, SITES.jump);
entryRel(TABLES + 4n, SITES.jumpTarget);
view.setBigUint64(off(TABLES + 0x100n), SITES.ftrace, true);
entryRel(TABLES + 0x200n, SITES.call);
entryRel(TABLES + 0x204n, TEXT); // the key: not a tail call
entryRel(TABLES + 0x300n, SITES.alt);
entryRel(TABLES + 0x304n, REPL);
view.setUint16(off(TABLES + 0x308n), 0x10, true);
image[off(TABLES + 0x30an)] = 3;
image[off(TABLES + 0x30bn)] = 3;
entryRel(TABLES + 0x400n, SITES.ret);
entryRel(TABLES + 0x404n, SITES.outer);
put(SITES.outer, [0xe9, ...rel(SITES.outer + 5n, fn(0) + 0x300n), 0x0f, 0x1f, 0x00]);
put(REPL + 0x10n, [0x0f, 0x0b]); // ud2, padded with NOPs at the site
entryRel(TABLES + 0x30cn, SITES.outer);
entryRel(TABLES + 0x310n, REPL + 0x10n);
view.setUint16(off(TABLES + 0x314n), 0x20, true);
image[off(TABLES + 0x316n)] = 8;
image[off(TABLES + 0x317n)] = 2;
entryRel(TABLES + 0x500n, SITES.retpoline);
entryRel(TABLES + 0x600n, SITES.lock);

const kernel = {
  source: "synthetic vmlinuz",
  elf: {
    end: SIZE,
    buildId: undefined,
    bytesAt: (va: bigint, len: number) =>
      va >= TEXT && va + BigInt(len) <= TEXT + BigInt(SIZE)
        ? image.subarray(off(va), off(va) + len)
        : undefined,
  },
  relocations: { abs32: new Uint32Array(), inv32: new Uint32Array(), abs64: new Uint32Array() },
} as unknown as KernelImage;

const sites = loadPatchSites(kernel, symbols);
const text = () => image.slice(0, off(ETEXT));
const checker = () =>
  new SiteChecker(sites, { symbols, relocations: kernel.relocations, slide: 0n });
const none = () => undefined;

Deno.test("loadPatchSites() reads one site of each kind from the image's tables", () => {
  assert.deepEqual(sites.counts, {
    jump_label: 1,
    ftrace: 1,
    ftrace_call: 0,
    static_call: 1,
    static_call_tramp: 1,
    alternative: 2,
    paravirt: 0,
    retpoline: 1,
    return_thunk: 2,
    smp_lock: 1,
  });
  assert.deepEqual(
    sites.sites.map((s) => [s.kind, symbols.locate(sites.start + BigInt(s.offset)), s.len]),
    [
      ["jump_label", "f1+0x10", 5],
      ["ftrace", "f2+0x0", 5],
      ["static_call", "f3+0x8", 5],
      ["alternative", "f4+0x10", 3],
      ["return_thunk", "f4+0x40", 5],
      ["alternative", "f4+0x40", 8],
      ["return_thunk", "f5+0x20", 5],
      ["retpoline", "f6+0x0", 6],
      ["smp_lock", "f7+0x5", 1],
      ["static_call_tramp", "__SCT__x+0x0", 5],
    ],
  );
});

Deno.test("SiteChecker accepts the image's own bytes and what the kernel writes at run time", () => {
  assert.deepEqual(checker().check(text(), none), {
    violations: [],
    state: {
      jumpLabelsOn: 0,
      ftraceEnabledSites: 0,
      ftraceTracer: null,
      staticCallsRetargeted: 0,
      staticCallsIntoModules: 0,
      sitesInFlux: 0,
    },
  });
  const t = text();
  const at = (va: bigint, bytes: number[]) => t.set(bytes, off(va));
  at(SITES.jump, [0xe9, ...rel(SITES.jump + 5n, SITES.jumpTarget)]); // the key flipped
  at(SITES.ftrace, [0xe8, ...rel(SITES.ftrace + 5n, fn(0) + 0x100n)]); // traced
  at(SITES.call, [0xe8, ...rel(SITES.call + 5n, fn(3))]); // the call made direct
  at(SITES.alt, [0x0f, 0x01, 0xca]); // the CPU has the feature
  at(SITES.ret, [0xc3, 0xcc, 0xcc, 0xcc, 0xcc]); // no return thunk needed
  at(SITES.retpoline, [0xff, 0xd0, 0x0f, 0x1f, 0x40, 0x00]); // call *%rax, padded
  at(SITES.lock, [0x3e]); // one CPU
  assert.deepEqual(checker().check(t, none), {
    violations: [],
    state: {
      jumpLabelsOn: 1,
      ftraceEnabledSites: 1,
      ftraceTracer: null,
      staticCallsRetargeted: 1,
      staticCallsIntoModules: 0,
      sitesInFlux: 0,
    },
  });
});

Deno.test("SiteChecker names each site holding what its kind cannot, and re-checks only changes", () => {
  const c = checker();
  const t = text();
  assert.deepEqual(c.check(t, none).violations, []);
  t.set([0xe9, ...rel(SITES.jump + 5n, SITES.jumpTarget + 0x10n)], off(SITES.jump));
  t.set([0xe9, ...rel(SITES.ftrace + 5n, 0xffffffffc0101000n)], off(SITES.ftrace));
  t[off(SITES.lock)] = 0x90;
  const found = c.check(t, none).violations;
  assert.deepEqual(found.map((v) => [v.kind, v.at]), [
    ["jump_label", "f1+0x10"],
    ["ftrace", "f2+0x0"],
    ["smp_lock", "f7+0x5"],
  ]);
  assert.match(found[0]!.message, /holds e9 3b 00 00 00 \(jmp f1\+0x50\); the image has 0f 1f 44/);
  assert.match(found[1]!.message, /\(jmp 0xffffffffc0101000, outside kernel text\)/);
  // An ftrace CALL out of the text passes only into a copy of ftrace_caller.
  t.set(NOP5, off(SITES.jump));
  t.set([0xe8, ...rel(SITES.ftrace + 5n, 0xffffffffc0001000n)], off(SITES.ftrace));
  t[off(SITES.lock)] = 0xf0;
  const caller = t.slice(0x100, 0x110);
  const copy = (va: bigint, len: number) =>
    va === 0xffffffffc0001000n ? caller.slice(0, len) : undefined;
  assert.deepEqual(c.check(t, copy).violations, []);
  assert.equal(c.check(t, none).violations[0]?.kind, "ftrace");
  // A static call may go to a function's entry or into a module, not into a function's middle.
  t.set(NOP5, off(SITES.ftrace));
  t.set([0xe8, ...rel(SITES.call + 5n, 0xffffffffc0200000n)], off(SITES.call));
  assert.deepEqual(c.check(t, none), {
    violations: [],
    state: {
      jumpLabelsOn: 0,
      ftraceEnabledSites: 0,
      ftraceTracer: null,
      staticCallsRetargeted: 1,
      staticCallsIntoModules: 1,
      sitesInFlux: 0,
    },
  });
  // Caught while the kernel rewrites a site (text_poke_bp): INT3 over a half-written tail;
  // checked again at each check, a violation once held longer than any rewrite.
  t.set([0xcc, 0x1f, 0x44, 0x34, 0x39], off(SITES.jump));
  t[off(SITES.ftrace)] = 0xcc;
  const flux = c.check(t, none, 1000);
  assert.deepEqual(flux.violations, []);
  assert.equal(flux.state.sitesInFlux, 2);
  assert.deepEqual(c.check(t, none, 9000).violations, []);
  const stuck = c.check(t, none, 11_001).violations;
  assert.deepEqual(stuck.map((v) => v.kind), ["jump_label", "ftrace"]);
  assert.match(
    stuck[0]!.message,
    /holds cc 1f 44 34 39 \(an INT3 for over 10 s: no kernel rewrite\)/,
  );
  t.set(NOP5, off(SITES.jump));
  t.set(NOP5, off(SITES.ftrace));
  t.set([0xe8, ...rel(SITES.call + 5n, fn(2) + 3n)], off(SITES.call));
  assert.deepEqual(c.check(t, none).violations.map((v) => v.message), [
    "static call site f3+0x8 holds e8 f6 ef ff ff (call f2+0x3); the image has e8 f3 47 00 00",
  ]);
});

Deno.test("maskSites() zeroes exactly the sites' bytes", () => {
  const t = text();
  maskSites(sites, t, TEXT);
  const zero = [...t.keys()].filter((i) => t[i] === 0 && image[i] !== 0);
  const covered = new Set(
    sites.sites.flatMap((s) => Array.from({ length: s.len }, (_, k) => s.offset + k)),
  );
  const expected = [...covered].filter((i) => image[i] !== 0);
  assert.deepEqual(zero, expected.sort((a, b) => a - b));
});

Deno.test("SiteChecker checks nested sites as one cluster: the outer site around the inner one", () => {
  const c = checker();
  const t = text();
  const at = off(SITES.outer);
  // The return inside patched to RET + INT3s, the rest of the original as linked.
  t.set([0xc3, 0xcc, 0xcc, 0xcc, 0xcc], at);
  assert.deepEqual(c.check(t, none).violations, []);
  // The alternative's replacement over the whole site, padded with kernel NOPs.
  t.set([0x0f, 0x0b, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0x90], at);
  assert.deepEqual(c.check(t, none).violations, []);
  // A byte of the outer site that neither the return nor the alternative may hold.
  t.set([0xc3, 0xcc, 0xcc, 0xcc, 0xcc, 0x0f, 0x1f, 0x01], at);
  assert.deepEqual(c.check(t, none).violations.map((v) => [v.kind, v.at]), [
    ["alternative", "f4+0x40"],
  ]);
});
