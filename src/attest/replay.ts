/**
 * Replaying an event log: the register values its extends must have produced.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { EventLogEntry } from "../../ffi/event_log.ts";
import { fromHex } from "../codec/mod.ts";

/** Registers per bank. */
const NUM_REGISTERS = 24;

/**
 * Replays `entries` from all-zero registers: each extend sets
 * `reg = H(reg || digest)` in the bank's algorithm (Web Crypto has no SM3, so both banks use
 * the runtime's `node:crypto`, which needs no native library).
 *
 * @param entries the event log, in order
 * @param alg the bank to replay
 * @returns 24 register values
 * @throws {RangeError} when an entry names a register outside 0..23
 * @throws {TypeError} when an entry's digest is not 32 bytes of hex
 */
export function replayEventLog(
  entries: readonly EventLogEntry[],
  alg: "sha256" | "sm3",
): Uint8Array[] {
  const regs = Array.from({ length: NUM_REGISTERS }, () => new Uint8Array(32));
  for (const entry of entries) {
    if (!Number.isInteger(entry.reg) || entry.reg < 0 || entry.reg >= NUM_REGISTERS) {
      throw new RangeError(`Event log entry for register ${entry.reg} is out of range 0..23`);
    }
    const digest = fromHex(entry[alg], `${alg} digest of "${entry.description}"`);
    if (digest.length !== 32) throw new TypeError(`${alg} digest is not 32 bytes`);
    regs[entry.reg] = new Uint8Array(
      createHash(alg).update(regs[entry.reg]!).update(digest).digest(),
    );
  }
  return regs;
}
