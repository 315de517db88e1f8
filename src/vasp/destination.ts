/**
 * Destination attestation (docs/lifecycle.md, "Migration"): the evidence a destination's ASP
 * gives over the source's nonce — a quote of its host registers, its chain, its transport key
 * certificate, its host event log, and what it expects of its host — and the source's
 * appraisal of it into the policies' `destination` input.
 *
 * The quote's nonce binds the rest: it is SHA-256 of `"vASP destination evidence v1\0"`, the
 * source's challenge and SHA-256 of the canonical JSON of the report (expected host digests,
 * policy revision, ASP ID and transport certificate), so a fresh quote vouches for all of it.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Asp, EventLogEntry } from "../../ffi/mod.ts";
import type { DestinationState } from "../engine/mod.ts";
import { errorMessage } from "../engine/error.ts";
import { canonicalJson } from "../store/mod.ts";
import { checkChain, type RoleCert } from "../attest/chain.ts";
import { parseCertificate, readCertificates, toPem } from "../attest/certificate.ts";
import { Refusal } from "../attest/refusal.ts";
import { verifyQuote } from "../attest/verify.ts";
import { toHex } from "../codec/mod.ts";
import type { Peer } from "./peers.ts";
import { HOST_REGISTERS, hostFileName } from "../host/mod.ts";
import type { DestinationEvidence } from "../wire/mod.ts";

type DestinationReport = DestinationEvidence["report"];

/** The host registers a destination quotes, and the host file each one holds (src/host). */
const HOST_FILES: Readonly<Record<number, string>> = Object.fromEntries(
  (Object.keys(HOST_REGISTERS) as (keyof typeof HOST_REGISTERS)[]).map((part) => [
    HOST_REGISTERS[part],
    hostFileName(part),
  ]),
);

const DOMAIN = new TextEncoder().encode("vASP destination evidence v1\0");

/** The destination as appraised, and the transport certificate to seal to when usable. */
export interface Appraised {
  readonly state: DestinationState;
  /** DER of the verified transport key certificate; absent when the chain did not check out. */
  readonly transport?: Uint8Array<ArrayBuffer>;
  /** The destination's newest counter for the VM: the transfer's goes past it. */
  readonly after: bigint;
}

async function quoteNonce(challenge: Uint8Array, report: DestinationReport): Promise<Uint8Array> {
  const reportDigest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonicalJson(report))),
  );
  const data = new Uint8Array(DOMAIN.length + challenge.length + reportDigest.length);
  data.set(DOMAIN);
  data.set(challenge, DOMAIN.length);
  data.set(reportDigest, DOMAIN.length + challenge.length);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

/**
 * The destination's side: evidence over the source's challenge.
 *
 * @param asp this host's ASP
 * @param challenge the source's nonce
 * @param what `vmUuid`: the VM that migrates; `expected`: expected host digests by file name;
 *   `policyRevision`
 * @returns the evidence
 */
export async function destinationEvidence(
  asp: Asp,
  challenge: Uint8Array,
  what: { vmUuid: string; expected: Readonly<Record<string, string>>; policyRevision: string },
): Promise<DestinationEvidence> {
  const report: DestinationReport = {
    asp_id: asp.id,
    policy_revision: what.policyRevision,
    expected: { ...what.expected },
    transport_certificate: toPem(asp.certificate("transport")),
    vm_counter: Number(asp.vmCounter(what.vmUuid)),
  };
  const quote = asp.quote(await quoteNonce(challenge, report), {
    registers: Object.keys(HOST_FILES).map(Number),
  });
  return {
    quote: Buffer.from(quote.bytes).toString("base64"),
    certificates: [toPem(asp.certificate("ak")), toPem(asp.certificate("ek"))],
    event_log: asp.eventLog(),
    report,
  };
}

/**
 * The enrolled peer an EK belongs to: the one that pins it, or whose CA signed it (every
 * software ASP's CA has the same name, so a name proves nothing).
 *
 * @param peers the enrolled peers
 * @param ek the EK certificate
 * @returns the peer, `undefined` when none
 */
export async function peerOfEk(
  peers: readonly Peer[],
  ek: ReturnType<typeof parseCertificate>,
): Promise<Peer | undefined> {
  const ekPem = toPem(new Uint8Array(ek.rawData));
  for (const p of peers) {
    if (p.ek !== undefined) {
      if (p.ek === ekPem) return p;
      continue;
    }
    const ca = parseCertificate(readCertificates(new TextEncoder().encode(p.ca))[0]!, "CA");
    if (await ek.verify({ publicKey: ca, signatureOnly: true }).catch(() => false)) return p;
  }
  return undefined;
}

/**
 * The source's side: appraises a destination's evidence. Never throws for bad evidence: every
 * failure is in the state the policies see (`enrolled`, `chain_valid`, `quote_valid`,
 * `host_ok`, `error`).
 *
 * @param evidence what the destination sent
 * @param options the enrolled peers, the challenge this host sent, the time
 * @returns the destination state, and its transport certificate when the chain checked out
 */
export async function appraiseDestination(
  evidence: DestinationEvidence,
  options: { peers: readonly Peer[]; challenge: Uint8Array; now: Date },
): Promise<Appraised> {
  const state = {
    peer: "",
    enrolled: false,
    chainValid: false,
    quoteValid: false,
    hostOk: false,
    failing: [] as string[],
    policyRevision: evidence.report.policy_revision,
    aspId: evidence.report.asp_id,
    error: "",
  };
  const after = BigInt(evidence.report.vm_counter);
  const refuse = (error: string): Appraised => ({ state: { ...state, error }, after });
  let certs: { ak: RoleCert; ek: RoleCert; tk: RoleCert };
  try {
    const [ak, ek] = evidence.certificates.map((pem, i) =>
      parseCertificate(readCertificates(new TextEncoder().encode(pem))[0]!, ["AK", "EK"][i])
    );
    const tk = parseCertificate(
      readCertificates(new TextEncoder().encode(evidence.report.transport_certificate))[0]!,
      "transport key certificate",
    );
    if (!ak || !ek || evidence.certificates.length !== 2) throw new Error("not [AK, EK]");
    certs = {
      ak: { role: "ak", cert: ak },
      ek: { role: "ek", cert: ek },
      tk: { role: "transport", cert: tk },
    };
  } catch (error) {
    return refuse(`its certificates do not parse: ${errorMessage(error)}`);
  }
  const peer = await peerOfEk(options.peers, certs.ek.cert);
  if (!peer) {
    return refuse(
      `no enrolled peer's CA issued its EK "${certs.ek.cert.subject}", and no enrolled peer ` +
        "pins it",
    );
  }
  state.peer = peer.name;
  state.enrolled = true;
  const ca = readCertificates(new TextEncoder().encode(peer.ca))[0]!;
  try {
    await checkChain([certs.tk, certs.ak, certs.ek], {
      root: { role: "ca", cert: parseCertificate(ca, "CA") },
      now: options.now,
    });
  } catch (error) {
    if (!(error instanceof Refusal)) throw error;
    return refuse(`${error.reason}: ${error.message}`);
  }
  state.chainValid = true;
  const ekDigest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", certs.ek.cert.publicKey.rawData),
  );
  if (toHex(ekDigest) !== state.aspId) {
    return refuse(`its report names ASP ${state.aspId}, its EK is ASP ${toHex(ekDigest)}`);
  }
  let verified;
  try {
    verified = await verifyQuote(Buffer.from(evidence.quote, "base64"), {
      chain: [new Uint8Array(certs.ak.cert.rawData), new Uint8Array(certs.ek.cert.rawData)],
      root: ca,
      nonce: await quoteNonce(options.challenge, evidence.report),
      now: options.now,
      eventLog: evidence.event_log,
    });
  } catch (error) {
    return refuse(`quote_malformed: ${errorMessage(error)}`);
  }
  if (!verified.ok) return refuse(`${verified.reason}: ${verified.message}`);
  const missing = Object.keys(HOST_FILES).filter((r) =>
    verified.registers[Number(r)] === undefined
  );
  if (missing.length > 0) {
    return refuse(`its quote leaves out host registers ${missing.join(", ")}`);
  }
  state.quoteValid = true;
  const failing = hostFailures(evidence.event_log, evidence.report.expected);
  return {
    state: {
      ...state,
      failing,
      hostOk: failing.length === 0,
      error: failing.length === 0 ? "" : `host files differ from their expected digests`,
    },
    transport: new Uint8Array(certs.tk.cert.rawData),
    after,
  };
}

/**
 * The host files whose latest logged digest is not the one expected (or that were never
 * measured, or have no expectation), sorted.
 */
function hostFailures(
  log: readonly EventLogEntry[],
  expected: Readonly<Record<string, string>>,
): string[] {
  const latest = new Map<string, string>();
  for (const e of log) {
    const name = HOST_FILES[e.reg];
    if (name !== undefined) latest.set(name, `sha256:${e.sha256}`);
  }
  return Object.values(HOST_FILES).filter((name) => {
    const want = expected[name];
    return want === undefined || want === "" || latest.get(name) !== want;
  }).sort();
}
