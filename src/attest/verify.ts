/**
 * Verifying a quote offline: its structure, the chain of its signer up to the trusted
 * manufacturer CA, its signature, the VM binding, the nonce and the register values. Needs
 * Web Crypto and the X.509 parser, not the native library.
 *
 * @module
 */
import type { EventLogEntry } from "../../ffi/event_log.ts";
import { parseQuote, type Quote } from "../../ffi/quote.ts";
import { type Binding, BINDING_OID, parseBinding } from "./binding.ts";
import {
  type CertificateInfo,
  certificateInfo,
  extensionsOf,
  parseCertificate,
} from "./certificate.ts";
import { checkChain, type RoleCert } from "./chain.ts";
import { type CertRole, Refusal, type RefusalReason } from "./refusal.ts";
import { replayEventLog } from "./replay.ts";
import { fromHex, sameBytes, toHex } from "../codec/mod.ts";
import { errorMessage, isVaspError } from "../engine/error.ts";

/** What the verifier is told to expect of the VM an instance quote comes from. */
export interface ExpectedVm {
  /** The VM's UUID (any case). */
  readonly vmUuid: string;
  /** The VM's configuration digest, when it must match too. */
  readonly configDigest?: Uint8Array;
  /** The vASP instance ID, when it must match too. */
  readonly instanceId?: string;
}

/** Options of {@link verifyQuote}. */
export interface VerifyOptions {
  /**
   * DER certificates, the signer's first: `[instance, AK, EK]` for an instance quote,
   * `[AK, EK]` for an ASP quote.
   */
  readonly chain: readonly Uint8Array[];
  /** The trusted manufacturer CA certificate, DER. */
  readonly root: Uint8Array;
  /** The nonce the quote must carry. */
  readonly nonce: Uint8Array;
  /** The time certificate validity is judged at. */
  readonly now: Date;
  /** The VM an instance quote must be bound to; an ASP quote is then refused. */
  readonly vm?: ExpectedVm;
  /** Values some registers must hold (bytes or hex); each must be quoted. */
  readonly registers?: Readonly<Record<number, Uint8Array | string>>;
  /** An event log whose replay every quoted register must equal. */
  readonly eventLog?: readonly EventLogEntry[];
}

/** A quote that verified. */
export interface Verified {
  readonly ok: true;
  /** Who signed: a vASP instance, or the ASP's attestation key. */
  readonly kind: "instance" | "asp";
  /** The register bank quoted. */
  readonly alg: "sha256" | "sm3";
  /** The nonce, hex. */
  readonly nonce: string;
  /** Quoted register values by index, hex. */
  readonly registers: Readonly<Record<number, string>>;
  /** The instance certificate's binding (instance quotes only). */
  readonly binding?: Binding;
  /** The chain, signer first, ending with the trusted CA. */
  readonly chain: readonly (CertificateInfo & { readonly role: CertRole })[];
}

/** A quote that was refused, and why. */
export interface Refused {
  readonly ok: false;
  /** A stable reason code. */
  readonly reason: RefusalReason;
  /** What was refused and the offending value. */
  readonly message: string;
  /** Structured facts: which certificate or register, expected and actual values. */
  readonly details: Readonly<Record<string, unknown>>;
}

/** The outcome of {@link verifyQuote}. */
export type VerifyResult = Verified | Refused;

const ECDSA_SHA256 = { name: "ECDSA", hash: "SHA-256" } as const;

/**
 * Verifies a quote and its chain. Never throws for bad input: every refusal is a result with
 * a stable reason.
 *
 * @param quote the quote bytes, as `vasp_asp_quote`/`vasp_instance_quote` made them
 * @param options the chain, the trusted CA, the expected nonce and time, and what else must
 *   hold (VM binding, register values, an event log)
 * @returns `{ ok: true, … }` with what was attested, or `{ ok: false, reason, message }`
 * @throws {TypeError} only for a programming error in the options (e.g. a bad expected hex)
 * @example
 * ```ts ignore
 * // Needs an ASP's quote, chain and CA (tests/attest_test.ts verifies real ones).
 * const result = await verifyQuote(quote, { chain: [ak, ek], root: ca, nonce, now: new Date() });
 * if (!result.ok) console.error(result.reason, result.message);
 * ```
 */
export async function verifyQuote(
  quote: Uint8Array,
  options: VerifyOptions,
): Promise<VerifyResult> {
  const expected = expectations(options);
  try {
    return await verify(quote, options, expected);
  } catch (error) {
    if (error instanceof Refusal) {
      return { ok: false, reason: error.reason, message: error.message, details: error.details };
    }
    throw error;
  }
}

/** Checks the caller's expectations before any untrusted input is looked at. */
function expectations(options: VerifyOptions): Map<number, Uint8Array> {
  if (!(options.now instanceof Date) || Number.isNaN(options.now.getTime())) {
    throw new TypeError("verifyQuote() needs a valid `now` Date");
  }
  const out = new Map<number, Uint8Array>();
  for (const [key, value] of Object.entries(options.registers ?? {})) {
    const reg = Number(key);
    if (!Number.isInteger(reg) || reg < 0 || reg > 23) {
      throw new RangeError(`Expected register ${key} is out of range 0..23`);
    }
    const bytes = typeof value === "string" ? fromHex(value, `register ${reg}`) : value;
    if (bytes.length !== 32) throw new RangeError(`Expected register ${reg} is not 32 bytes`);
    out.set(reg, bytes);
  }
  return out;
}

async function verify(
  bytes: Uint8Array,
  options: VerifyOptions,
  expectedRegs: Map<number, Uint8Array>,
): Promise<Verified> {
  const quote = parse(bytes);
  const chain = roleCerts(options.chain);
  const root: RoleCert = { role: "ca", cert: guard(() => parseCertificate(options.root, "CA")) };
  const signerKey = await checkChain(chain, { root, now: options.now });
  const signed = await crypto.subtle.verify(
    ECDSA_SHA256,
    signerKey,
    new Uint8Array(quote.signature),
    new Uint8Array(quote.message),
  );
  if (!signed) {
    throw new Refusal(
      "bad_signature",
      `The quote's signature does not verify with the ${chain[0]!.role.toUpperCase()} ` +
        `certificate "${chain[0]!.cert.subject}"`,
      { signer: chain[0]!.role },
    );
  }
  const binding = chain[0]!.role === "instance" ? bindingOf(chain[0]!) : undefined;
  if (options.vm) checkVm(binding, options.vm);
  if (!sameBytes(quote.nonce, options.nonce)) {
    throw new Refusal(
      "wrong_nonce",
      `The quote's nonce ${toHex(quote.nonce)} is not the expected ${toHex(options.nonce)}`,
      { expected: toHex(options.nonce), actual: toHex(quote.nonce) },
    );
  }
  for (const [reg, value] of expectedRegs) checkRegister(quote, reg, value, "expected");
  if (options.eventLog) {
    const replayed = replay(options.eventLog, quote.alg);
    for (const reg of quote.registers.keys()) checkRegister(quote, reg, replayed[reg]!, "replayed");
  }
  const described = await Promise.all(
    [...chain, root].map(async (rc) => ({ role: rc.role, ...await certificateInfo(rc.cert) })),
  );
  return {
    ok: true,
    kind: binding ? "instance" : "asp",
    alg: quote.alg,
    nonce: toHex(quote.nonce),
    registers: Object.fromEntries([...quote.registers].map(([r, v]) => [r, toHex(v)])),
    ...(binding ? { binding } : {}),
    chain: described,
  };
}

/** Replays an event log from the attested side, whose malformed entries are a refusal. */
function replay(log: readonly EventLogEntry[], alg: Quote["alg"]): Uint8Array[] {
  try {
    return replayEventLog(log, alg);
  } catch (error) {
    throw new Refusal(
      "malformed_event_log",
      `Cannot replay the event log: ${errorMessage(error)}`,
    );
  }
}

/** Runs a parser, turning its error into a refusal with the error's code as reason. */
function guard<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    const reason = isVaspError(error, "quote_malformed")
      ? "quote_malformed"
      : "certificate_malformed";
    throw new Refusal(reason, errorMessage(error));
  }
}

function parse(bytes: Uint8Array): Quote {
  return guard(() => parseQuote(bytes));
}

/** Names the chain's certificates by position: `[instance, AK, EK]` or `[AK, EK]`. */
function roleCerts(chain: readonly Uint8Array[]): RoleCert[] {
  const roles: CertRole[][] = [[], [], ["ak", "ek"], ["instance", "ak", "ek"]];
  const names = roles[chain.length];
  if (!names || names.length === 0) {
    throw new Refusal(
      "chain_broken",
      `A chain of ${chain.length} certificates is neither [AK, EK] nor [instance, AK, EK]`,
      { length: chain.length, check: "length" },
    );
  }
  return chain.map((der, i) => {
    const role = names[i]!;
    return { role, cert: guard(() => parseCertificate(der, `${role.toUpperCase()} certificate`)) };
  });
}

function bindingOf(rc: RoleCert): Binding {
  const ext = guard(() => extensionsOf(rc.cert)).find((e) => e.oid === BINDING_OID);
  if (!ext) {
    throw new Refusal(
      "wrong_vm",
      `The instance certificate "${rc.cert.subject}" carries no VM binding extension`,
      { check: "binding_missing" },
    );
  }
  try {
    return parseBinding(ext.value);
  } catch (error) {
    throw new Refusal("wrong_vm", errorMessage(error), { check: "binding_malformed" });
  }
}

function checkVm(binding: Binding | undefined, vm: ExpectedVm): void {
  const want = vm.vmUuid.toLowerCase();
  if (!binding) {
    throw new Refusal(
      "wrong_vm",
      `The quote is signed by the ASP's attestation key, not by a vASP instance of VM "${want}"`,
      { expected: want, actual: null, check: "vm_uuid" },
    );
  }
  const mismatch = (check: string, expected: string, actual: string): never => {
    throw new Refusal(
      "wrong_vm",
      `The instance certificate binds ${check.replace("_", " ")} "${actual}", not "${expected}"`,
      { check, expected, actual },
    );
  };
  if (binding.vmUuid !== want) mismatch("vm_uuid", want, binding.vmUuid);
  if (vm.instanceId !== undefined && binding.instanceId !== vm.instanceId.toLowerCase()) {
    mismatch("instance_id", vm.instanceId.toLowerCase(), binding.instanceId);
  }
  if (vm.configDigest && !sameBytes(binding.configDigest, vm.configDigest)) {
    mismatch("config_digest", toHex(vm.configDigest), toHex(binding.configDigest));
  }
}

function checkRegister(quote: Quote, reg: number, want: Uint8Array, source: string): void {
  const got = quote.registers.get(reg);
  if (!got) {
    throw new Refusal("register_mismatch", `Register ${reg} is not in the quote`, {
      register: reg,
      source,
    });
  }
  if (!sameBytes(got, want)) {
    throw new Refusal(
      "register_mismatch",
      `Register ${reg} (${quote.alg}) is ${toHex(got)}, ${source} ${toHex(want)}`,
      { register: reg, source, expected: toHex(want), actual: toHex(got) },
    );
  }
}
