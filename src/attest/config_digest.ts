/**
 * A VM configuration digest as the API and hooks write it: `sha256:<64 hex>` or bare hex.
 *
 * @module
 */
import { VaspError } from "../engine/error.ts";

const DIGEST = /^(sha256:)?([0-9a-fA-F]{64})$/;

/**
 * Reads a configuration digest.
 *
 * @param value the text
 * @param field its name, for the message
 * @returns 64 lower-case hex digits
 * @throws {VaspError} `request_invalid` for anything else
 * @example
 * ```ts
 * import { configDigestHex } from "./config_digest.ts";
 * configDigestHex("sha256:" + "AB".repeat(32)); // "abab…"
 * ```
 */
export function configDigestHex(value: unknown, field = "config_digest"): string {
  const match = typeof value === "string" ? DIGEST.exec(value) : null;
  if (!match) {
    throw new VaspError(
      "request_invalid",
      `Invalid ${field} ${
        JSON.stringify(value)?.slice(0, 80) ?? "undefined"
      }: expected sha256:<64 hex digits>`,
      { details: { field } },
    );
  }
  return match[2]!.toLowerCase();
}
