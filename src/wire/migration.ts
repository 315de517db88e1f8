/**
 * Wire shapes of peers (the other vASP hosts an operator enrolled) and of migration: the
 * destination's vASP opens an outgoing migration on the source, gets its nonce, answers with
 * its evidence and receives the VM's vASP state sealed to its ASP (docs/lifecycle.md,
 * "Migration").
 *
 * @module
 */
import { z } from "zod";
import { Time, Uuid, UuidInput } from "./common.ts";
import { BootReference } from "./vm.ts";

const PEM = z.string().min(1).max(16_384);

/** The body of `POST /v1/peers`. */
export const NewPeerRequest = z.strictObject({
  name: z.string().min(1).max(63).meta({ description: "the peer's name on this host" }),
  ca: PEM.meta({ description: "its manufacturer CA certificate, PEM" }),
  ek: PEM.optional().meta({ description: "its EK certificate, PEM: only that ASP is the peer" }),
  endpoint: z.string().min(1).max(1024).meta({
    description: "its decision endpoint: http(s)://HOST:PORT or unix:/PATH",
  }),
  token: z.string().max(256).optional().meta({
    description: "the `peer` token it accepts from this host (to fetch migrating VMs' state)",
  }),
}).meta({ id: "NewPeerRequest" });
/** The body of `POST /v1/peers`. */
export type NewPeerRequest = z.infer<typeof NewPeerRequest>;

/** An enrolled peer, as listed (never its token). */
export const Peer = z.object({
  name: z.string(),
  ca: z.string(),
  ek: z.string().optional(),
  endpoint: z.string(),
  has_token: z.boolean(),
  enrolled_at: Time,
}).meta({ id: "Peer" });
/** An enrolled peer. */
export type Peer = z.infer<typeof Peer>;

/** The answer of `GET /v1/peers`. */
export const PeerList = z.object({ peers: z.array(Peer) }).meta({ id: "PeerList" });
/** The answer of `GET /v1/peers`. */
export type PeerList = z.infer<typeof PeerList>;

/** The path of one peer. */
export const PeerPath = z.object({ name: z.string().min(1).max(63) });

/** The body of `POST /v1/migrations`. */
export const MigrationOpenRequest = z.strictObject({
  vm_uuid: UuidInput.meta({ description: "the VM about to migrate to the asking host" }),
}).meta({ id: "MigrationOpenRequest" });
/** The body of `POST /v1/migrations`. */
export type MigrationOpenRequest = z.infer<typeof MigrationOpenRequest>;

/** The answer of `POST /v1/migrations`: the challenge the destination's evidence must answer. */
export const MigrationChallenge = z.object({
  migration_id: Uuid,
  nonce: z.string().regex(/^[0-9a-f]{64}$/).meta({ description: "32 random bytes, hex" }),
  expires_at: Time,
}).meta({ id: "MigrationChallenge" });
/** The answer of `POST /v1/migrations`. */
export type MigrationChallenge = z.infer<typeof MigrationChallenge>;

/** The path of one migration. */
export const MigrationPath = z.object({ id: Uuid });

/** The destination's evidence (`POST /v1/migrations/{id}/evidence`). */
export const DestinationEvidence = z.strictObject({
  quote: z.string().max(65_536).meta({ description: "quote of host registers 0–4, base64" }),
  certificates: z.array(PEM).length(2).meta({ description: "[AK, EK], PEM" }),
  event_log: z.array(z.strictObject({
    reg: z.number().int().min(0).max(23),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    sm3: z.string().regex(/^[0-9a-f]{64}$/),
    description: z.string().max(4096),
  })).max(100_000).meta({ description: "its host event log" }),
  report: z.strictObject({
    asp_id: z.string().regex(/^[0-9a-f]{64}$/),
    policy_revision: z.string().max(256),
    expected: z.record(z.string().max(64), z.string().max(128)),
    transport_certificate: PEM,
    vm_counter: z.number().int().min(0).meta({
      description: "the newest counter its ASP recorded for the VM: the transfer goes past it",
    }),
  }).meta({ description: "what it says of itself; bound to the quote by its nonce" }),
}).meta({ id: "DestinationEvidence" });
/** The destination's evidence. */
export type DestinationEvidence = z.infer<typeof DestinationEvidence>;

/** The answer of `POST /v1/migrations/{id}/evidence`: the VM's state, sealed to the asker. */
export const MigrationTransfer = z.object({
  migration_id: Uuid,
  decision_id: z.string().meta({ description: "the source's migrate-out decision" }),
  vm: z.object({
    uuid: Uuid,
    name: z.string(),
    tenant: z.string(),
    labels: z.record(z.string(), z.string()),
  }),
  state: z.string().meta({ description: "the vASP state sealed to the asker's ASP, base64" }),
  counter: z.number().int().meta({ description: "its export counter" }),
  certificates: z.array(z.string()).length(2).meta({
    description: "the source's [AK, EK], PEM: who sealed and signed the state",
  }),
  boot_references: z.array(BootReference),
  kernel_references: z.array(z.unknown()).max(16).meta({
    description: "the reference sets of its guest kernel's profile (docs/introspection.md)",
  }),
}).meta({ id: "MigrationTransfer" });
/** The answer of `POST /v1/migrations/{id}/evidence`. */
export type MigrationTransfer = z.infer<typeof MigrationTransfer>;
