/**
 * Checkpoints: a signed statement "the log had `seq` records and its head hash was `head`".
 * The ASP signs them with its attestation key; anything holding a key can verify them.
 *
 * One signing scheme serves every signer and verifier: ECDSA P-256 over the SHA-256 of
 * {@link SIGNED_DATA_PREFIX} ‖ message, as r ‖ s. It is the ASP's `vasp_asp_sign`, so a
 * Web Crypto key and the real ASP go through the same verifier.
 *
 * @module
 */
import { canonicalJson, sha256Hex } from "./canonical_json.ts";
import { errorMessage } from "../engine/error.ts";

/**
 * What every checkpoint signature covers before the message, as 8 ASCII bytes: the domain
 * prefix under which the ASP signs data with its attestation key, which keeps such a
 * signature from passing for a quote (`VASPQT01` …) or a certificate.
 */
export const SIGNED_DATA_PREFIX = "VASPSG01";
const PREFIX_BYTES = new TextEncoder().encode(SIGNED_DATA_PREFIX);

/** Signs checkpoints. The ASP implements it with its attestation key. */
export interface Signer {
  /**
   * Signs `data` in the checkpoint scheme: ECDSA P-256 over the SHA-256 of
   * {@link SIGNED_DATA_PREFIX} ‖ `data`, the signature as r ‖ s (64 bytes, IEEE P1363). The
   * signer adds the prefix itself, as the ASP does inside `vasp_asp_sign`.
   *
   * @param data the checkpoint message ({@link checkpointMessage}), without the prefix
   * @returns the signature
   */
  sign(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /** The verifying key, SubjectPublicKeyInfo DER. */
  readonly publicKeyInfo: Uint8Array;
  /** Certificates (DER) from the signing key's up to its root, when there are any. */
  readonly certificateChain?: readonly Uint8Array[];
}

/** Checks a checkpoint signature. */
export interface CheckpointVerifier {
  /**
   * @param data the checkpoint message, without the prefix
   * @param signature the signature stored with it
   * @returns whether the signature is valid over {@link SIGNED_DATA_PREFIX} ‖ `data`
   */
  verify(data: Uint8Array, signature: Uint8Array): boolean | Promise<boolean>;
}

/** A checkpoint as stored. */
export interface Checkpoint {
  /** The seq of the last record it covers. */
  readonly seq: number;
  /** That record's hash. */
  readonly headHash: string;
  /** When it was made. */
  readonly time: Date;
  /** SHA-256 (hex) of the signer's SPKI. */
  readonly keyId: string;
  /** The signature over {@link SIGNED_DATA_PREFIX} ‖ {@link checkpointMessage}. */
  readonly signature: Uint8Array;
  /**
   * The anchor's counter value this checkpoint took ({@link CheckpointAnchor}), under the
   * signature; absent in checkpoints made without an anchor (`vasp.audit.checkpoint.v1`).
   */
  readonly counter?: number;
}

/**
 * A monotonic counter outside the database that every checkpoint advances: the ASP's
 * `audit.checkpoints` counter. Checkpoint n carries the value the counter reaches when it is
 * made, so the newest checkpoint must carry the counter's current value (or more, while a
 * checkpoint is being made): a log whose newest checkpoint carries less lost checkpoints, or is
 * an older copy.
 */
export interface CheckpointAnchor {
  /** The counter's value; 0 before its first advance. */
  read(): number | Promise<number>;
  /**
   * Adds one, durably, before it returns.
   *
   * @returns the new value
   */
  advance(): number | Promise<number>;
}

/**
 * The checkpoint message: UTF-8 canonical JSON
 * `{"counter":…,"head":…,"seq":…,"time":…,"type":"vasp.audit.checkpoint.v2"}` for an anchored
 * checkpoint, `{"head":…,"seq":…,"time":…,"type":"vasp.audit.checkpoint.v1"}` for one without a
 * counter. A signature covers it after {@link SIGNED_DATA_PREFIX}; the type string tells it from
 * other data the ASP signs.
 *
 * @param checkpoint the checkpoint's seq, head hash, time and anchor counter
 * @returns the message to sign or verify
 */
export function checkpointMessage(
  checkpoint: Pick<Checkpoint, "seq" | "headHash" | "time" | "counter">,
): Uint8Array<ArrayBuffer> {
  const base = {
    seq: checkpoint.seq,
    head: checkpoint.headHash,
    time: checkpoint.time.toISOString(),
  };
  return new TextEncoder().encode(canonicalJson(
    checkpoint.counter === undefined
      ? { type: "vasp.audit.checkpoint.v1", ...base }
      : { type: "vasp.audit.checkpoint.v2", counter: checkpoint.counter, ...base },
  ));
}

/**
 * The ID of a signing key: SHA-256 (hex) of its SubjectPublicKeyInfo DER.
 *
 * @param publicKeyInfo SPKI DER
 * @returns 64 hex digits
 */
export function keyId(publicKeyInfo: Uint8Array): string {
  return sha256Hex(publicKeyInfo);
}

const ECDSA_P256 = { name: "ECDSA", namedCurve: "P-256" } as const;
const SHA256 = { name: "ECDSA", hash: "SHA-256" } as const;

/** The bytes a signature over `data` covers: {@link SIGNED_DATA_PREFIX} ‖ `data`. */
function signedBytes(data: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(PREFIX_BYTES.byteLength + data.byteLength);
  out.set(PREFIX_BYTES);
  out.set(data, PREFIX_BYTES.byteLength);
  return out;
}

/**
 * A verifier of checkpoint signatures (ECDSA P-256 / SHA-256 over
 * {@link SIGNED_DATA_PREFIX} ‖ data, IEEE P1363 form), through Web Crypto.
 *
 * @param key the public key: a `CryptoKey` or SubjectPublicKeyInfo DER
 * @returns the verifier
 * @throws {TypeError} when `key` is not a P-256 public key (the message says why)
 * @example
 * ```ts
 * import { ecdsaP256Signer, ecdsaP256Verifier } from "./checkpoint.ts";
 * const pair = await crypto.subtle.generateKey(
 *   { name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
 * const signer = await ecdsaP256Signer(pair);
 * const data = new Uint8Array([1, 2, 3]);
 * const ok = await (await ecdsaP256Verifier(pair.publicKey)).verify(data, await signer.sign(data));
 * if (!ok) throw new Error("signature did not verify");
 * ```
 */
export async function ecdsaP256Verifier(
  key: CryptoKey | Uint8Array<ArrayBuffer>,
): Promise<CheckpointVerifier> {
  let publicKey = key as CryptoKey;
  if (key instanceof Uint8Array) {
    try {
      publicKey = await crypto.subtle.importKey("spki", key, ECDSA_P256, false, ["verify"]);
    } catch (cause) {
      throw new TypeError(
        `Cannot use a ${key.byteLength}-byte key as an ECDSA P-256 verifying key: ` +
          errorMessage(cause),
        { cause },
      );
    }
  }
  if (
    publicKey.type !== "public" || (publicKey.algorithm as EcKeyAlgorithm).namedCurve !== "P-256"
  ) {
    throw new TypeError(
      `Cannot verify checkpoints with a ${publicKey.type} ${publicKey.algorithm.name} key: ` +
        "need an ECDSA P-256 public key",
    );
  }
  return {
    verify: (data, signature) =>
      crypto.subtle.verify(SHA256, publicKey, signature as BufferSource, signedBytes(data)),
  };
}

/**
 * A checkpoint signer on a Web Crypto ECDSA P-256 key pair, in the same scheme as the ASP
 * (over {@link SIGNED_DATA_PREFIX} ‖ data): for tests, and for a host without an ASP.
 *
 * @param pair the key pair; its public key must be exportable, or the pair `extractable`
 * @returns the signer
 * @throws {TypeError} when the public key cannot be exported as SPKI
 */
export async function ecdsaP256Signer(pair: CryptoKeyPair): Promise<Signer> {
  let publicKeyInfo: Uint8Array;
  try {
    publicKeyInfo = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
  } catch (cause) {
    throw new TypeError(`Cannot export the signer's public key as SPKI: ${cause}`, { cause });
  }
  return {
    publicKeyInfo,
    sign: async (data) =>
      new Uint8Array(await crypto.subtle.sign(SHA256, pair.privateKey, signedBytes(data))),
  };
}
