/**
 * Storage: the `Store` interface, the embedded SQLite store, and the hash-chained audit log
 * with signed checkpoints.
 *
 * @module
 */
export type {
  AuditPage,
  AuditQuery,
  BootReference,
  IntrospectionSettings,
  Measurement,
  NewSnapshot,
  NewVm,
  SnapshotState,
  Store,
  VaspBinding,
  VerifyOptions,
  VmFilter,
  VmPatch,
  VmRecord,
} from "./store.ts";
export {
  type AuditEntry,
  type AuditReason,
  type AuditReasonFields,
  type AuditRecord,
  type AuditResult,
  chainHash,
  chainRecord,
  checkEntry,
  GENESIS_HASH,
  recordBody,
} from "./audit.ts";
export { canonicalJson, digestInput, sha256Hex } from "./canonical_json.ts";
export {
  type Checkpoint,
  type CheckpointAnchor,
  checkpointMessage,
  type CheckpointVerifier,
  ecdsaP256Signer,
  ecdsaP256Verifier,
  keyId,
  SIGNED_DATA_PREFIX,
  type Signer,
} from "./checkpoint.ts";
export { GroupCommit, type GroupCommitOptions } from "./group_commit.ts";
export {
  type AnchorResult,
  type AuditProblem,
  type AuditProblemKind,
  type ChainInput,
  type MalformedRow,
  verifyChain,
  type VerifyResult,
} from "./verify.ts";
export { DB_FILE, SqliteStore, type SqliteStoreOptions } from "./sqlite_store.ts";
export { SCHEMA_VERSION } from "./_sqlite_schema.ts";
export { resolveStateDir } from "./state_dir.ts";
export { writePrivateFile } from "./private_file.ts";
