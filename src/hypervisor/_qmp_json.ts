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

/** One top-level unit of client input: a complete JSON object/array, or stray bytes. */
export interface QmpInput {
  /** `value`: starts with `{` or `[`, brackets balanced; `junk`: anything else. */
  readonly kind: "value" | "junk";
  /** The exact bytes, to forward unchanged. */
  readonly bytes: Uint8Array;
}

/** QEMU's own limits (json-streamer.c): deeper or larger input is refused. */
const MAX_NESTING = 1024;
/** QEMU allows 64 MiB; no QMP command comes near a quarter of that. */
export const MAX_INPUT_BYTES = 16 << 20;

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const DQ = 0x22, SQ = 0x27, BS = 0x5c;
const OPEN = new Set([0x7b, 0x5b]), CLOSE = new Set([0x7d, 0x5d]);

/** Splits a QMP client byte stream into top-level values; keeps state across chunks. */
export class QmpInputSplitter {
  #parts: Uint8Array[] = [];
  #size = 0;
  #mode: "idle" | "value" | "junk" = "idle";
  #depth = 0;
  #quote = 0;
  #escape = false;

  /**
   * Feeds bytes and returns every unit they complete.
   *
   * @throws {RangeError} when a value nests deeper than QEMU allows or exceeds
   *   {@linkcode MAX_INPUT_BYTES}: the stream cannot be resynchronised, close it
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
        this.#quote = 0;
        this.#escape = false;
      }
      if (this.#quote !== 0) {
        if (this.#escape) this.#escape = false;
        else if (b === BS) this.#escape = true;
        else if (b === this.#quote) this.#quote = 0;
        continue;
      }
      if (b === DQ || b === SQ) {
        this.#quote = b;
        continue;
      }
      if (this.#mode === "junk") {
        if (WS.has(b) || OPEN.has(b)) {
          out.push(this.#take(chunk, start, i, "junk"));
          if (OPEN.has(b)) i--; // the bracket starts the next value
        }
        continue;
      }
      if (OPEN.has(b)) {
        if (++this.#depth > MAX_NESTING) {
          throw new RangeError(`QMP input nests deeper than ${MAX_NESTING} levels`);
        }
      } else if (CLOSE.has(b) && --this.#depth === 0) {
        out.push(this.#take(chunk, start, i + 1, "value"));
      }
    }
    // Stray bytes are answered at once, as QEMU's lexer does, not held for a delimiter.
    if (this.#mode === "junk" && this.#quote === 0) {
      out.push(this.#take(chunk, start, chunk.length, "junk"));
    } else if (this.#mode !== "idle") {
      this.#parts.push(chunk.slice(start));
      this.#size += chunk.length - start;
      if (this.#size > MAX_INPUT_BYTES) {
        throw new RangeError(`QMP input value larger than ${MAX_INPUT_BYTES} bytes`);
      }
    }
    return out;
  }

  #take(chunk: Uint8Array, start: number, end: number, kind: QmpInput["kind"]): QmpInput {
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
