/**
 * The vASP parts of requests: the configuration a VM is registered with (its digest, or its
 * domain XML whose SHA-256 is the digest) and the query of a tenant's quote. Every failure is
 * `invalid_request` naming the field and the value.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { configDigestHex } from "../attest/config_digest.ts";
import { requestError } from "./errors.ts";

const NONCE = /^(?:[0-9a-fA-F]{2}){1,64}$/;
const REGISTERS = /^\d{1,2}(,\d{1,2})*$/;

function invalid(field: string, value: unknown, want: string): never {
  throw requestError(
    "invalid_request",
    `Invalid ${field} ${JSON.stringify(value)?.slice(0, 120) ?? "undefined"}: ${want}`,
    { field },
  );
}

/** A registration body split into the VM and what binds its vASP instance. */
export interface Registration {
  /** The body without the vASP fields, for `parseNewVm`. */
  readonly vm: unknown;
  /** SHA-256 of the configuration, hex; absent: no instance is created. */
  readonly configDigest?: string;
}

/**
 * Takes `config_digest` (`sha256:<hex>`) or `domain_xml` (the XML text, whose SHA-256 over
 * its UTF-8 bytes becomes the digest) out of a `POST /v1/vms` body.
 *
 * @param body the decoded body
 * @returns the rest of the body and the digest
 * @throws {VaspError} `invalid_request` for a bad digest, a non-string XML, or both given
 */
export function splitRegistration(body: unknown): Registration {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return { vm: body };
  const { config_digest: digest, domain_xml: xml, ...vm } = body as Record<string, unknown>;
  if (digest !== undefined && xml !== undefined) {
    invalid("field", "domain_xml", "give config_digest or domain_xml, not both");
  }
  if (xml !== undefined) {
    if (typeof xml !== "string" || xml.length === 0) invalid("domain_xml", xml, "the XML text");
    return { vm, configDigest: createHash("sha256").update(xml, "utf8").digest("hex") };
  }
  return digest === undefined ? { vm } : { vm, configDigest: configDigestHex(digest) };
}

/** A quote request. */
export interface QuoteQuery {
  /** The verifier's nonce, 1 to 64 bytes. */
  readonly nonce: Uint8Array;
  /** Registers to quote; all when absent. */
  readonly registers?: number[];
  /** Register bank. */
  readonly alg: "sha256" | "sm3";
}

/**
 * Checks the query of `GET /v1/vms/{uuid}/quote`.
 *
 * @param query `nonce` (hex, required), `registers` (`0,1,8`), `alg` (`sha256` or `sm3`)
 * @returns the quote request
 * @throws {VaspError} `invalid_request` for an unknown parameter or a bad value
 */
export function parseQuoteQuery(query: Record<string, string>): QuoteQuery {
  for (const key of Object.keys(query)) {
    if (!["nonce", "registers", "alg"].includes(key)) {
      invalid("query parameter", key, "use nonce, registers, alg");
    }
  }
  const { nonce, registers, alg = "sha256" } = query;
  if (nonce === undefined || !NONCE.test(nonce)) {
    invalid("nonce", nonce, "1 to 64 bytes in hex, fresh from the verifier");
  }
  if (alg !== "sha256" && alg !== "sm3") invalid("alg", alg, "sha256 or sm3");
  let selected: number[] | undefined;
  if (registers !== undefined) {
    selected = REGISTERS.test(registers) ? registers.split(",").map(Number) : [];
    if (
      selected.length === 0 || selected.some((r) => r > 23) ||
      new Set(selected).size !== selected.length
    ) {
      invalid("registers", registers, "distinct register numbers 0 to 23, comma-separated");
    }
  }
  return {
    nonce: new Uint8Array(nonce.match(/../g)!.map((h) => parseInt(h, 16))),
    ...(selected ? { registers: selected } : {}),
    alg,
  };
}
