/**
 * Checkpoints: a signed statement "the log had `seq` records and its head hash was `head`".
 * The ASP signs them with its attestation key; anything holding a key can verify them.
 *
 * @module
 */
import { canonicalJson, sha256Hex } from "./canonical_json.ts";

/** Signs checkpoints. The ASP implements it with its attestation key. */
export interface Signer {
  /**
   * Signs `data`: ECDSA P-256 over SHA-256 of `data`, the signature as r ‖ s (64 bytes,
   * IEEE P1363), as Web Crypto and the ASP's quotes write it.
   *
   * @param data the checkpoint message ({@link checkpointMessage})
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
   * @param data the checkpoint message
   * @param signature the signature stored with it
   * @returns whether the signature is valid
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
  /** The signature over {@link checkpointMessage}. */
  readonly signature: Uint8Array;
}

/**
 * The bytes a checkpoint signature covers: UTF-8 canonical JSON
 * `{"head":…,"seq":…,"time":…,"type":"vasp.audit.checkpoint.v1"}`. The type string keeps
 * a checkpoint signature from being mistaken for a signature over anything else.
 *
 * @param checkpoint the checkpoint's seq, head hash and time
 * @returns the message to sign or verify
 */
export function checkpointMessage(
  checkpoint: Pick<Checkpoint, "seq" | "headHash" | "time">,
): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(canonicalJson({
    type: "vasp.audit.checkpoint.v1",
    seq: checkpoint.seq,
    head: checkpoint.headHash,
    time: checkpoint.time.toISOString(),
  }));
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

/**
 * A verifier for ECDSA P-256 / SHA-256 signatures in IEEE P1363 form, through Web Crypto.
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
          (cause as Error).message,
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
      crypto.subtle.verify(SHA256, publicKey, signature as BufferSource, data as BufferSource),
  };
}

/**
 * A signer on a Web Crypto ECDSA P-256 key pair: for tests, and for a host that signs
 * checkpoints without an ASP.
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
      new Uint8Array(await crypto.subtle.sign(SHA256, pair.privateKey, data as BufferSource)),
  };
}
