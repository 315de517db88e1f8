/**
 * Trusting an ASP's attestation key (AK) for what it signs besides quotes, such as audit
 * checkpoints (`vasp_asp_sign`): its chain `[AK, EK]` checked up to the trusted
 * manufacturer CA, as a quote's chain is.
 *
 * @module
 */
import { VaspError } from "../engine/error.ts";
import { type CertificateInfo, certificateInfo, parseCertificate } from "./certificate.ts";
import { checkChain, type RoleCert } from "./chain.ts";
import { Refusal } from "./refusal.ts";
import type { Refused } from "./verify.ts";

/** An AK whose chain checked out. */
export interface TrustedAk {
  readonly ok: true;
  /** The AK's public key, for ECDSA P-256 verification. */
  readonly key: CryptoKey;
  /** The AK certificate, described. */
  readonly ak: CertificateInfo;
}

/**
 * Checks an AK certificate chain up to a trusted manufacturer CA: every link's signature,
 * the CA profile of the EK, and validity at `now`. Never throws for bad input: a refusal is
 * a result with a stable reason.
 *
 * @param chain DER certificates, `[AK, EK]`
 * @param options `root`: the trusted manufacturer CA, DER; `now`: the time validity is
 *   judged at
 * @returns `{ ok: true, key, ak }`, or `{ ok: false, reason, message, details }`
 *   (`chain_broken`, `foreign_root`, `certificate_malformed`, `cert_expired`,
 *   `cert_not_yet_valid`)
 * @throws {TypeError} when `now` is not a valid Date
 * @example
 * ```ts ignore
 * // Needs an ASP's certificate chain and its manufacturer CA (tests/attest_test.ts has them).
 * const trusted = await checkAkChain([ak, ek], { root: ca, now: new Date() });
 * if (!trusted.ok) throw new Error(`${trusted.reason}: ${trusted.message}`);
 * ```
 */
export async function checkAkChain(
  chain: readonly Uint8Array[],
  options: { root: Uint8Array; now: Date },
): Promise<TrustedAk | Refused> {
  if (!(options.now instanceof Date) || Number.isNaN(options.now.getTime())) {
    throw new TypeError("checkAkChain() needs a valid `now` Date");
  }
  try {
    if (chain.length !== 2) {
      throw new Refusal(
        "chain_broken",
        `An AK chain of ${chain.length} certificates is not [AK, EK]`,
        { length: chain.length, check: "length" },
      );
    }
    const [ak, ek] = (["ak", "ek"] as const).map((role, i): RoleCert => ({
      role,
      cert: parseCertificate(chain[i]!, `${role.toUpperCase()} certificate`),
    }));
    const root: RoleCert = { role: "ca", cert: parseCertificate(options.root, "CA") };
    const key = await checkChain([ak!, ek!], { root, now: options.now });
    return { ok: true, key, ak: await certificateInfo(ak!.cert) };
  } catch (error) {
    if (error instanceof Refusal) {
      return { ok: false, reason: error.reason, message: error.message, details: error.details };
    }
    if (error instanceof VaspError && error.code === "certificate_malformed") {
      return { ok: false, reason: "certificate_malformed", message: error.message, details: {} };
    }
    throw error;
  }
}
