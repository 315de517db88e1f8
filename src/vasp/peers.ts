/**
 * The other vASP hosts this one was told to trust (docs/lifecycle.md, "Migration"): each
 * enrolled by an operator with its manufacturer CA (or, pinned tighter, its EK certificate),
 * its decision endpoint and the token it accepts from this host. Nothing trusts a host that is
 * not here. Kept in the state directory's `peers.json` (mode 0600: it holds the tokens).
 *
 * @module
 */
import { join } from "node:path";
import { errorMessage, VaspError } from "../engine/error.ts";
import { writePrivateFile } from "../store/mod.ts";
import { parseCertificate, readCertificates, toPem } from "../attest/certificate.ts";

/** The peer file's name inside the state directory. */
export const PEERS_FILE = "peers.json";

/** An enrolled peer host. */
export interface Peer {
  /** Its name here (`host-b`): 1–63 letters, digits, `.`, `_`, `-`. */
  readonly name: string;
  /** Its manufacturer CA certificate, PEM: the ASP it vouches for must chain to it. */
  readonly ca: string;
  /** Its EK certificate, PEM: when given, only that ASP is this peer. */
  readonly ek?: string;
  /** Its decision endpoint (`http://127.0.0.1:8443`, or `unix:/var/lib/vasp/vasp.sock`). */
  readonly endpoint: string;
  /** The token it accepts from this host (a `peer` token it made); needed to fetch from it. */
  readonly token?: string;
  /** When it was enrolled, RFC 3339. */
  readonly enrolledAt: string;
}

/** A peer as listed: never its token. */
export type PeerInfo = Omit<Peer, "token"> & { readonly hasToken: boolean };

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const FILE = { code: "peer_store_failed", name: "peer file" } as const;

function invalid(message: string, field: string): never {
  throw new VaspError("peer_invalid", message, { details: { field } });
}

/** One PEM certificate, checked to parse; `what` names it in the error. */
function certificatePem(text: string, what: string, field: string): string {
  try {
    const certs = readCertificates(new TextEncoder().encode(text));
    if (certs.length !== 1) throw new Error(`${certs.length} certificates, expected one`);
    parseCertificate(certs[0]!, what);
    return toPem(certs[0]!);
  } catch (error) {
    return invalid(`The peer's ${what} is not one certificate: ${errorMessage(error)}`, field);
  }
}

/**
 * Checks a peer's endpoint: an `http`/`https` URL without path, or `unix:` and an absolute
 * socket path.
 *
 * @param endpoint the endpoint
 * @returns it, unchanged
 * @throws {VaspError} `peer_invalid`
 */
function checkEndpoint(endpoint: string): string {
  if (endpoint.startsWith("unix:/")) return endpoint;
  let url: URL | undefined;
  try {
    url = new URL(endpoint);
  } catch { /* reported below */ }
  if (!url || !["http:", "https:"].includes(url.protocol) || url.pathname !== "/" || url.search) {
    invalid(
      `The peer endpoint "${endpoint}" is neither http(s)://HOST:PORT nor unix:/PATH`,
      "endpoint",
    );
  }
  return endpoint;
}

/** The peers of one state directory, read from their file at every use (a handful). */
export class PeerStore {
  /** The peer file. */
  readonly path: string;

  /** @param stateDir the state directory */
  constructor(stateDir: string) {
    this.path = join(stateDir, PEERS_FILE);
  }

  /** @returns every enrolled peer, token included */
  all(): Peer[] {
    let text: string;
    try {
      text = Deno.readTextFileSync(this.path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return [];
      throw new VaspError(FILE.code, `Cannot read the peer file "${this.path}": ${error}`);
    }
    try {
      const peers = JSON.parse(text).peers;
      if (!Array.isArray(peers)) throw new Error('no "peers" array');
      return peers.map((p: Peer) => ({ ...p }));
    } catch (error) {
      throw new VaspError(
        FILE.code,
        `Cannot read the peer file "${this.path}": ${errorMessage(error)}`,
      );
    }
  }

  /** @returns the enrolled peers as listed (no tokens), by name */
  list(): PeerInfo[] {
    return this.all().map(describePeer).sort((a, b) => a.name < b.name ? -1 : 1);
  }

  /**
   * Enrols a peer.
   *
   * @param peer its name, CA (PEM), optional EK (PEM), endpoint and optional token
   * @param now the enrolment time
   * @returns the peer as listed
   * @throws {VaspError} `peer_invalid`, `peer_exists`, `peer_store_failed`
   */
  add(peer: Omit<Peer, "enrolledAt">, now: Date): PeerInfo {
    if (!NAME.test(peer.name)) {
      invalid(`The peer name "${peer.name}" is not 1–63 letters, digits, ".", "_", "-"`, "name");
    }
    const entry: Peer = {
      name: peer.name,
      ca: certificatePem(peer.ca, "CA certificate", "ca"),
      ...(peer.ek === undefined ? {} : { ek: certificatePem(peer.ek, "EK certificate", "ek") }),
      endpoint: checkEndpoint(peer.endpoint),
      ...(peer.token === undefined || peer.token === "" ? {} : { token: peer.token }),
      enrolledAt: now.toISOString(),
    };
    const peers = this.all();
    if (peers.some((p) => p.name === peer.name)) {
      throw new VaspError("peer_exists", `A peer named "${peer.name}" is enrolled already`, {
        details: { name: peer.name },
      });
    }
    this.#write([...peers, entry]);
    return describePeer(entry);
  }

  /**
   * Removes a peer: it is trusted no more.
   *
   * @param name its name
   * @returns the peer removed, as listed
   * @throws {VaspError} `peer_not_found`, `peer_store_failed`
   */
  remove(name: string): PeerInfo {
    const peers = this.all();
    const found = peers.find((p) => p.name === name);
    if (!found) {
      throw new VaspError("peer_not_found", `No peer named "${name}" is enrolled`, {
        details: { name },
      });
    }
    this.#write(peers.filter((p) => p !== found));
    return describePeer(found);
  }

  #write(peers: readonly Peer[]): void {
    writePrivateFile(this.path, JSON.stringify({ version: 1, peers }, null, 2) + "\n", FILE);
  }
}

function describePeer(peer: Peer): PeerInfo {
  const { token, ...rest } = peer;
  return { ...rest, hasToken: token !== undefined };
}
