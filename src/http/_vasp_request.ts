/**
 * The vASP parts of requests: the configuration a VM is registered with (its digest, or its
 * domain XML whose SHA-256 is the digest), its introspection settings, and the query of a
 * tenant's quote. Every failure is `request_invalid` naming the field and the value.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { configDigestHex } from "../attest/config_digest.ts";
import type { IntrospectionSettings } from "../store/mod.ts";
import { requestError } from "./errors.ts";

const NONCE = /^(?:[0-9a-fA-F]{2}){1,64}$/;
const REGISTERS = /^\d{1,2}(,\d{1,2})*$/;

function invalid(field: string, value: unknown, want: string): never {
  throw requestError(
    "request_invalid",
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
  /** How the monitor measures the VM; absent: it is not measured. */
  readonly introspection?: IntrospectionSettings;
}

/** API field → settings field, and whether it is a path/text (else a positive integer). */
const SETTINGS: Readonly<Record<string, [keyof IntrospectionSettings, "text" | "int"]>> = {
  memory: ["memory", "text"],
  symbols: ["symbols", "text"],
  vmlinuz: ["vmlinuz", "text"],
  qmp: ["qmp", "text"],
  interval_ms: ["intervalMs", "int"],
  below_4g: ["below4g", "int"],
  qemu_version: ["qemuVersion", "text"],
  cpu: ["cpu", "text"],
  smp: ["smp", "int"],
};

/** Default milliseconds between two measurements of a VM. */
export const DEFAULT_INTERVAL_MS = 1000;
const MIN_INTERVAL_MS = 100;

/**
 * Checks introspection settings as the API takes them (snake_case): `memory` and `symbols`
 * (paths) required; `vmlinuz`, `qmp`, `interval_ms` (≥ 100, default 1000), `below_4g`,
 * `qemu_version`, `cpu`, `smp` optional.
 *
 * @param value the decoded settings
 * @returns the settings as the store keeps them
 * @throws {VaspError} `request_invalid` naming the field
 */
export function parseIntrospection(value: unknown): IntrospectionSettings {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    invalid("introspection", value, "expected an object { memory, symbols, … }");
  }
  const out: Record<string, string | number> = { intervalMs: DEFAULT_INTERVAL_MS };
  for (const [key, v] of Object.entries(value)) {
    const spec = SETTINGS[key];
    if (!spec) invalid("introspection field", key, `use ${Object.keys(SETTINGS).join(", ")}`);
    const [name, kind] = spec;
    const fits = kind === "text"
      ? typeof v === "string" && v.length > 0 && v.length <= 4096 && !v.includes("\0")
      : Number.isSafeInteger(v) && (v as number) > 0;
    if (!fits) {
      invalid(
        `introspection.${key}`,
        v,
        kind === "text" ? "a non-empty string" : "a positive integer",
      );
    }
    out[name] = v as string | number;
  }
  for (const key of ["memory", "symbols"]) {
    if (out[key] === undefined) invalid(`introspection.${key}`, undefined, "required");
  }
  if ((out.intervalMs as number) < MIN_INTERVAL_MS) {
    invalid("introspection.interval_ms", out.intervalMs, `at least ${MIN_INTERVAL_MS}`);
  }
  return out as unknown as IntrospectionSettings;
}

/**
 * Takes `config_digest` (`sha256:<hex>`) or `domain_xml` (the XML text, whose SHA-256 over
 * its UTF-8 bytes becomes the digest) out of a `POST /v1/vms` body.
 *
 * @param body the decoded body
 * @returns the rest of the body and the digest
 * @throws {VaspError} `request_invalid` for a bad digest, a non-string XML, or both given
 */
export function splitRegistration(body: unknown): Registration {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return { vm: body };
  const { config_digest: digest, domain_xml: xml, introspection, ...vm } = body as Record<
    string,
    unknown
  >;
  if (digest !== undefined && xml !== undefined) {
    invalid("field", "domain_xml", "give config_digest or domain_xml, not both");
  }
  let configDigest: string | undefined;
  if (xml !== undefined) {
    if (typeof xml !== "string" || xml.length === 0) invalid("domain_xml", xml, "the XML text");
    configDigest = createHash("sha256").update(xml, "utf8").digest("hex");
  } else if (digest !== undefined) {
    configDigest = configDigestHex(digest);
  }
  return {
    vm,
    ...(configDigest === undefined ? {} : { configDigest }),
    ...(introspection === undefined ? {} : { introspection: parseIntrospection(introspection) }),
  };
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
 * @throws {VaspError} `request_invalid` for an unknown parameter or a bad value
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
