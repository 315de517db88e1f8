/**
 * Certificate chain checks: signer → … → EK → the trusted manufacturer CA. Signatures and
 * issuer/subject linkage of every link, the CA profile of every issuer (basicConstraints,
 * keyUsage, path length), no unknown critical extension, and validity at an injected time.
 *
 * @module
 */
import { BINDING_OID } from "./binding.ts";
import { extensionsOf } from "./certificate.ts";
import { type CertRole, Refusal } from "./refusal.ts";
import {
  BasicConstraintsExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  X509Certificate,
} from "./_x509.ts";

/** A certificate and the role it plays. */
export interface RoleCert {
  readonly role: CertRole;
  readonly cert: X509Certificate;
}

const P256 = { name: "ECDSA", namedCurve: "P-256" } as const;
/** Extensions this verifier understands; any other one marked critical refuses the chain. */
const KNOWN_EXTENSIONS = new Set([
  "2.5.29.14", // subjectKeyIdentifier
  "2.5.29.15", // keyUsage
  "2.5.29.17", // subjectAltName
  "2.5.29.19", // basicConstraints
  "2.5.29.35", // authorityKeyIdentifier
  "2.5.29.37", // extKeyUsage
  BINDING_OID,
]);

/**
 * The certificate's P-256 public key for ECDSA verification.
 *
 * @throws {Refusal} `chain_broken` when the key is not ECDSA P-256
 */
export async function publicKeyOf(rc: RoleCert): Promise<CryptoKey> {
  try {
    return await crypto.subtle.importKey("spki", rc.cert.publicKey.rawData, P256, false, [
      "verify",
    ]);
  } catch {
    throw new Refusal(
      "chain_broken",
      `The ${rc.role.toUpperCase()} certificate's key is not ECDSA P-256 ("${rc.cert.subject}")`,
      { cert: rc.role, check: "algorithm" },
    );
  }
}

/** Checks that `child` names `parent` as issuer and carries its valid ECDSA-SHA256 signature. */
async function issuedBy(child: RoleCert, parent: RoleCert, key: CryptoKey): Promise<boolean> {
  const alg = child.cert.signatureAlgorithm as { name?: string; hash?: { name?: string } };
  if (alg.name !== "ECDSA" || alg.hash?.name !== "SHA-256") return false;
  if (child.cert.issuer !== parent.cert.subject) return false;
  try {
    return await child.cert.verify({ publicKey: key, signatureOnly: true });
  } catch {
    return false;
  }
}

/** Checks one certificate's extensions against what its place in the chain needs. */
function checkProfile(rc: RoleCert, issuersBelow: number | undefined): void {
  const fail = (check: string, why: string): never => {
    throw new Refusal(
      "chain_broken",
      `The ${rc.role.toUpperCase()} certificate "${rc.cert.subject}" ${why}`,
      { cert: rc.role, check },
    );
  };
  for (const ext of extensionsOf(rc.cert)) {
    if (ext.critical && !KNOWN_EXTENSIONS.has(ext.oid)) {
      fail("critical_extension", `has an unknown critical extension ${ext.oid}`);
    }
  }
  const usage = rc.cert.getExtension(KeyUsagesExtension);
  if (issuersBelow === undefined && rc.role === "transport") {
    // A transport key only agrees on keys (ECDH): it must say so, and sign nothing.
    if (!usage || usage.usages !== KeyUsageFlags.keyAgreement) {
      fail("key_usage", "is not a key-agreement-only key (keyUsage keyAgreement)");
    }
    return;
  }
  if (issuersBelow === undefined) {
    if (usage && !(usage.usages & KeyUsageFlags.digitalSignature)) {
      fail("key_usage", "may not sign (keyUsage lacks digitalSignature)");
    }
    return;
  }
  const basic = rc.cert.getExtension(BasicConstraintsExtension);
  if (!basic?.ca) fail("basic_constraints", "issues certificates but is not a CA");
  if (usage && !(usage.usages & KeyUsageFlags.keyCertSign)) {
    fail("key_usage", "issues certificates but keyUsage lacks keyCertSign");
  }
  if (basic!.pathLength !== undefined && basic!.pathLength < issuersBelow) {
    fail(
      "path_length",
      `allows ${basic!.pathLength} CA certificates below it, the chain has ${issuersBelow}`,
    );
  }
}

/** Refuses a certificate outside its validity period at `now` (bounds inclusive). */
function checkValidity(rc: RoleCert, now: Date): void {
  const name = `The ${rc.role.toUpperCase()} certificate "${rc.cert.subject}"`;
  const details = {
    cert: rc.role,
    now: now.toISOString(),
    notBefore: rc.cert.notBefore.toISOString(),
    notAfter: rc.cert.notAfter.toISOString(),
  };
  if (now < rc.cert.notBefore) {
    throw new Refusal(
      "cert_not_yet_valid",
      `${name} is not valid before ${details.notBefore} (now ${details.now})`,
      details,
    );
  }
  if (now > rc.cert.notAfter) {
    throw new Refusal(
      "cert_expired",
      `${name} expired at ${details.notAfter} (now ${details.now})`,
      details,
    );
  }
}

/**
 * Checks a chain up to a trusted root.
 *
 * @param chain the signer's certificate first, then each issuer, ending with the one the
 *   root issued
 * @param trust `root`: the trust anchor (the manufacturer CA); `now`: the time validity is
 *   judged at
 * @returns the signer's public key
 * @throws {Refusal} `foreign_root` when the top of the chain is not issued by `root`;
 *   `chain_broken` naming the link or the check that failed; `cert_expired` or
 *   `cert_not_yet_valid` naming the certificate
 */
export async function checkChain(
  chain: readonly RoleCert[],
  { root, now }: { root: RoleCert; now: Date },
): Promise<CryptoKey> {
  const all = [...chain, root];
  const keys: (CryptoKey | null)[] = await Promise.all(chain.map(publicKeyOf));
  // A root without a P-256 key cannot have signed the chain: that is a foreign root.
  keys.push(await publicKeyOf(root).catch(() => null));
  for (let i = chain.length - 1; i >= 0; i--) {
    const key = keys[i + 1];
    if (key && await issuedBy(all[i]!, all[i + 1]!, key)) continue;
    const child = all[i]!.role.toUpperCase();
    if (i === chain.length - 1) {
      throw new Refusal(
        "foreign_root",
        `The ${child} certificate "${all[i]!.cert.subject}" (issuer "${all[i]!.cert.issuer}") ` +
          `is not issued by the trusted CA "${root.cert.subject}"`,
        { cert: all[i]!.role, issuer: root.role },
      );
    }
    const parent = all[i + 1]!.role;
    throw new Refusal(
      "chain_broken",
      `The ${child} certificate "${all[i]!.cert.subject}" is not issued by the ` +
        `${parent.toUpperCase()} certificate "${all[i + 1]!.cert.subject}"`,
      { cert: all[i]!.role, issuer: parent, check: "signature" },
    );
  }
  all.forEach((rc, i) => checkProfile(rc, i === 0 ? undefined : i - 1));
  for (let i = all.length - 1; i >= 0; i--) checkValidity(all[i]!, now);
  return keys[0]!;
}
