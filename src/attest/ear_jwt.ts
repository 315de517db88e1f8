/**
 * EARs as signed JWTs (JWS ES256), and the server's EAR key.
 *
 * The ASP's attestation key cannot sign a JWS itself: `Asp.sign` signs `VASPSG01 ‖ data`,
 * and a JWS signing input starts with the base64url of a JSON header (`eyJ…`), never with
 * `VASPSG01`, so no AK signature is ever a valid ES256 signature over a JWS. The server
 * therefore generates an EAR key (ECDSA P-256, in memory only, new at every start) and the AK
 * endorses it: `Asp.sign("VASPEK01" ‖ SHA-256 JWK thumbprint)` (RFC 7638). A verifier checks
 * the AK chain up to the manufacturer CA, the endorsement with the AK, then the JWT with the
 * endorsed key (docs/quote-format.md, "EAR").
 *
 * @module
 */
import {
  base64url,
  calculateJwkThumbprint,
  exportJWK,
  importJWK,
  type JWK,
  jwtVerify,
  SignJWT,
} from "jose";
import { errorMessage } from "../engine/error.ts";
import { checkAkChain } from "./ak_chain.ts";
import { type AppraiseOptions, appraiseQuote, type Evidence } from "./appraise.ts";
import { EAR_PROFILE, type EarClaims, earClaims, type EarStatus, worstStatus } from "./ear.ts";
import { toHex } from "../codec/mod.ts";

/** What the AK signs to endorse an EAR key: this prefix, then the key's JWK thumbprint. */
export const EAR_KEY_ENDORSEMENT = "VASPEK01";

/** What `Asp.sign` prefixes to everything it signs. */
const SIGN_PREFIX = "VASPSG01";

/** The policy the server appraises its own evidence with. */
export const SERVER_POLICY_ID = "urn:vasp:appraisal:quote-server:1";

/** The EAR key's public JWK. */
export interface EarPublicJwk extends JWK {
  readonly kty: "EC";
  readonly crv: "P-256";
  readonly x: string;
  readonly y: string;
  /** Its SHA-256 JWK thumbprint (RFC 7638), base64url. */
  readonly kid: string;
  readonly alg: "ES256";
  readonly use: "sig";
}

/** An EAR key as published beside the EAR. */
export interface EarKey {
  /** A JWK set holding the one public key. */
  readonly jwks: { readonly keys: readonly EarPublicJwk[] };
  /** The AK's signature over `VASPSG01 ‖ VASPEK01 ‖ thumbprint`, base64url, 64 bytes r ‖ s. */
  readonly endorsement: string;
}

/** An issued EAR. */
export interface IssuedEar {
  /** The compact JWS. */
  readonly token: string;
  /** Its status. */
  readonly status: EarStatus;
  /** Its claims set. */
  readonly claims: EarClaims;
}

/** Options of {@link EarIssuer.create}. */
export interface EarIssuerOptions {
  /** Signs with the ASP's AK (`Asp.sign`: over `VASPSG01 ‖ data`). */
  readonly sign: (data: Uint8Array) => Uint8Array | Promise<Uint8Array>;
  /** The ASP's manufacturer CA, DER: the server checks its own evidence against it. */
  readonly root: Uint8Array;
  /** `ear.verifier-id.build`, e.g. `vasp 0.1.0`. */
  readonly build: string;
}

const ES256 = { name: "ECDSA", namedCurve: "P-256" } as const;

/** Issues the server's EARs with a fresh key endorsed by the ASP's AK. */
export class EarIssuer {
  readonly #privateKey: CryptoKey;
  readonly #kid: string;
  readonly #root: Uint8Array;
  readonly #build: string;
  /** The public key and its endorsement, published beside every EAR. */
  readonly key: EarKey;

  private constructor(privateKey: CryptoKey, key: EarKey, root: Uint8Array, build: string) {
    this.#privateKey = privateKey;
    this.#kid = key.jwks.keys[0]!.kid!;
    this.key = key;
    this.#root = root;
    this.#build = build;
  }

  /**
   * Generates the EAR key and has the AK endorse it.
   *
   * @param options the AK signer, the CA and the build string
   * @returns the issuer
   * @example
   * ```ts ignore
   * const issuer = await EarIssuer.create({
   *   sign: (d) => asp.sign(d), root: asp.certificate("ca"), build: "vasp 0.1.0",
   * });
   * ```
   */
  static async create(options: EarIssuerOptions): Promise<EarIssuer> {
    const pair = await crypto.subtle.generateKey(ES256, false, ["sign", "verify"]);
    const jwk = await exportJWK(pair.publicKey);
    const kid = await calculateJwkThumbprint(jwk, "sha256");
    const signature = await options.sign(endorsed(kid));
    const key: EarKey = {
      jwks: {
        keys: [{ kty: "EC", crv: "P-256", x: jwk.x!, y: jwk.y!, kid, alg: "ES256", use: "sig" }],
      },
      endorsement: base64url.encode(signature),
    };
    return new EarIssuer(pair.privateKey, key, options.root, options.build);
  }

  /**
   * Appraises evidence the server produced and signs the EAR.
   *
   * @param evidence the quote, chain and event log
   * @param options the nonce, the time, the VM the quote must come from, expected references
   * @returns the JWT, its status and claims
   */
  async issue(
    evidence: Evidence,
    options: Omit<AppraiseOptions, "root" | "policyId"> & { policyId?: string },
  ): Promise<IssuedEar> {
    const appraisal = await appraiseQuote(evidence, {
      ...options,
      root: this.#root,
      policyId: options.policyId ?? SERVER_POLICY_ID,
    });
    const claims = earClaims(appraisal.submod, {
      now: options.now,
      nonce: toHex(options.nonce),
      build: this.#build,
    });
    const token = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: "ES256", typ: "JWT", kid: this.#kid })
      .sign(this.#privateKey);
    return { token, status: appraisal.status, claims };
  }
}

/** The bytes the AK signs for an EAR key (before `Asp.sign`'s own prefix). */
function endorsed(kid: string): Uint8Array {
  const prefix = new TextEncoder().encode(EAR_KEY_ENDORSEMENT);
  const thumbprint = base64url.decode(kid);
  const out = new Uint8Array(prefix.length + thumbprint.length);
  out.set(prefix);
  out.set(thumbprint, prefix.length);
  return out;
}

/** Why an EAR was not accepted. */
export type EarRefusalReason =
  | "ear_key_unendorsed"
  | "ear_invalid"
  | "wrong_nonce"
  | "chain_broken"
  | "foreign_root"
  | "certificate_malformed"
  | "cert_expired"
  | "cert_not_yet_valid";

/** The outcome of {@link verifyEar}. */
export type EarVerification =
  | { readonly ok: true; readonly status: EarStatus; readonly claims: EarClaims }
  | { readonly ok: false; readonly reason: EarRefusalReason; readonly message: string };

/**
 * Verifies a server's EAR: the AK chain `[AK, EK]` up to the trusted CA, the AK's
 * endorsement of the EAR key, the JWT's ES256 signature with that key, its profile, and its
 * nonce. Never throws for bad input.
 *
 * @param token the compact JWS
 * @param options `key`: the published EAR key; `akChain`: `[AK, EK]` DER (the quote answer's
 *   2nd and 3rd certificates); `root`: the trusted CA, DER; `now`; `nonce`: the verifier's,
 *   hex (the EAR must carry it)
 * @returns the claims and status, or a refusal with its reason
 * @example
 * ```ts ignore
 * const ear = await verifyEar(answer.ear.token, { key: answer.ear, akChain, root, now, nonce });
 * if (ear.ok) console.log(ear.status);
 * ```
 */
export async function verifyEar(
  token: string,
  options: {
    key: { readonly jwks: { readonly keys: readonly JWK[] }; readonly endorsement: string };
    akChain: readonly Uint8Array[];
    root: Uint8Array;
    now: Date;
    nonce: string;
  },
): Promise<EarVerification> {
  const ak = await checkAkChain(options.akChain, { root: options.root, now: options.now });
  if (!ak.ok) return { ok: false, reason: ak.reason as EarRefusalReason, message: ak.message };
  const refuse = (reason: EarRefusalReason, message: string): EarVerification => ({
    ok: false,
    reason,
    message,
  });
  const jwk = options.key.jwks.keys[0];
  if (options.key.jwks.keys.length !== 1 || !jwk?.kid) {
    return refuse("ear_key_unendorsed", "The EAR key set does not hold exactly one keyed JWK");
  }
  try {
    const kid = await calculateJwkThumbprint(jwk, "sha256");
    if (kid !== jwk.kid) {
      return refuse("ear_key_unendorsed", `The EAR key's kid "${jwk.kid}" is not its thumbprint`);
    }
    const message = new Uint8Array([...new TextEncoder().encode(SIGN_PREFIX), ...endorsed(kid)]);
    const signature = new Uint8Array(base64url.decode(options.key.endorsement));
    const endorsedByAk = await crypto.subtle.verify(
      { name: "ECDSA", hash: "SHA-256" },
      ak.key,
      signature,
      message,
    );
    if (!endorsedByAk) {
      return refuse(
        "ear_key_unendorsed",
        `The EAR key ${kid} is not endorsed by the AK "${ak.ak.subject}"`,
      );
    }
    const key = await importJWK(jwk, "ES256");
    const { payload, protectedHeader } = await jwtVerify(token, key, { algorithms: ["ES256"] });
    if (protectedHeader.kid !== kid) {
      return refuse("ear_invalid", `The EAR names key "${protectedHeader.kid}", not ${kid}`);
    }
    const claims = payload as unknown as EarClaims;
    if (claims.eat_profile !== EAR_PROFILE || typeof claims.submods !== "object") {
      return refuse("ear_invalid", `The token is not an EAR (eat_profile ${claims.eat_profile})`);
    }
    if (claims.eat_nonce !== options.nonce.toLowerCase()) {
      return refuse(
        "wrong_nonce",
        `The EAR's nonce ${claims.eat_nonce} is not the expected ${options.nonce.toLowerCase()}`,
      );
    }
    const status = worstStatus(Object.values(claims.submods).map((s) => s["ear.status"]));
    return { ok: true, status, claims };
  } catch (error) {
    return refuse("ear_invalid", `The EAR does not verify: ${errorMessage(error)}`);
  }
}
