/**
 * Canonical JSON: one byte string per value, so a digest of it identifies the value. Object
 * keys are sorted by UTF-16 code units and nothing is indented, as in RFC 8785 (JCS), whose
 * number and string forms are those of `JSON.stringify`; the RFC's examples and Appendix B
 * number vectors are in the test. Written by hand, not taken from a package: the audit chain's
 * hashes depend on every byte, and a lone surrogate (outside JCS's I-JSON input) must still get
 * one stable form (`\udXXX`, as `JSON.stringify` writes it) rather than fail a record.
 *
 * @module
 */
import { createHash } from "node:crypto";

/**
 * Serialises `value` as canonical JSON.
 *
 * `undefined` object members are left out, as `JSON.stringify` does; objects with `toJSON`
 * (a `Date`) are serialised through it.
 *
 * @param value a JSON-compatible value
 * @returns the canonical text
 * @throws {TypeError} for a non-finite number, a bigint, a function, a symbol, `undefined` in
 *   an array or at the top, or a cycle; the message names the path of the offending value
 * @example
 * ```ts
 * import { canonicalJson } from "./canonical_json.ts";
 * if (canonicalJson({ b: 1, a: [true, null] }) !== '{"a":[true,null],"b":1}') throw new Error();
 * ```
 */
export function canonicalJson(value: unknown): string {
  try {
    return write(value, new Set());
  } catch (error) {
    if (!(error instanceof Unserialisable)) throw error;
    throw new TypeError(`Cannot serialise ${error.what} at $${error.path.join("")} as JSON`);
  }
}

/**
 * {@link canonicalJson} of a list, faster when every item is a string or an object whose
 * members are all strings, as an audit record's reasons and actions are: such items need no
 * general walk. Any other list goes to {@link canonicalJson}, so the result is always equal
 * to it.
 *
 * @param list the list
 * @returns the canonical text
 * @throws {TypeError} as {@link canonicalJson}
 * @example
 * ```ts
 * import { canonicalList } from "./canonical_json.ts";
 * if (canonicalList(["a", { b: "1", a: "2" }]) !== '["a",{"a":"2","b":"1"}]') throw new Error();
 * ```
 */
export function canonicalList(list: readonly unknown[]): string {
  let out = "[";
  for (let i = 0; i < list.length; i++) {
    const item = list[i];
    const text = typeof item === "string" ? JSON.stringify(item) : flatObject(item);
    if (text === undefined) return canonicalJson(list);
    out += (i ? "," : "") + text;
  }
  return out + "]";
}

/** The canonical text of a plain object of strings, or `undefined` for anything else. */
function flatObject(value: unknown): string | undefined {
  if (
    typeof value !== "object" || value === null || Array.isArray(value) ||
    typeof (value as { toJSON?: unknown }).toJSON === "function"
  ) {
    return undefined;
  }
  let out = "{";
  for (const key of Object.keys(value).sort()) {
    const member = (value as Record<string, unknown>)[key];
    if (member === undefined) continue;
    if (typeof member !== "string") return undefined;
    out += (out.length > 1 ? "," : "") + JSON.stringify(key) + ":" + JSON.stringify(member);
  }
  return out + "}";
}

/** Thrown inside {@link write}; each level adds its step to `path` on the way out, so the
 * common case builds no path strings. */
class Unserialisable {
  readonly path: string[] = [];
  constructor(readonly what: string) {}
}

function write(value: unknown, seen: Set<object>): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw new Unserialisable(`${value}`);
      return JSON.stringify(value);
    case "object":
      break;
    default:
      throw new Unserialisable(value === undefined ? "undefined" : `a ${typeof value}`);
  }
  const toJson = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJson === "function") return write(toJson.call(value), seen);
  if (seen.has(value)) throw new Unserialisable("a cycle");
  seen.add(value);
  let step = "";
  try {
    if (Array.isArray(value)) {
      let out = "[";
      for (let i = 0; i < value.length; i++) {
        step = `[${i}]`;
        out += (i ? "," : "") + write(value[i], seen);
      }
      return out + "]";
    }
    let out = "{";
    for (const key of Object.keys(value).sort()) {
      const member = (value as Record<string, unknown>)[key];
      if (member === undefined) continue;
      step = `.${key}`;
      out += (out.length > 1 ? "," : "") + JSON.stringify(key) + ":" + write(member, seen);
    }
    return out + "}";
  } catch (error) {
    if (error instanceof Unserialisable) error.path.unshift(step);
    throw error;
  } finally {
    seen.delete(value);
  }
}

/**
 * SHA-256 of bytes or a string's UTF-8, as lowercase hex.
 *
 * Synchronous `node:crypto`: about 3 µs for a few hundred bytes here, against about 20–70 µs
 * for `crypto.subtle.digest`, whose every call hops to another thread.
 *
 * @param data the bytes, or a string hashed as UTF-8
 * @returns 64 hex digits
 */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * The digest that identifies a decision's input: SHA-256 of its canonical JSON, in hex.
 *
 * @param input the decision's input (the event as received)
 * @returns 64 hex digits
 * @throws {TypeError} when `input` is not JSON-compatible (see {@link canonicalJson})
 */
export function digestInput(input: unknown): string {
  return sha256Hex(canonicalJson(input));
}
