/**
 * QMP input framing and parsing for the gate. QEMU reads its monitor as a stream of JSON
 * values with no delimiter (`{"execute":"stop"}{"execute":"cont"}` is two commands) and
 * accepts single-quoted strings. The gate must see every command exactly as QEMU will, so it
 * splits the stream itself and parses each value with a grammar that is a subset of QEMU's:
 * whatever the gate cannot parse is answered by the gate and never reaches QEMU, so a parser
 * difference can only refuse a command, never let one through unseen.
 *
 * @module
 */

/** One top-level unit of client input. */
export interface QmpInput {
  /**
   * `value`: starts with `{` or `[`, brackets balanced, within the limits; `junk`: anything
   * else; `refused`: a value over a limit (its bytes are dropped, `reason` says which).
   */
  readonly kind: "value" | "junk" | "refused";
  /** The exact bytes, to forward unchanged (empty for `refused`). */
  readonly bytes: Uint8Array;
  /** For `refused`: QEMU's own words for the limit, with the gate's figure. */
  readonly reason?: string;
}

/**
 * The gate's limits on one value, far below QEMU's (json-streamer.c: 2 Mi tokens, 64 MiB of
 * token text, 1024 levels). QEMU counts a token per structural character, string, number
 * and literal; over a limit it drops the tokens so far and parses the bytes that follow as
 * new input — so a value the gate passed whole could reach QEMU as several commands. The gate
 * counts the same way and refuses the value instead; no QMP command comes near these.
 */
export const QMP_LIMITS = {
  /** Tokens per value (QEMU: 2,097,152). */
  tokens: 65_536,
  /** Levels of `{`/`[` (QEMU: 1024). */
  depth: 64,
  /** Bytes per value, white space included (QEMU: 64 MiB of token text). */
  bytes: 1 << 20,
} as const;

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const DQ = 0x22, SQ = 0x27, BS = 0x5c;
const OPEN = new Set([0x7b, 0x5b]), CLOSE = new Set([0x7d, 0x5d]);
const SEPARATORS = new Set([0x2c, 0x3a]);

/**
 * Splits a QMP client byte stream into top-level values; keeps state across chunks. Tokens
 * are counted as QEMU's lexer cuts them, which for any value the parser accepts is exact.
 */
export class QmpInputSplitter {
  #parts: Uint8Array[] = [];
  #size = 0;
  #mode: "idle" | "value" | "junk" | "discard" = "idle";
  #depth = 0;
  #tokens = 0;
  #inScalar = false;
  #quote = 0;
  #escape = false;

  /**
   * Feeds bytes and returns every unit they complete. A value over {@linkcode QMP_LIMITS} is
   * returned as `refused` at once; the rest of it, up to where its brackets balance, is
   * dropped.
   *
   * @param chunk the bytes read
   * @returns the units completed
   */
  push(chunk: Uint8Array): QmpInput[] {
    const out: QmpInput[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.#mode === "idle") {
        if (WS.has(b)) continue;
        start = i;
        this.#mode = OPEN.has(b) ? "value" : "junk";
        this.#depth = 0;
        this.#tokens = 0;
        this.#inScalar = false;
        this.#quote = 0;
        this.#escape = false;
      }
      if (this.#quote !== 0) {
        if (this.#escape) this.#escape = false;
        else if (b === BS) this.#escape = true;
        else if (b === this.#quote) this.#quote = 0;
        continue;
      }
      if (this.#mode === "junk") {
        if (b === DQ || b === SQ) this.#quote = b;
        else if (WS.has(b) || OPEN.has(b)) {
          out.push(this.#take(chunk, start, i, "junk"));
          if (OPEN.has(b)) i--; // the bracket starts the next value
        }
        continue;
      }
      const scalar = !(WS.has(b) || OPEN.has(b) || CLOSE.has(b) || SEPARATORS.has(b) ||
        b === DQ || b === SQ);
      if (!scalar || !this.#inScalar) {
        if (!WS.has(b)) this.#tokens++;
        this.#inScalar = scalar;
      }
      if (b === DQ || b === SQ) this.#quote = b;
      else if (OPEN.has(b)) this.#depth++;
      else if (CLOSE.has(b)) this.#depth--;
      if (this.#mode === "discard") {
        if (this.#depth <= 0) this.#mode = "idle";
        continue;
      }
      const over = this.#tokens > QMP_LIMITS.tokens
        ? `JSON token count limit exceeded (the gate allows ${QMP_LIMITS.tokens})`
        : this.#depth > QMP_LIMITS.depth
        ? `JSON nesting depth limit exceeded (the gate allows ${QMP_LIMITS.depth})`
        : this.#size + (i - start) >= QMP_LIMITS.bytes
        ? `JSON token size limit exceeded (the gate allows ${QMP_LIMITS.bytes} bytes)`
        : undefined;
      if (over) {
        out.push({ kind: "refused", bytes: new Uint8Array(0), reason: over });
        this.#parts = [];
        this.#size = 0;
        this.#mode = this.#depth <= 0 ? "idle" : "discard";
        continue;
      }
      if (this.#depth <= 0) out.push(this.#take(chunk, start, i + 1, "value"));
    }
    // Stray bytes are answered at once, as QEMU's lexer does, not held for a delimiter.
    if (this.#mode === "junk" && this.#quote === 0) {
      out.push(this.#take(chunk, start, chunk.length, "junk"));
    } else if (this.#mode === "value" || this.#mode === "junk") {
      this.#parts.push(chunk.slice(start));
      this.#size += chunk.length - start;
      if (this.#mode === "junk" && this.#size >= QMP_LIMITS.bytes) {
        // An unterminated quoted string outside a value: dropped up to its closing quote.
        out.push({ kind: "refused", bytes: new Uint8Array(0), reason: "JSON parse error" });
        this.#parts = [];
        this.#size = 0;
        this.#mode = "discard";
      }
    }
    return out;
  }

  /** Whether part of a value (or stray input) is held, waiting for more bytes. */
  get pending(): boolean {
    return this.#mode !== "idle";
  }

  #take(chunk: Uint8Array, start: number, end: number, kind: "value" | "junk"): QmpInput {
    const tail = chunk.subarray(start, end);
    let bytes: Uint8Array;
    if (this.#parts.length === 0) {
      bytes = tail.slice();
    } else {
      bytes = new Uint8Array(this.#size + tail.length);
      let at = 0;
      for (const p of this.#parts) bytes.set(p, (at += p.length) - p.length);
      bytes.set(tail, at);
    }
    this.#parts = [];
    this.#size = 0;
    this.#mode = "idle";
    return { kind, bytes };
  }
}

/** A parsed top-level QMP value, with the source text of each top-level member. */
export interface ParsedQmp {
  /** The value, numbers as JS numbers (details only: the bytes forwarded are the original). */
  readonly value: unknown;
  /** For a top-level object: each member's source text (to echo an `id` exactly). */
  readonly raw: Readonly<Record<string, string>>;
}

/** A QMP input the gate refuses to pass; `message` reads like QEMU's own. */
export class QmpSyntaxError extends Error {
  /** @param message QEMU-style description, e.g. `JSON parse error, duplicate key` */
  constructor(message: string) {
    super(message);
    this.name = "QmpSyntaxError";
  }
}

const ESCAPES: Record<string, string> = {
  '"': '"',
  "'": "'",
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const LITERAL = /true|false|null/y;

/**
 * Parses one value in QEMU's JSON dialect (RFC 8259 plus single-quoted strings), refusing
 * duplicate keys, control characters and `\u0000` as QEMU does.
 *
 * @param text the decoded bytes of one {@linkcode QmpInput}
 * @returns the value and its top-level members' source text
 * @throws {QmpSyntaxError} for anything outside the grammar
 */
export function parseQmp(text: string): ParsedQmp {
  let at = 0;
  const raw: Record<string, string> = {};
  const fail = (what: string): never => {
    throw new QmpSyntaxError(`JSON parse error, ${what}`);
  };
  const skip = () => {
    while (at < text.length && " \t\r\n".includes(text[at]!)) at++;
  };
  const string = (): string => {
    const quote = text[at++];
    let out = "";
    for (;;) {
      const c = text[at++];
      if (c === undefined) fail("missing closing quote");
      if (c === quote) return out;
      if (c! < " ") fail("control character in string");
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = text[at++]!;
      if (e in ESCAPES) out += ESCAPES[e];
      else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(at, at + 4))) {
        const unit = parseInt(text.slice(at, at + 4), 16);
        if (unit === 0) fail("\\u0000 is not supported");
        out += String.fromCharCode(unit);
        at += 4;
      } else fail(`invalid escape sequence in string`);
    }
  };
  const value = (depth: number): unknown => {
    skip();
    const c = text[at];
    // The splitter lets no deeper value through; this keeps the parser's own recursion bounded.
    if ((c === "{" || c === "[") && depth >= QMP_LIMITS.depth) fail("nesting depth limit exceeded");
    if (c === "{") {
      at++;
      const obj: Record<string, unknown> = {};
      skip();
      if (text[at] === "}") return at++, obj;
      for (;;) {
        skip();
        if (text[at] !== '"' && text[at] !== "'") fail("key is not a string");
        const key = string();
        if (Object.hasOwn(obj, key)) fail("duplicate key");
        skip();
        if (text[at++] !== ":") fail("missing ':' in object pair");
        const from = at;
        obj[key] = value(depth + 1);
        if (depth === 0) raw[key] = text.slice(from, at).trim();
        skip();
        const sep = text[at++];
        if (sep === "}") return obj;
        if (sep !== ",") fail("expected separator in dict");
      }
    }
    if (c === "[") {
      at++;
      const list: unknown[] = [];
      skip();
      if (text[at] === "]") return at++, list;
      for (;;) {
        list.push(value(depth + 1));
        skip();
        const sep = text[at++];
        if (sep === "]") return list;
        if (sep !== ",") fail("expected separator in list");
      }
    }
    if (c === '"' || c === "'") return string();
    for (const re of [NUMBER, LITERAL]) {
      re.lastIndex = at;
      const m = re.exec(text);
      if (m) {
        at = re.lastIndex;
        return re === NUMBER ? Number(m[0]) : JSON.parse(m[0]);
      }
    }
    return fail(c === undefined ? "expecting value" : `stray '${c}'`);
  };
  const result = value(0);
  skip();
  if (at !== text.length) fail(`stray '${text[at]}'`);
  return { value: result, raw };
}
