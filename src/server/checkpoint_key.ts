/**
 * The ASP's attestation key (AK) as the audit log's checkpoint key: `vasp serve` signs
 * checkpoints with it and publishes its certificate chain in the state directory; `vasp audit
 * verify` trusts that key only through the chain, checked up to the manufacturer CA.
 *
 * @module
 */
import { join } from "node:path";
import { Asp } from "../../ffi/mod.ts";
import { checkAkChain, readCertificates, toPem } from "../attest/mod.ts";
import { subjectPublicKeyInfo } from "../codec/mod.ts";
import { errorMessage, isVaspError, VaspError } from "../engine/error.ts";
import {
  type CheckpointAnchor,
  type CheckpointVerifier,
  ecdsaP256Verifier,
  type Signer,
} from "../store/mod.ts";

/** The AK certificate then the EK certificate, PEM (public): written by `vasp serve`. */
export const AK_CHAIN_FILE = "ak-chain.pem";
/** The manufacturer CA certificate, PEM (public): written by the ASP when it is created. */
export const CA_FILE = "manufacturer-ca.pem";

/**
 * The ASP's AK as the store's checkpoint signer (`Asp.sign`, which signs `VASPSG01 ‖ data`,
 * the checkpoint scheme), and a verifier on the same key for the API's audit check.
 *
 * @param asp the open ASP
 * @returns the signer, recording the chain `[AK, EK, CA]`, and the verifier
 * @throws {NativeError} when the ASP is closed
 */
export async function aspCheckpointSigner(
  asp: Asp,
): Promise<{ signer: Signer; verifier: CheckpointVerifier }> {
  const ak = asp.certificate("ak");
  const publicKeyInfo = subjectPublicKeyInfo(ak);
  return {
    signer: {
      publicKeyInfo,
      certificateChain: [ak, asp.certificate("ek"), asp.certificate("ca")],
      sign: (data) => asp.sign(data),
    },
    verifier: await ecdsaP256Verifier(publicKeyInfo),
  };
}

/** The ASP counter every audit checkpoint advances and carries (docs/audit.md, "The anchor"). */
export const AUDIT_ANCHOR_COUNTER = "audit.checkpoints";

/**
 * The ASP's {@link AUDIT_ANCHOR_COUNTER} counter as the store's checkpoint anchor: outside the
 * database, only ever going up, persisted before each advance returns.
 *
 * @param asp the open ASP
 * @returns the anchor
 */
export function aspCheckpointAnchor(asp: Asp): CheckpointAnchor {
  return {
    read: () => {
      try {
        return Number(asp.counter(AUDIT_ANCHOR_COUNTER));
      } catch (error) {
        if (isVaspError(error, "item_not_found")) return 0;
        throw error;
      }
    },
    advance: () => Number(asp.incrementCounter(AUDIT_ANCHOR_COUNTER)),
  };
}

/**
 * The anchor's counter as the ASP in `stateDir` last persisted it, read beside a running server
 * (`Asp.peekCounter`, no lock): what `vasp audit verify` compares the newest checkpoint with.
 *
 * @param stateDir the state directory
 * @returns the counter, 0 when the ASP never advanced it
 * @throws {VaspError} `anchor_unreadable` when the ASP state is missing or cannot be read (the
 *   message names the file and why)
 */
export function readAnchorCounter(stateDir: string): number {
  try {
    return Number(Asp.peekCounter(stateDir, AUDIT_ANCHOR_COUNTER));
  } catch (error) {
    if (isVaspError(error, "item_not_found") && exists(stateDir)) return 0;
    throw new VaspError(
      "anchor_unreadable",
      `Cannot read the audit anchor (ASP counter "${AUDIT_ANCHOR_COUNTER}") in "${stateDir}": ` +
        errorMessage(error),
      { cause: error, details: { stateDir } },
    );
  }
}

/** Whether the ASP state file of `stateDir` exists (a missing counter is then 0). */
function exists(stateDir: string): boolean {
  try {
    return Deno.statSync(join(stateDir, "asp.state")).isFile;
  } catch {
    return false;
  }
}

/**
 * Writes the AK's chain to `<stateDir>/ak-chain.pem` (mode 0644, replaced atomically), so a
 * verifier finds the key without opening the ASP, which a running server holds locked. It
 * is also the `--chain` of `vasp attest verify` for an ASP quote.
 *
 * @param asp the open ASP
 * @returns the file's path
 * @throws {Deno.errors.PermissionDenied} and other I/O errors when it cannot be written
 */
export function writeAkChain(asp: Asp): string {
  const path = join(asp.stateDir, AK_CHAIN_FILE);
  const temp = `${path}.${Deno.pid}.tmp`;
  try {
    Deno.writeTextFileSync(temp, toPem(asp.certificate("ak")) + toPem(asp.certificate("ek")), {
      mode: 0o644,
    });
    Deno.renameSync(temp, path);
  } catch (error) {
    // The write's error is the one to report; the temp file may never have been created.
    try {
      Deno.removeSync(temp);
    } catch {
      // nothing left behind
    }
    throw error;
  }
  return path;
}

/** Where the key that checked the checkpoints came from (what `audit verify` reports). */
export interface AspCheckpointKey {
  /** The AK certificate's subject. */
  readonly ak: string;
  /** The AK chain file. */
  readonly chain: string;
  /** The trusted manufacturer CA file. */
  readonly ca: string;
}

/**
 * A checkpoint verifier on the AK of the ASP in `stateDir`, trusted because its chain
 * (`ak-chain.pem`) leads to the manufacturer CA: a checkpoint signed by any other key fails.
 *
 * @param stateDir the state directory
 * @param options `ca`: the trusted CA file (default `<stateDir>/manufacturer-ca.pem`; a copy
 *   kept elsewhere also resists someone who can rewrite the state directory); `now`: the
 *   time certificate validity is judged at
 * @returns the verifier and where its key came from
 * @throws {VaspError} `key_unreadable` naming a file that is missing or holds no usable
 *   certificate; `ak_untrusted` when the chain does not lead to the CA (with the reason)
 */
export async function aspCheckpointVerifier(
  stateDir: string,
  options: { ca?: string; now?: Date } = {},
): Promise<{ verifier: CheckpointVerifier; key: AspCheckpointKey }> {
  const chainPath = join(stateDir, AK_CHAIN_FILE);
  const caPath = options.ca ?? join(stateDir, CA_FILE);
  const chain = await certificates(chainPath, "the ASP's AK chain", "vasp serve writes it");
  const roots = await certificates(caPath, "the manufacturer CA");
  if (roots.length !== 1) {
    throw unreadable(caPath, "the manufacturer CA", `holds ${roots.length} certificates, not 1`);
  }
  const trusted = await checkAkChain(chain, { root: roots[0]!, now: options.now ?? new Date() });
  if (!trusted.ok) {
    throw new VaspError(
      "ak_untrusted",
      `The AK chain in "${chainPath}" does not lead to the manufacturer CA in "${caPath}": ` +
        `${trusted.message} (${trusted.reason})`,
      { details: { chain: chainPath, ca: caPath, reason: trusted.reason, ...trusted.details } },
    );
  }
  return {
    verifier: await ecdsaP256Verifier(trusted.key),
    key: { ak: trusted.ak.subject, chain: chainPath, ca: caPath },
  };
}

/** Reads the certificates of a PEM or DER file, as a `key_unreadable` error when it can't. */
async function certificates(
  path: string,
  what: string,
  hint?: string,
): Promise<Uint8Array<ArrayBuffer>[]> {
  try {
    return readCertificates(await Deno.readFile(path));
  } catch (cause) {
    const why = cause instanceof Deno.errors.NotFound && hint
      ? `it does not exist (${hint})`
      : errorMessage(cause);
    throw unreadable(path, what, why, cause);
  }
}

function unreadable(path: string, what: string, why: string, cause?: unknown): VaspError {
  return new VaspError("key_unreadable", `Cannot read ${what} "${path}": ${why}`, {
    cause,
    details: { path },
  });
}
