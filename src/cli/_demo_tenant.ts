/**
 * The tenant's side of the demo: it asks for its VM's quote with a fresh nonce, over TCP with
 * its own token, and checks it offline with nothing but the manufacturer CA it pinned, the VM
 * it owns and that VM's configuration digest (docs/lifecycle.md, "Tenant attestation").
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { parseEventLog } from "../../ffi/mod.ts";
import {
  readCertificates,
  type VerifyOptions,
  verifyQuote,
  type VerifyResult,
} from "../attest/mod.ts";
import { fromHex, toHex } from "../codec/mod.ts";
import type { VaspClient } from "../wire/mod.ts";

/** A quote as the tenant received it, with what it verifies it against. */
export interface TenantQuote {
  /** The quote bytes. */
  readonly bytes: Uint8Array;
  /** Chain, pinned CA, nonce, VM binding and event log. */
  readonly options: VerifyOptions;
  /** Entries in the instance's event log. */
  readonly entries: number;
  /** The result of verifying it. */
  readonly result: VerifyResult;
}

/**
 * Fetches the VM's quote with a fresh nonce and verifies it offline.
 *
 * @param tenant the tenant's client (TCP, tenant token)
 * @param expected `vmUuid`; `configDigest` (hex); `ca`: the pinned CA certificate file's bytes
 * @returns the quote, what it was checked against, and the verifier's result
 * @throws {VaspError} what the API answers when the quote cannot be had
 */
export async function fetchAndVerify(
  tenant: VaspClient,
  expected: { vmUuid: string; configDigest: string; ca: Uint8Array },
): Promise<TenantQuote> {
  const nonce = crypto.getRandomValues(new Uint8Array(16));
  const q = await tenant.quote(expected.vmUuid, { nonce: toHex(nonce) });
  const options: VerifyOptions = {
    chain: readCertificates(new TextEncoder().encode(q.certificates.join(""))),
    root: readCertificates(expected.ca)[0]!,
    nonce,
    now: new Date(),
    vm: { vmUuid: expected.vmUuid, configDigest: fromHex(expected.configDigest) },
    eventLog: parseEventLog(new TextEncoder().encode(JSON.stringify(q.event_log))),
  };
  const bytes = new Uint8Array(Buffer.from(q.quote, "base64"));
  return { bytes, options, entries: q.event_log.length, result: await verifyQuote(bytes, options) };
}

/**
 * Verifies a copy of the quote with one bit of its first quoted register flipped.
 *
 * @param quote the tenant's quote
 * @returns the verifier's result (a refusal, when all is well)
 */
export function verifyTampered(quote: TenantQuote): Promise<VerifyResult> {
  const tampered = quote.bytes.slice();
  // Quote layout (docs/quote-format.md): a 16-byte header, the nonce, then the registers.
  tampered[16 + quote.options.nonce.length]! ^= 0x01;
  return verifyQuote(tampered, quote.options);
}
