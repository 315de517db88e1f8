/**
 * `vasp audit verify`: checks the audit log of a state directory — hash chain and signed
 * checkpoints — and names the first bad record. Checkpoints are checked against the ASP's
 * attestation key, trusted through its chain up to the manufacturer CA.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { errorMessage, VaspError } from "../engine/error.ts";
import {
  type CheckpointVerifier,
  ecdsaP256Verifier,
  resolveStateDir,
  SqliteStore,
  type VerifyResult,
} from "../store/mod.ts";
import {
  type AspCheckpointKey,
  aspCheckpointVerifier,
  AUDIT_ANCHOR_COUNTER,
  readAnchorCounter,
} from "../server/checkpoint_key.ts";
import { type Command, parseOptions, printJson } from "./_command.ts";

const USAGE = `usage: vasp audit verify [--state-dir DIR] [--ca FILE | --key FILE | --recorded-keys]
                         [--no-anchor] [--json]

Walks the audit log in DIR/vasp.db record by record: recomputes every hash, follows every
link, checks every checkpoint's signature and head, and compares the newest checkpoint with
the ASP's counter ${AUDIT_ANCHOR_COUNTER}, which every checkpoint advances: a log whose
newest checkpoint carries less lost its tail or is an older copy. Exits 0 when the log is
sound, 1 at the first problem (named with its record) or when no trusted key or anchor can be
had, 2 on a usage error.

Checkpoint signatures are checked against the attestation key (AK) of the ASP in DIR: its
chain DIR/ak-chain.pem (written by vasp serve) must lead to the manufacturer CA, so a
checkpoint signed by any other key fails. The anchor is read from the ASP state in DIR
(asp.state, with its host secret: run as the user vasp serve runs as).

  --state-dir DIR  the state directory (default: $VASP_STATE_DIR, else ./.vasp)
  --ca FILE        the trusted manufacturer CA, PEM or DER (default: DIR/manufacturer-ca.pem);
                   a copy kept off the host also holds against someone who can rewrite DIR
  --key FILE       check against this key instead: SubjectPublicKeyInfo, PEM or DER
  --recorded-keys  check against the keys recorded in the log itself: finds corruption, not
                   a log re-signed by whoever rewrote it
  --no-anchor      do not compare with the ASP's counter (a copy of the log checked
                   elsewhere): a cut tail or an older copy of the file then goes unnoticed
  --json           print the result as JSON`;

/** Whose key checked the checkpoint signatures, as reported. */
type KeySource =
  | ({ readonly source: "asp" } & AspCheckpointKey)
  | { readonly source: "key"; readonly key: string }
  | { readonly source: "recorded" };

/** `vasp audit verify`. */
export const auditVerify: Command = {
  name: "audit verify",
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, {
      "state-dir": { type: "string" },
      ca: { type: "string" },
      key: { type: "string" },
      "recorded-keys": { type: "boolean" },
      "no-anchor": { type: "boolean" },
      json: { type: "boolean" },
    });
    const chosen = [values.ca, values.key, values["recorded-keys"]].filter((v) => v !== undefined)
      .length;
    if (chosen > 1) {
      throw new VaspError("usage_invalid", "--ca, --key and --recorded-keys exclude each other");
    }
    const stateDir = resolveStateDir(values["state-dir"]);
    await using store = openStore(stateDir, values["state-dir"] !== undefined);
    const { verifier, key } = await trustedKey(stateDir, values);
    // The counter is read before the log is walked: a checkpoint a running server makes
    // meanwhile can only put the log ahead of it.
    const anchorCounter = values["no-anchor"] ? undefined : readAnchorCounter(stateDir);
    const result = await store.verifyAudit({ verifier, anchorCounter });
    if (values.json) printJson({ store: store.path, checkpoint_key: key, ...result });
    else console.log(report(result, key));
    return result.ok ? 0 : 1;
  },
};

/** The store of the state directory, read-only; a missing one says which directory was meant. */
function openStore(stateDir: string, given: boolean): SqliteStore {
  try {
    return SqliteStore.openIn(stateDir, { readOnly: true });
  } catch (error) {
    if (!(error instanceof VaspError && error.code === "store_not_found")) throw error;
    throw new VaspError(
      "store_not_found",
      `${error.message}: ${
        given ? "--state-dir" : "the state directory ($VASP_STATE_DIR, else ./.vasp)"
      } names no server's state; point --state-dir at the directory "vasp serve" uses`,
      { cause: error, details: error.details },
    );
  }
}

/** The verifier the options ask for: the ASP's AK by default. */
async function trustedKey(
  stateDir: string,
  values: { ca?: string; key?: string; "recorded-keys"?: boolean },
): Promise<{ verifier: CheckpointVerifier | undefined; key: KeySource }> {
  if (values["recorded-keys"]) return { verifier: undefined, key: { source: "recorded" } };
  if (values.key !== undefined) {
    return { verifier: await readKey(values.key), key: { source: "key", key: values.key } };
  }
  const asp = await aspCheckpointVerifier(stateDir, { ca: values.ca });
  return { verifier: asp.verifier, key: { source: "asp", ...asp.key } };
}

/** The result for a human: one line, whose key was trusted, and what it does not prove. */
function report(result: VerifyResult, key: KeySource): string {
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  if (result.problem) {
    return `audit log FAILED: ${result.problem.message}\n` +
      `  ${plural(result.recordsChecked, "record")} checked before it`;
  }
  const lines = [
    `audit log OK: ${plural(result.recordsChecked, "record")}, ` +
    `${plural(result.checkpointsChecked, "signed checkpoint")}`,
  ];
  if (key.source === "asp") {
    lines.push(`  signatures checked against the ASP attestation key "${key.ak}" (${key.chain}),`);
    lines.push(`  whose chain leads to the manufacturer CA in ${key.ca}`);
  } else if (key.source === "key") {
    lines.push(`  signatures checked against the key in ${key.key}`);
  } else {
    lines.push(
      "  signatures checked against the keys recorded in the log, which whoever rewrites " +
        "the log can replace; without --recorded-keys they are checked against the ASP's key",
    );
  }
  const anchor = result.anchor;
  if (!anchor) {
    lines.push(
      "  not compared with the ASP's counter (--no-anchor): a cut tail with its checkpoints, " +
        "or an older copy of the file, would not show",
    );
  } else if (anchor.status === "ahead") {
    lines.push(
      `  newest checkpoint carries counter ${anchor.checkpointCounter}, the ASP's is ` +
        `${anchor.counter}: a checkpoint whose counter is not advanced yet (one being made, ` +
        "or a crash between the two; the server's next checkpoint settles it; more than " +
        "one ahead with the server stopped: the ASP state is older than the log)",
    );
  } else if (anchor.checkpointSeq === null) {
    lines.push("  no checkpoint yet, and the ASP's counter has not been advanced");
  } else {
    lines.push(
      `  newest checkpoint (record ${anchor.checkpointSeq}) carries the ASP's counter ` +
        `${anchor.counter}: no checkpoint after it was removed`,
    );
  }
  if (result.recordsAfterLastCheckpoint > 0) {
    lines.push(
      `  ${plural(result.recordsAfterLastCheckpoint, "record")} after the last ` +
        "checkpoint, protected by the chain alone: a deletion at the tail among them would " +
        "not show",
    );
  }
  return lines.join("\n");
}

/**
 * Reads a verifying key: SPKI as PEM (`PUBLIC KEY`) or DER.
 *
 * @throws {VaspError} `key_unreadable` naming the file and what is wrong
 */
async function readKey(path: string): Promise<CheckpointVerifier> {
  try {
    const bytes = await Deno.readFile(path);
    const text = new TextDecoder().decode(bytes);
    const pem = /-----BEGIN ([A-Z ]+)-----([\s\S]*?)-----END \1-----/.exec(text);
    if (text.trimStart().startsWith("-----BEGIN") && pem?.[1] !== "PUBLIC KEY") {
      throw new Error(`expected a PEM "PUBLIC KEY", found "${pem?.[1] ?? "malformed PEM"}"`);
    }
    const der = pem ? new Uint8Array(Buffer.from(pem[2].replace(/\s+/g, ""), "base64")) : bytes;
    return await ecdsaP256Verifier(der);
  } catch (cause) {
    throw new VaspError(
      "key_unreadable",
      `Cannot use "${path}" as the checkpoint key: ${errorMessage(cause)}`,
      { cause, details: { path } },
    );
  }
}
