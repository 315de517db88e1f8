/**
 * Small pieces of the QMP wire format the gate writes and reads itself.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * The `id` to echo: as sent when it is standard JSON (big integers kept), else re-encoded.
 *
 * @param raw the member's source text
 * @param value the parsed member
 * @returns JSON text, or undefined when the command had no id
 */
export function echoId(raw: string | undefined, value: unknown): string | undefined {
  if (raw === undefined) return undefined;
  try {
    JSON.parse(raw);
    return raw;
  } catch {
    return JSON.stringify(value);
  }
}

/**
 * A QMP error reply line, as QEMU writes one.
 *
 * @param desc the error's description
 * @param id the command's id as JSON text
 * @returns the line's bytes
 */
export function errorReply(desc: string, id?: string): Uint8Array {
  const error = JSON.stringify({ class: "GenericError", desc });
  return encoder.encode(`{"error": ${error}${id === undefined ? "" : `, "id": ${id}`}}\r\n`);
}

/** How QEMU starts a successful reply. */
export const RETURN_PREFIX: Uint8Array = encoder.encode('{"return": ');

/**
 * @param bytes a line
 * @param prefix what it may start with
 * @returns whether it does
 */
export function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);
}

/**
 * @param bytes a line from QEMU
 * @returns the JSON object, or undefined when it is none
 */
export function safeParse(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(decoder.decode(bytes));
    return typeof v === "object" && v !== null ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * @param a first bytes
 * @param b bytes after them
 * @returns both in one array
 */
export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
