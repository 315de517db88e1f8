/**
 * Fuzzing the gate's QMP JSON reader (`_qmp_json.ts`): the framing of a client's byte stream
 * into values (`QmpInputSplitter`), its token, nesting and size accounting, and the parser of
 * QEMU's dialect (`parseQmp`). Seeded and bounded (tests/fixtures/fuzz.ts); the corpus is
 * tests/corpus/qmp/. Properties:
 *
 * - the splitter never throws, and what it hands on as `value` or `junk` is bytes of the input,
 *   in order (it invents nothing);
 * - how the bytes arrive (one read, random chunks, single bytes) changes neither the values
 *   nor the refusals;
 * - every `value` is within the limits by an independent count (a regex lexer cutting tokens
 *   as QEMU's does): tokens, nesting and size never exceed `QMP_LIMITS`, and a value built
 *   right at a limit passes while one just over it is refused;
 * - `parseQmp` throws nothing but `QmpSyntaxError`, on the splitter's values and on raw text.
 */
import assert from "node:assert/strict";
import { corpus, iterations, mutate, type Rng, rng } from "../../tests/fixtures/fuzz.ts";
import {
  parseQmp,
  QMP_LIMITS,
  type QmpInput,
  QmpInputSplitter,
  QmpSyntaxError,
} from "./_qmp_json.ts";

const decoder = new TextDecoder("utf-8", { fatal: true });
const latin1 = new TextDecoder("latin1");

/** Tokens, nesting and size of one complete value, counted apart from the splitter. */
function measure(bytes: Uint8Array): { tokens: number; depth: number; size: number } {
  const text = latin1.decode(bytes);
  const lexer =
    /[ \t\r\n]+|[{}[\]:,]|"(?:[^"\\]|\\[\s\S])*"|'(?:[^'\\]|\\[\s\S])*'|[^ \t\r\n{}[\]:,"']+/y;
  let tokens = 0, depth = 0, max = 0;
  for (let m; (m = lexer.exec(text)) !== null;) {
    const t = m[0];
    if (/^[ \t\r\n]/.test(t)) continue;
    tokens++;
    if (t === "{" || t === "[") max = Math.max(max, ++depth);
    else if (t === "}" || t === "]") depth--;
  }
  assert.equal(lexer.lastIndex === 0 ? text.length : lexer.lastIndex, text.length, "lexed whole");
  return { tokens, depth: max, size: bytes.length };
}

const within = (m: ReturnType<typeof measure>) =>
  m.tokens <= QMP_LIMITS.tokens && m.depth <= QMP_LIMITS.depth && m.size <= QMP_LIMITS.bytes;

/** Feeds `input` in chunks cut by `cut` and returns every unit. */
function split(input: Uint8Array, cut: (left: number) => number): QmpInput[] {
  const s = new QmpInputSplitter();
  const out: QmpInput[] = [];
  for (let at = 0; at < input.length;) {
    const n = Math.max(1, Math.min(cut(input.length - at), input.length - at));
    out.push(...s.push(input.subarray(at, at + n)));
    at += n;
  }
  return out;
}

/** Checks that each value/junk unit is a slice of `input`, in order. */
function fromInput(units: QmpInput[], input: Uint8Array): void {
  let from = 0;
  for (const u of units) {
    if (u.kind === "refused") {
      assert.equal(u.bytes.length, 0);
      assert.match(u.reason!, /limit exceeded|JSON parse error/);
      continue;
    }
    assert.ok(u.bytes.length > 0);
    let at = from;
    const first = u.bytes[0]!;
    for (;; at++) {
      assert.ok(at + u.bytes.length <= input.length, "a unit's bytes come from the input");
      if (input[at] !== first) continue;
      if (input.subarray(at, at + u.bytes.length).every((b, i) => b === u.bytes[i])) break;
    }
    from = at + u.bytes.length;
  }
}

/** The parser on one unit: its value, or null when refused with QmpSyntaxError/bad UTF-8. */
function parse(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch (error) {
    assert.ok(error instanceof TypeError);
    return null;
  }
  try {
    return parseQmp(text).value;
  } catch (error) {
    if (error instanceof QmpSyntaxError) return null;
    throw error;
  }
}

const values = (units: QmpInput[]) =>
  units.filter((u) => u.kind !== "junk").map((u) => `${u.kind}:${latin1.decode(u.bytes)}`);

/** One random way of cutting a stream: whole, single bytes, or random chunks. */
function cutter(r: Rng): (left: number) => number {
  switch (r(3)) {
    case 0:
      return (left) => left;
    case 1:
      return () => 1;
    default:
      return () => 1 + r(64);
  }
}

Deno.test("the QMP reader frames mutated streams the same however they arrive, and never passes a value over its limits", () => {
  const r = rng(21);
  const seeds = corpus("qmp");
  assert.ok(seeds.length >= 5);
  for (const seed of seeds) {
    const units = split(seed.bytes, (left) => left);
    assert.ok(units.some((u) => u.kind === "value" && parse(u.bytes) !== null), seed.name);
  }
  let parsed = 0, refusedByParser = 0;
  const n = iterations(5000);
  for (let i = 0; i < n; i++) {
    const seed = seeds[i % seeds.length]!.bytes;
    // Sometimes two corpus streams back to back, then 1–8 mutations.
    const base = r(4) === 0 ? Uint8Array.from([...seed, ...seeds[r(seeds.length)]!.bytes]) : seed;
    const input = mutate(r, base);
    try {
      const whole = split(input, (left) => left);
      const chunked = split(input, cutter(r));
      fromInput(whole, input);
      fromInput(chunked, input);
      assert.deepEqual(values(chunked), values(whole), "framing depends on how bytes arrive");
      for (const u of whole) {
        if (u.kind !== "value") continue;
        assert.ok(u.bytes[0] === 0x7b || u.bytes[0] === 0x5b);
        const m = measure(u.bytes);
        assert.ok(within(m), `a value over the limits passed: ${JSON.stringify(m)}`);
        if (parse(u.bytes) === null) refusedByParser++;
        else parsed++;
      }
      for (const u of whole) if (u.kind === "junk") parse(u.bytes);
    } catch (error) {
      assert.fail(`seed ${r.seed} iteration ${i}: ${(error as Error).stack}`);
    }
  }
  assert.ok(parsed > n / 10, `some mutations still parse (${parsed})`);
  assert.ok(refusedByParser > 0, "some are refused by the parser");
});

/** A value right around one limit: `delta` tokens, levels or bytes from it. */
function nearLimit(r: Rng, delta: number): Uint8Array {
  const enc = (s: string) => new TextEncoder().encode(s);
  switch (r(4)) {
    case 0: { // [1,1,…,1]: 2k + 1 tokens inside the brackets
      const want = QMP_LIMITS.tokens + delta;
      const k = Math.max(0, Math.floor((want - 3) / 2));
      const extra = (want - 3) % 2 === 0 ? "" : ",1";
      const body = "1,".repeat(k) + "1" + (want - 3 >= 0 ? extra : "");
      return enc(`[${body}]`);
    }
    case 1: { // strings, literals and white space between them
      const want = QMP_LIMITS.tokens + delta - (QMP_LIMITS.tokens + delta) % 2; // even
      return enc(`[ ${'"a" , '.repeat((want - 2) / 2 - 1)}true ]`);
    }
    case 2: { // nesting, objects and lists
      const d = QMP_LIMITS.depth + delta;
      const open = Array.from({ length: d }, () => (r(2) ? '{"k":' : "["));
      const close = open.map((o) => (o === "[" ? "]" : "}")).reverse();
      return enc(open.join("") + "1" + close.join(""));
    }
    default: { // one long string: size
      const size = QMP_LIMITS.bytes + delta;
      return enc(`{"execute":"${"x".repeat(size - 15)}"}`);
    }
  }
}

Deno.test("the QMP reader's accounting is exact at its limits: at the limit passes, one over is refused", () => {
  const r = rng(22);
  const n = iterations(60);
  let passed = 0, refused = 0;
  for (let i = 0; i < n; i++) {
    const delta = r(7) - 3; // -3 … +3
    let input = nearLimit(r, delta);
    const mutated = r(3) === 0;
    if (mutated) input = mutate(r, input);
    try {
      // A value before and after: the limit's refusal must not eat its neighbours.
      const stream = Uint8Array.from([
        ...new TextEncoder().encode('{"execute":"cont"}'),
        ...input,
        ...new TextEncoder().encode(' {"execute":"stop"}'),
      ]);
      const units = split(stream, r(2) ? (left) => left : () => 1 + r(4096));
      fromInput(units, stream);
      for (const u of units) {
        if (u.kind === "value") {
          assert.ok(within(measure(u.bytes)), "a value over the limits passed");
        }
      }
      if (mutated) continue;
      const m = measure(input);
      const middle = units.slice(1, -1);
      assert.equal(latin1.decode(units[0]!.bytes), '{"execute":"cont"}');
      assert.equal(latin1.decode(units.at(-1)!.bytes), '{"execute":"stop"}');
      assert.equal(middle.length, 1);
      assert.equal(middle[0]!.kind, within(m) ? "value" : "refused", JSON.stringify(m));
      if (within(m)) passed++;
      else refused++;
    } catch (error) {
      assert.fail(`seed ${r.seed} iteration ${i}: ${(error as Error).stack}`);
    }
  }
  assert.ok(
    passed > 0 && refused > 0,
    `both sides of the limits were tried (${passed}/${refused})`,
  );
});

Deno.test("parseQmp throws only QmpSyntaxError on mutated text, deep nesting included", () => {
  const r = rng(23);
  const seeds = corpus("qmp").map((s) => latin1.decode(s.bytes));
  const alphabet = `{}[]:,"'\\ \t\nu0aA1-.eE+truefalsnl\u0000\u00e9\ud800`;
  for (let i = 0, n = iterations(5000); i < n; i++) {
    let text = seeds[i % seeds.length]!;
    for (let k = 1 + r(6); k > 0; k--) {
      const at = r(text.length + 1);
      const piece = r(8) === 0
        ? "[".repeat(1 + r(5000))
        : Array.from({ length: 1 + r(4) }, () => alphabet[r(alphabet.length)]).join("");
      text = r(3) === 0
        ? text.slice(0, at) + text.slice(at + 1 + r(8))
        : text.slice(0, at) + piece + text.slice(at);
    }
    try {
      parseQmp(text);
    } catch (error) {
      if (error instanceof QmpSyntaxError) continue;
      assert.fail(`seed ${r.seed} iteration ${i}: ${(error as Error).stack}`);
    }
  }
  // Far deeper than the splitter lets through: refused, not a stack overflow.
  assert.throws(() => parseQmp("[".repeat(100_000) + "]".repeat(100_000)), QmpSyntaxError);
});
