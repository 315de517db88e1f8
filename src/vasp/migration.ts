/**
 * Migration between vASP hosts (docs/lifecycle.md, "Migration"). The destination's vASP, asked
 * by its libvirt `migrate` hook about an incoming VM, finds the enrolled peer that holds the
 * VM's live instance and **fetches** its state: the source opens the migration with a fresh
 * nonce, the destination answers with its evidence (a quote of its host registers over that
 * nonce, its chain, its transport key, its host event log and expectations), the source
 * appraises it into the policies' `destination` input, decides `migrate-out` phase `transfer`
 * and, when allowed, seals the instance **to the destination's ASP** and answers it. QEMU's
 * `migrate` on the source is then allowed towards that attested destination only.
 *
 * Once QEMU reports the migration completed, the source's instance is retired (closed, its
 * binding and snapshots dropped: one VM never has two live vASPs); the destination's arrival
 * counts once its QEMU reports the incoming migration completed. A failed or cancelled
 * migration leaves the source's instance in force and discards the destination's.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Asp } from "../../ffi/mod.ts";
import { type DestinationState, type LifecycleEvent, VaspError } from "../engine/mod.ts";
import { describeError } from "../engine/error.ts";
import { checkAkChain } from "../attest/ak_chain.ts";
import { parseCertificate, readCertificates } from "../attest/certificate.ts";
import { fromHex, toHex } from "../codec/mod.ts";
import type { BootReference } from "../store/mod.ts";
import {
  type Appraised,
  appraiseDestination,
  destinationEvidence,
  peerOfEk,
} from "./destination.ts";
import { type DestinationEvidence, type MigrationTransfer, VaspClient } from "../wire/mod.ts";
import type { Peer, PeerStore } from "./peers.ts";

/** How long a destination has to answer the nonce of the migration it opened. */
const CHALLENGE_MS = 60_000;
/** The most migrations open at once: a peer cannot make this host keep nonces without end. */
const MAX_OPEN = 1024;
/** How long after the transfer QEMU's `migrate` may start towards that destination. */
const TRANSFER_MS = 10 * 60_000;
/** Where a migration blob names the ASP that sealed it (docs/quote-format.md). */
const SOURCE_ASP_OFFSET = 10;
/**
 * The time allowed for one call to a peer: the two calls of a fetch fit in the libvirt hook's
 * default 5 s (docs/hooks.md); the exchange itself takes about 60 ms here.
 */
const PEER_TIMEOUT_MS = 2_000;

/** What the host says of itself in its evidence. */
export interface HostReport {
  /** The digests it expects of its host files, by name. */
  readonly expected: Readonly<Record<string, string>>;
  /** The revision of its policy set in force. */
  readonly policyRevision: string;
}

/**
 * The reference sets of guest kernel profiles (docs/introspection.md), which travel with a VM:
 * the destination measures it against the same references, without a golden guest of its own.
 */
export interface KernelReferences {
  /**
   * The reference set of the profile a VM's kernel is measured with here, as stored.
   *
   * @param uuid the VM
   * @returns the set (its JSON), none when the VM is not measured here or has no references
   */
  of(uuid: string): Promise<unknown[]>;
  /**
   * Keeps reference sets that arrived with a VM, each checked, for profiles this host has none
   * of (its own stay).
   *
   * @param sets the sets, as they arrived
   * @returns the profile IDs kept (a set that does not check out is logged and left)
   */
  adopt(sets: readonly unknown[]): Promise<string[]>;
}

/** A VM's state as it arrives from its source: what the destination imports. */
export interface Arrival {
  /** The enrolled peer it came from. */
  readonly peer: string;
  /** The source's migration ID. */
  readonly migrationId: string;
  /** The state, sealed to this ASP. */
  readonly blob: Uint8Array;
  /** The source's AK certificate (its chain checked up to the peer's CA), DER. */
  readonly sourceAk: Uint8Array;
  /** The source's ASP ID. */
  readonly sourceAspId: string;
  /** The VM's record at the source. */
  readonly vm: { readonly tenant: string; readonly labels: Readonly<Record<string, string>> };
  /** The VM's boot references at the source. */
  readonly bootReferences: readonly BootReference[];
  /** The reference sets of its kernel profile at the source. */
  readonly kernelReferences: readonly unknown[];
}

/** A client of a peer's API, with the token it accepts from this host. */
function peerClient(peer: Peer): VaspClient {
  const server = peer.endpoint.startsWith("unix:") ? peer.endpoint.slice(5) : peer.endpoint;
  return new VaspClient(server, { token: peer.token, timeoutMs: PEER_TIMEOUT_MS });
}

/** Both sides of migration for one server. */
export class Migrations {
  readonly #asp: Asp;
  readonly #peers: PeerStore;
  readonly #host: () => HostReport;
  readonly #references: KernelReferences;
  readonly #now: () => Date;
  /** Source: migrations opened, by ID, until their evidence comes or they expire. */
  readonly #open = new Map<string, { uuid: string; nonce: Uint8Array; expires: number }>();
  /** Source: appraised destinations, by migration ID, while their decision is made. */
  readonly #appraised = new Map<string, Appraised & { uuid: string }>();
  /** Source: the state sealed for a migration, by ID, until the route answers it. */
  readonly #sealed = new Map<string, { blob: Uint8Array; counter: number }>();
  /** Source: the latest transfer of each VM, for QEMU's `migrate`. */
  readonly #outgoing = new Map<string, { destination: DestinationState; at: number }>();
  /** Destination: arrivals not yet completed, by VM. */
  readonly #arrivals = new Map<string, { peer: string; migrationId: string }>();

  /**
   * @param options this host's ASP, its peers, what it says of itself, its kernel reference
   *   sets, the clock
   */
  constructor(options: {
    asp: Asp;
    peers: PeerStore;
    host: () => HostReport;
    references: KernelReferences;
    now?: () => Date;
  }) {
    this.#asp = options.asp;
    this.#peers = options.peers;
    this.#host = options.host;
    this.#references = options.references;
    this.#now = options.now ?? (() => new Date());
  }

  /** @returns this host's `[AK, EK]` certificates, DER: who seals and signs a transfer */
  chain(): Uint8Array<ArrayBuffer>[] {
    return [this.#asp.certificate("ak"), this.#asp.certificate("ek")];
  }

  /** This host's kernel reference sets, which travel with its VMs. */
  get references(): KernelReferences {
    return this.#references;
  }

  /** The enrolled peers. */
  get peers(): PeerStore {
    return this.#peers;
  }

  // ---- source side -------------------------------------------------------------------------

  /**
   * Opens the migration of a VM to the asking host: its nonce.
   *
   * @param uuid the VM (its live instance checked by the caller)
   * @returns the migration ID, nonce and expiry
   * @throws {VaspError} `migration_refused` when {@link MAX_OPEN} migrations are open
   */
  open(uuid: string): { id: string; nonce: Uint8Array; expiresAt: Date } {
    const now = this.#now().getTime();
    for (const [id, o] of this.#open) if (o.expires < now) this.#open.delete(id);
    if (this.#open.size >= MAX_OPEN) {
      throw new VaspError(
        "migration_refused",
        `${MAX_OPEN} migrations are open already: answer or let them expire first`,
      );
    }
    const id = crypto.randomUUID();
    const nonce = crypto.getRandomValues(new Uint8Array(32));
    this.#open.set(id, { uuid, nonce, expires: now + CHALLENGE_MS });
    return { id, nonce, expiresAt: new Date(now + CHALLENGE_MS) };
  }

  /**
   * Appraises the evidence of the destination of an open migration; the migration is used up
   * (a replayed answer finds none).
   *
   * @param id the migration ID
   * @param evidence the destination's evidence
   * @returns the VM and the appraised destination
   * @throws {VaspError} `migration_not_found` when it is not open (unknown, used, expired)
   */
  async appraise(id: string, evidence: DestinationEvidence): Promise<{ uuid: string }> {
    const open = this.#open.get(id);
    this.#open.delete(id);
    if (!open || open.expires < this.#now().getTime()) {
      throw new VaspError(
        "migration_not_found",
        `No open migration ${id}: unknown, already answered or expired (a nonce is good for ` +
          `${CHALLENGE_MS / 1000} s, once)`,
        { details: { id } },
      );
    }
    const appraised = await appraiseDestination(evidence, {
      peers: this.#peers.all(),
      challenge: open.nonce,
      now: this.#now(),
    });
    this.#appraised.set(id, { ...appraised, uuid: open.uuid });
    return { uuid: open.uuid };
  }

  /**
   * The destination a `migrate-out` decision sees: the appraised one of a transfer, the
   * attested one of QEMU's `migrate` (the latest transfer of the VM, if recent).
   *
   * @param event the event
   * @returns the destination, `null` when none was attested, `undefined` when not a migration
   */
  destination(event: LifecycleEvent): DestinationState | null | undefined {
    if (event.operation !== "migrate-out" || event.phase === "continue") return undefined;
    if (event.phase === "transfer") {
      const id = event.details.migration_id;
      const appraised = typeof id === "string" ? this.#appraised.get(id) : undefined;
      return appraised?.uuid === event.vm.uuid ? appraised.state : null;
    }
    const out = this.#outgoing.get(event.vm.uuid);
    return out && this.#now().getTime() - out.at <= TRANSFER_MS ? out.destination : null;
  }

  /**
   * The appraisal of a migration's destination, used up: its state and, when its chain checked
   * out, the transport key certificate to seal to.
   *
   * @param id the migration ID
   * @returns the appraisal, `undefined` when none is held
   */
  takeAppraisal(id: string): Appraised | undefined {
    const appraised = this.#appraised.get(id);
    this.#appraised.delete(id);
    return appraised;
  }

  /**
   * Keeps the state sealed for a migration for its answer, and the destination for QEMU's
   * `migrate` of the VM.
   */
  transferred(
    id: string,
    what: { uuid: string; destination: DestinationState; blob: Uint8Array; counter: number },
  ): void {
    this.#sealed.set(id, { blob: what.blob, counter: what.counter });
    this.#outgoing.set(what.uuid, {
      destination: what.destination,
      at: this.#now().getTime(),
    });
  }

  /**
   * The state sealed for a migration, handed out once.
   *
   * @param id the migration ID
   * @returns the blob and its counter, `undefined` when none was sealed
   */
  takeSealed(id: string): { blob: Uint8Array; counter: number } | undefined {
    const sealed = this.#sealed.get(id);
    this.#sealed.delete(id);
    return sealed;
  }

  /**
   * Ends the outgoing migration of a VM (completed, failed or cancelled).
   *
   * @param uuid the VM
   * @returns the destination it went to, `undefined` when none was attested
   */
  endOutgoing(uuid: string): string | undefined {
    const out = this.#outgoing.get(uuid);
    this.#outgoing.delete(uuid);
    return out?.destination.peer;
  }

  // ---- destination side --------------------------------------------------------------------

  /**
   * Fetches the state of an incoming VM from the enrolled peer that holds it.
   *
   * @param event the `migrate-in` event
   * @returns the arrival, or why there is none
   */
  async fetch(event: LifecycleEvent): Promise<Arrival | { refusal: string }> {
    const { uuid, name } = event.vm;
    const peers = this.#peers.all().filter((p) => p.token !== undefined);
    if (peers.length === 0) {
      return {
        refusal: `no vASP state of VM "${name}" can be fetched: no enrolled peer with a token ` +
          "(enrol the source host: vasp peer add)",
      };
    }
    const asked = await Promise.all(peers.map(async (peer) => {
      using client = peerClient(peer);
      try {
        return { peer, challenge: await client.openMigration(uuid) };
      } catch (error) {
        return { peer, error: describeError(error) };
      }
    }));
    const found = asked.find((a) => a.challenge !== undefined);
    if (!found?.challenge) {
      const why = asked.map((a) => `${a.peer.name}: ${a.error}`);
      return {
        refusal: `no enrolled peer holds a live vASP instance of VM "${name}" (${why.join("; ")})`,
      };
    }
    const { peer, challenge } = found;
    let transfer: MigrationTransfer;
    try {
      const evidence = await destinationEvidence(this.#asp, fromHex(challenge.nonce, "nonce"), {
        vmUuid: uuid,
        ...this.#host(),
      });
      using client = peerClient(peer);
      transfer = await client.answerMigration(challenge.migration_id, evidence);
    } catch (error) {
      return { refusal: `source host ${peer.name} refused: ${describeError(error)}` };
    }
    return await this.#arrival(peer, transfer, uuid);
  }

  /** Checks a transfer's origin: the source's AK chains to the peer's enrolled CA (or EK). */
  async #arrival(
    peer: Peer,
    transfer: MigrationTransfer,
    uuid: string,
  ): Promise<Arrival | { refusal: string }> {
    if (transfer.vm.uuid !== uuid) {
      return { refusal: `source host ${peer.name} sent the state of VM ${transfer.vm.uuid}` };
    }
    const [ak, ek] = transfer.certificates.map((pem) =>
      readCertificates(new TextEncoder().encode(pem))[0]!
    );
    if (!ak || !ek) return { refusal: `source host ${peer.name} sent no [AK, EK] chain` };
    const ekCert = parseCertificate(ek, "EK");
    const root = readCertificates(new TextEncoder().encode(peer.ca))[0]!;
    const trusted = await checkAkChain([ak, ek], { root, now: this.#now() });
    const mine = (await peerOfEk([peer], ekCert)) !== undefined;
    if (!trusted.ok || !mine) {
      const why = trusted.ok ? "its EK is not the one enrolled" : trusted.message;
      return {
        refusal: `the vASP state from ${peer.name} is not signed by its enrolled ASP: ${why}`,
      };
    }
    const sourceAspId = toHex(
      new Uint8Array(await crypto.subtle.digest("SHA-256", ekCert.publicKey.rawData)),
    );
    const blob = Buffer.from(transfer.state, "base64");
    // The blob names the ASP that sealed it (docs/quote-format.md): it must be this one.
    if (toHex(blob.subarray(SOURCE_ASP_OFFSET, SOURCE_ASP_OFFSET + 32)) !== sourceAspId) {
      return {
        refusal: `the vASP state from ${peer.name} was sealed by another ASP than its own`,
      };
    }
    return {
      peer: peer.name,
      migrationId: transfer.migration_id,
      blob,
      sourceAk: ak,
      sourceAspId,
      vm: { tenant: transfer.vm.tenant, labels: transfer.vm.labels },
      kernelReferences: transfer.kernel_references,
      bootReferences: transfer.boot_references.map((r) => ({
        name: r.name,
        path: r.path,
        digest: r.digest.replace(/^sha256:/, ""),
      })),
    };
  }

  /**
   * Records an adopted arrival, until its migration completes or fails, and keeps the reference
   * sets that came with it.
   *
   * @param uuid the VM
   * @param arrival what arrived
   * @returns the kernel profiles whose references were kept
   */
  async arrived(uuid: string, arrival: Arrival): Promise<string[]> {
    this.#arrivals.set(uuid, { peer: arrival.peer, migrationId: arrival.migrationId });
    return await this.#references.adopt(arrival.kernelReferences);
  }

  /**
   * Ends an arrival, whether its migration completed or not.
   *
   * @param uuid the VM
   * @returns the arrival, `undefined` when none was pending
   */
  endArrival(uuid: string): { peer: string; migrationId: string } | undefined {
    const arrival = this.#arrivals.get(uuid);
    this.#arrivals.delete(uuid);
    return arrival;
  }
}
