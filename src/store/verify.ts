/**
 * Verification of an audit log: walks the records in seq order, recomputes every hash,
 * follows every link and checks every checkpoint, and names the first thing that is wrong.
 * Storage-independent: a store feeds it rows and checkpoints.
 *
 * @module
 */
import { type AuditRecord, chainHash, GENESIS_HASH, recordBody } from "./audit.ts";
import {
  type Checkpoint,
  checkpointMessage,
  type CheckpointVerifier,
  ecdsaP256Verifier,
} from "./checkpoint.ts";
import { errorMessage } from "../engine/error.ts";

const YIELD_EVERY = 4096;

/** What can be wrong with a log. */
export type AuditProblemKind =
  | "gap"
  | "hash_mismatch"
  | "prev_mismatch"
  | "out_of_place"
  | "malformed"
  | "checkpoint_signature"
  | "checkpoint_head"
  | "checkpoint_beyond_end"
  | "anchor_behind";

/** The first problem found, at the lowest seq. */
export interface AuditProblem {
  /** The seq of the first bad record, or of the record a bad checkpoint covers. */
  readonly seq: number;
  /** What kind of problem. */
  readonly kind: AuditProblemKind;
  /** One sentence: `record 42: hash mismatch (modified)`. */
  readonly message: string;
}

/** The outcome of verifying a log. */
export interface VerifyResult {
  /** No problem found. */
  readonly ok: boolean;
  /** Records that checked out before the first problem (all of them when `ok`). */
  readonly recordsChecked: number;
  /** Checkpoints whose signature and head checked out. */
  readonly checkpointsChecked: number;
  /** Seq of the newest checkpoint, `null` when there is none. */
  readonly lastCheckpointSeq: number | null;
  /**
   * Records after the newest checkpoint: a deletion among them, at the tail, cannot be told
   * from a log that simply ends there.
   */
  readonly recordsAfterLastCheckpoint: number;
  /** Whose key checked the signatures: a `given` one, the `recorded` ones, or `none`. */
  readonly signatureKey: "given" | "recorded" | "none";
  /** The newest checkpoint against the anchor's counter; `null` when no anchor was given. */
  readonly anchor: AnchorResult | null;
  /** The first problem, `null` when `ok`. */
  readonly problem: AuditProblem | null;
}

/** How the newest checkpoint compares with the anchor's counter (`CheckpointAnchor`). */
export interface AnchorResult {
  /** The anchor's counter, read before the log was (0: never advanced). */
  readonly counter: number;
  /** The counter the newest checkpoint carries; `null` when it carries none, or there is none. */
  readonly checkpointCounter: number | null;
  /** Seq of the newest checkpoint, `null` when there is none. */
  readonly checkpointSeq: number | null;
  /**
   * `matches`: the newest checkpoint is the anchor's newest; `ahead`: it carries more (a
   * checkpoint written whose counter was not advanced yet: one under way, or a crash between
   * the two, which the server completes at its next checkpoint); `behind`: checkpoints the
   * anchor counted are gone (a problem, `anchor_behind`).
   */
  readonly status: "matches" | "ahead" | "behind";
}

/** A record the store could not decode (malformed JSON column, wrong type …). */
export interface MalformedRow {
  /** Its seq. */
  readonly seq: number;
  /** What is wrong with it. */
  readonly malformed: string;
}

/** What {@link verifyChain} needs besides the rows. */
export interface ChainInput {
  /** Every checkpoint, in any order, or what is malformed about one. */
  readonly checkpoints: readonly (Checkpoint | MalformedRow)[];
  /** A verifier for a key you trust; checks every checkpoint. */
  readonly verifier?: CheckpointVerifier;
  /** SPKI DER of each key ID recorded with the checkpoints, used when no verifier is given. */
  readonly recordedKeys?: ReadonlyMap<string, Uint8Array<ArrayBuffer>>;
  /**
   * The anchor's counter, read before the rows and checkpoints were (so a checkpoint made
   * meanwhile can only put the log ahead of it). Without it the anchor is not checked.
   */
  readonly anchorCounter?: number;
}

/**
 * Verifies a log.
 *
 * @param rows every record in ascending seq order, or rows the store could not decode
 * @param input the checkpoints and how to check their signatures
 * @returns the result, with the first problem
 */
export async function verifyChain(
  rows: Iterable<AuditRecord | MalformedRow> | AsyncIterable<AuditRecord | MalformedRow>,
  input: ChainInput,
): Promise<VerifyResult> {
  const checkpoints = [...input.checkpoints].sort((a, b) => a.seq - b.seq);
  const signatureFailures = await checkSignatures(checkpoints, input);
  const bySeq = new Map(checkpoints.map((c) => [c.seq, c]));
  let problem: AuditProblem | null = null;
  let prevHash = GENESIS_HASH;
  let seq = 0;
  let checkpointsChecked = 0;
  for await (const row of rows) {
    // A long walk lets other work (a decision) in now and then.
    if (seq % YIELD_EVERY === YIELD_EVERY - 1) await new Promise((r) => setTimeout(r, 0));
    problem = checkRecord(row, seq + 1, prevHash);
    if (problem) break;
    const record = row as AuditRecord;
    const checkpoint = bySeq.get(record.seq);
    if (checkpoint) {
      problem = checkCheckpoint(checkpoint, record, signatureFailures.get(record.seq));
      if (problem) break;
      checkpointsChecked++;
    }
    seq = record.seq;
    prevHash = record.hash;
  }
  const beyond = checkpoints.find((c) => c.seq > seq);
  if (!problem && beyond) {
    problem = {
      seq: beyond.seq,
      kind: "checkpoint_beyond_end",
      message: `checkpoint at record ${beyond.seq}: the log ends at record ${seq} ` +
        `(records ${seq + 1}–${beyond.seq} deleted)`,
    };
  }
  const anchor = input.anchorCounter === undefined
    ? null
    : compareAnchor(checkpoints.at(-1), input.anchorCounter);
  if (!problem && anchor?.status === "behind") {
    const newest = anchor.checkpointSeq === null
      ? "there is no checkpoint"
      : `the newest checkpoint (record ${anchor.checkpointSeq}) carries ` +
        (anchor.checkpointCounter === null ? "no counter" : `counter ${anchor.checkpointCounter}`);
    problem = {
      seq: anchor.checkpointSeq ?? 0,
      kind: "anchor_behind",
      message: `${newest}, but the ASP's audit counter is ${anchor.counter}: ` +
        `${anchor.counter - (anchor.checkpointCounter ?? 0)} newer checkpoint(s) and the ` +
        "records they covered are gone (the tail was cut), or the database is an older copy",
    };
  }
  const last = checkpoints.at(-1)?.seq ?? null;
  return {
    ok: problem === null,
    recordsChecked: seq,
    checkpointsChecked,
    lastCheckpointSeq: last,
    recordsAfterLastCheckpoint: Math.max(0, seq - (last ?? 0)),
    signatureKey: checkpoints.length === 0 ? "none" : input.verifier ? "given" : "recorded",
    anchor,
    problem,
  };
}

function compareAnchor(
  newest: Checkpoint | MalformedRow | undefined,
  counter: number,
): AnchorResult {
  const carried = newest && !("malformed" in newest) ? newest.counter ?? null : null;
  const have = carried ?? 0;
  return {
    counter,
    checkpointCounter: carried,
    checkpointSeq: newest?.seq ?? null,
    status: have === counter ? "matches" : have > counter ? "ahead" : "behind",
  };
}

function checkRecord(
  row: AuditRecord | MalformedRow,
  expected: number,
  prevHash: string,
): AuditProblem | null {
  if (row.seq !== expected) {
    const missing = row.seq - 1 > expected
      ? `records ${expected}–${row.seq - 1}`
      : `record ${expected}`;
    const where = expected === 1
      ? `the log starts at record ${row.seq}`
      : `gap after ${expected - 1}`;
    return row.seq > expected
      ? { seq: expected, kind: "gap", message: `${missing} missing (${where})` }
      : { seq: row.seq, kind: "out_of_place", message: `record ${row.seq}: out of order` };
  }
  if ("malformed" in row) {
    return { seq: row.seq, kind: "malformed", message: `record ${row.seq}: ${row.malformed}` };
  }
  let hashOk: boolean;
  try {
    hashOk = chainHash(row.prevHash, recordBody(row.seq, row)) === row.hash;
  } catch {
    hashOk = false;
  }
  const linkOk = row.prevHash === prevHash;
  const before = row.seq === 1 ? "the genesis hash" : `record ${row.seq - 1}`;
  if (!hashOk && !linkOk) {
    return {
      seq: row.seq,
      kind: "out_of_place",
      message: `record ${row.seq}: hash mismatch and prev_hash does not match ${before} ` +
        "(reordered, inserted or renumbered)",
    };
  }
  if (!hashOk) {
    return {
      seq: row.seq,
      kind: "hash_mismatch",
      message: `record ${row.seq}: hash mismatch (modified)`,
    };
  }
  if (!linkOk) {
    return {
      seq: row.seq,
      kind: "prev_mismatch",
      message: `record ${row.seq}: prev_hash does not match ${before}`,
    };
  }
  return null;
}

function checkCheckpoint(
  checkpoint: Checkpoint | MalformedRow,
  record: AuditRecord,
  signatureFailure: string | undefined,
): AuditProblem | null {
  const at = `checkpoint at record ${checkpoint.seq}`;
  if ("malformed" in checkpoint) {
    return { seq: checkpoint.seq, kind: "malformed", message: `${at}: ${checkpoint.malformed}` };
  }
  if (signatureFailure) {
    return {
      seq: checkpoint.seq,
      kind: "checkpoint_signature",
      message: `${at}: ${signatureFailure}`,
    };
  }
  if (checkpoint.headHash !== record.hash) {
    return {
      seq: checkpoint.seq,
      kind: "checkpoint_head",
      message: `${at}: head hash does not match record ${record.seq} ` +
        "(the records up to it were rewritten, or the checkpoint was altered)",
    };
  }
  return null;
}

/** Checks every signature up front (Web Crypto is async); maps seq to what failed. */
async function checkSignatures(
  checkpoints: readonly (Checkpoint | MalformedRow)[],
  input: ChainInput,
): Promise<Map<number, string>> {
  const failures = new Map<number, string>();
  const recorded = new Map<string, CheckpointVerifier>();
  for (const checkpoint of checkpoints) {
    if ("malformed" in checkpoint) continue;
    let verifier = input.verifier;
    if (!verifier) {
      const spki = input.recordedKeys?.get(checkpoint.keyId);
      if (!spki) {
        failures.set(checkpoint.seq, `signed by an unrecorded key ${checkpoint.keyId}`);
        continue;
      }
      verifier = recorded.get(checkpoint.keyId);
      if (!verifier) {
        try {
          verifier = await ecdsaP256Verifier(spki);
        } catch (error) {
          failures.set(checkpoint.seq, `recorded key unusable: ${errorMessage(error)}`);
          continue;
        }
        recorded.set(checkpoint.keyId, verifier);
      }
    }
    try {
      if (!await verifier.verify(checkpointMessage(checkpoint), checkpoint.signature)) {
        failures.set(checkpoint.seq, "signature invalid");
      }
    } catch (error) {
      failures.set(checkpoint.seq, `signature invalid (${errorMessage(error)})`);
    }
  }
  return failures;
}
