/**
 * Decision and event IDs: UUIDv7 (RFC 9562), so that IDs sort by the time they were made and
 * an audit search by ID prefix finds neighbours.
 *
 * @module
 */
import { toHex } from "../codec/mod.ts";

/** Makes IDs. */
export interface IdSource {
  /**
   * A new ID, greater than every ID this source made before.
   *
   * @returns a lower-case UUIDv7
   */
  next(): string;
}

/**
 * A UUIDv7 source. Within one millisecond the 12-bit `rand_a` field counts up (RFC 9562
 * method 1), so IDs from one process are strictly increasing even when the clock stalls or
 * steps back.
 *
 * @param now the clock, in milliseconds since the epoch (default `Date.now`)
 * @returns the source
 * @example
 * ```ts
 * import { uuidV7Source } from "./ids.ts";
 * const ids = uuidV7Source(() => 0);
 * const a = ids.next(), b = ids.next();
 * if (!(a < b) || a[14] !== "7") throw new Error("not sortable UUIDv7s");
 * ```
 */
export function uuidV7Source(now: () => number = Date.now): IdSource {
  let lastMs = -1;
  let counter = 0;
  const bytes = new Uint8Array(16);
  return {
    next() {
      let ms = Math.max(Math.floor(now()), 0);
      if (ms <= lastMs) {
        ms = lastMs;
        counter++;
        if (counter > 0xfff) {
          // The counter ran out within this millisecond: borrow the next one.
          ms = ++lastMs;
          counter = 0;
        }
      } else {
        counter = 0;
      }
      lastMs = ms;
      crypto.getRandomValues(bytes);
      const high = Math.floor(ms / 2 ** 16);
      bytes[0] = (high >>> 24) & 0xff;
      bytes[1] = (high >>> 16) & 0xff;
      bytes[2] = (high >>> 8) & 0xff;
      bytes[3] = high & 0xff;
      bytes[4] = (ms >>> 8) & 0xff;
      bytes[5] = ms & 0xff;
      bytes[6] = 0x70 | (counter >>> 8);
      bytes[7] = counter & 0xff;
      bytes[8] = 0x80 | (bytes[8] & 0x3f);
      const h = toHex(bytes);
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${
        h.slice(20)
      }`;
    },
  };
}
