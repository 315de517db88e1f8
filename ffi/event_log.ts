/**
 * The event log the library returns as JSON: one entry per extend, in order.
 *
 * @module
 */
import { NativeError } from "./error.ts";

/** One extend of one register, as the event log records it. */
export interface EventLogEntry {
  /** The register extended, 0..23. */
  readonly reg: number;
  /** SHA-256 of the measured data (what the SHA-256 bank was extended with), hex. */
  readonly sha256: string;
  /** SM3 of the measured data (what the SM3 bank was extended with), hex. */
  readonly sm3: string;
  /** What was measured, as the caller described it. */
  readonly description: string;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Parses and checks the library's event-log JSON.
 *
 * @param json UTF-8 JSON: `[{"reg":N,"sha256":"hex","sm3":"hex","description":"…"}, …]`
 * @returns the entries, in order
 * @throws {NativeError} `native_failed` when the text is not such a list (a library fault)
 */
export function parseEventLog(json: Uint8Array): EventLogEntry[] {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(json));
  } catch (cause) {
    throw new NativeError("native_failed", `The event log is not UTF-8 JSON`, { cause });
  }
  if (!Array.isArray(value)) throw new NativeError("native_failed", "The event log is not a list");
  return value.map((e, i): EventLogEntry => {
    const ok = typeof e === "object" && e !== null && Number.isInteger(e.reg) && e.reg >= 0 &&
      e.reg < 24 && HEX64.test(e.sha256) && HEX64.test(e.sm3) &&
      typeof e.description === "string";
    if (!ok) {
      throw new NativeError(
        "native_failed",
        `Event log entry ${i} is malformed: ${JSON.stringify(e)}`,
      );
    }
    return { reg: e.reg, sha256: e.sha256, sm3: e.sm3, description: e.description };
  });
}
