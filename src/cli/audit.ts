/**
 * `vasp audit verify`: checks the audit log of a state directory — hash chain and signed
 * checkpoints — and names the first bad record.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { VaspError } from "../engine/error.ts";
import {
  type CheckpointVerifier,
  ecdsaP256Verifier,
  resolveStateDir,
  SqliteStore,
  type VerifyResult,
} from "../store/mod.ts";
import { type Command, parseOptions } from "./_command.ts";

const USAGE = `usage: vasp audit verify [--state-dir DIR] [--key FILE] [--json]

Walks the audit log in DIR/vasp.db record by record: recomputes every hash, follows every
link, checks every checkpoint's signature and head. Exits 0 when the log is sound, 1 at the
first problem (named with its record), 2 on a usage error.

  --state-dir DIR  the state directory (default: $VASP_STATE_DIR, else ./.vasp)
  --key FILE       a trusted checkpoint key: SubjectPublicKeyInfo, PEM or DER (e.g. the
                   ASP attestation key: openssl x509 -pubkey -noout -in ak.pem); without
                   it, signatures are checked against the keys recorded in the log
  --json           print the result as JSON`;

/** `vasp audit verify`. */
export const auditVerify: Command = {
  name: "audit verify",
  summary: "check the audit log's hash chain and signed checkpoints",
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, {
      "state-dir": { type: "string" },
      key: { type: "string" },
      json: { type: "boolean" },
    });
    const verifier = values.key === undefined ? undefined : await readKey(values.key);
    await using store = SqliteStore.openIn(resolveStateDir(values["state-dir"]), {
      readOnly: true,
    });
    const result = await store.verifyAudit({ verifier });
    console.log(
      values.json ? JSON.stringify({ store: store.path, ...result }, null, 2) : report(result),
    );
    return result.ok ? 0 : 1;
  },
};

/** The result for a human: one line, and what it does not prove. */
function report(result: VerifyResult): string {
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  if (result.problem) {
    return `audit log FAILED: ${result.problem.message}\n` +
      `  ${plural(result.recordsChecked, "record")} checked before it`;
  }
  const lines = [
    `audit log OK: ${plural(result.recordsChecked, "record")}, ` +
    `${plural(result.checkpointsChecked, "signed checkpoint")}`,
  ];
  if (result.signatureKey === "recorded") {
    lines.push(
      "  signatures checked against the keys recorded in the log; give --key to check " +
        "them against a key you trust",
    );
  }
  if (result.recordsAfterLastCheckpoint > 0) {
    lines.push(
      `  ${plural(result.recordsAfterLastCheckpoint, "record")} after the last ` +
        "checkpoint: a deletion at the tail among them would not show",
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
      `Cannot use "${path}" as the checkpoint key: ${(cause as Error).message}`,
      { cause, details: { path } },
    );
  }
}
