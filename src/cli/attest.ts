/**
 * `vasp attest verify`: verifies a quote and its certificate chain offline, against a
 * manufacturer CA the caller trusts. Needs no ASP and no native library.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { errorMessage, VaspError } from "../engine/error.ts";
import { type EventLogEntry, parseEventLog } from "../../ffi/event_log.ts";
import {
  type Appraisal,
  appraiseQuote,
  type EarClaims,
  earClaims,
  type EarVerification,
  type Evidence,
  type Expectations,
  fromHex,
  parseExpectations,
  readCertificates,
  toHex,
  verifyEar,
  type VerifyResult,
} from "../attest/mod.ts";
import { QuoteAnswer } from "../wire/mod.ts";
import config from "../../deno.json" with { type: "json" };
import { type Command, parseDigest, parseOptions, printJson, readFlagFile } from "./_command.ts";

const USAGE = `usage: vasp attest verify --evidence FILE --ca FILE --nonce HEX [options]
       vasp attest verify --quote FILE --chain FILE --ca FILE --nonce HEX [options]

Appraises a quote offline and states the result as an EAT Attestation Result (EAR): the
quote's structure, the chain of its signer up to the trusted manufacturer CA, its signature,
the VM binding, the nonce, the event log's replay, and the boot components against expected
references. Exits 0 when the EAR is affirming, 3 when it is a warning, 1 when it is
contraindicated (with the failed check's stable reason), 2 on a usage error.

  --evidence FILE       the quote API's JSON answer as saved (curl …/quote?nonce=… > FILE):
                        quote, chain and event log in one; the VM and instance default to the
                        answer's, and the server's own EAR in it is verified too
  --quote FILE          or the quote alone, binary (e.g. an ASP quote) ...
  --chain FILE          ... with its PEM certificates, signer first: instance, AK, EK
                        (instance quote) or AK, EK (ASP quote)
  --event-log FILE      ... and its JSON event log
  --ca FILE             the trusted manufacturer CA, PEM or DER
  --nonce HEX           the nonce you sent: the quote (and the server's EAR) must carry it
  --vm UUID             an instance quote must be bound to this VM
  --config-digest D     ... and to this configuration digest, sha256:HEX
  --instance-id HEX     ... and to this vASP instance
  --expect FILE         expected references, JSON: {"registers": {"2": "HEX"},
                        "components": {"kernel": "sha256:HEX", "disk": ["sha256:HEX"]}}
                        (components: config firmware kernel initrd cmdline disk)
  --register N=HEX      register N must hold HEX (repeatable; as "registers" in --expect)
  --ear-out FILE        write the EAR claims set (JSON) to FILE
  --now ISO-8601        judge certificate validity at this time (default: now)
  --json                print the result as JSON: the verification, "ear" (the claims set)
                        and, with --evidence, "server_ear"`;

/** The appraisal policy `vasp attest verify` applies (`ear.appraisal-policy-id`). */
const POLICY_ID = "urn:vasp:appraisal:quote-verify:1";

/** Exit codes by EAR status. */
const EXIT_OF = { affirming: 0, warning: 3, contraindicated: 1, none: 1 } as const;

/** `vasp attest verify`. */
export const attestVerify: Command = {
  name: "attest verify",
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, {
      evidence: { type: "string" },
      quote: { type: "string" },
      chain: { type: "string" },
      ca: { type: "string" },
      nonce: { type: "string" },
      vm: { type: "string" },
      "config-digest": { type: "string" },
      "instance-id": { type: "string" },
      register: { type: "string", multiple: true },
      "event-log": { type: "string" },
      expect: { type: "string" },
      "ear-out": { type: "string" },
      now: { type: "string" },
      json: { type: "boolean" },
    });
    const raw = ["quote", "chain", "event-log"] as const;
    if (values.evidence !== undefined) {
      for (const name of raw) {
        if (values[name] !== undefined) throw usage(`--${name} and --evidence exclude each other`);
      }
    } else {
      for (const name of ["quote", "chain"] as const) {
        if (values[name] === undefined) throw usage(`--evidence, or --${name}, is required`);
      }
    }
    for (const name of ["ca", "nonce"] as const) {
      if (values[name] === undefined) throw usage(`--${name} is required`);
    }
    const answer = values.evidence === undefined ? undefined : await evidenceFile(values.evidence);
    const evidence: Evidence = answer?.evidence ?? await rawEvidence(values);
    const expectText = values.expect === undefined
      ? undefined
      : new TextDecoder().decode(await readFlagFile("--expect", values.expect));
    const expect = withRegisters(
      expectText === undefined ? undefined : parseExpectations(expectText),
      registers(values.register ?? []),
    );
    const vmUuid = values.vm ?? answer?.vmUuid;
    const instanceId = values["instance-id"] ?? answer?.instanceId;
    const nonce = hexOption(values.nonce!, "--nonce");
    const now = time(values.now);
    const root = only(readCertificates(await read(values.ca!, "CA")), values.ca!);
    const appraisal = await appraiseQuote(evidence, {
      root,
      nonce,
      now,
      ...(vmUuid === undefined ? {} : {
        vm: {
          vmUuid,
          configDigest: values["config-digest"] === undefined
            ? undefined
            : parseDigest("--config-digest", values["config-digest"]),
          instanceId,
        },
      }),
      ...(expect ? { expect } : {}),
      policyId: expectText === undefined
        ? POLICY_ID
        : `${POLICY_ID}#sha256:${createHash("sha256").update(expectText).digest("hex")}`,
    });
    const claims = earClaims(appraisal.submod, {
      now,
      nonce: toHex(nonce),
      build: `vasp ${config.version}`,
    });
    const server = answer?.ear && await verifyEar(answer.ear.token, {
      key: answer.ear,
      akChain: evidence.chain.slice(1),
      root,
      now,
      nonce: toHex(nonce),
    });
    if (values["ear-out"] !== undefined) {
      await Deno.writeTextFile(values["ear-out"], JSON.stringify(claims, null, 2) + "\n");
    }
    if (values.json) {
      printJson({
        ...jsonOf(appraisal.verified) as object,
        ear: claims,
        ...(server ? { server_ear: serverJson(server) } : {}),
      });
    } else console.log(report(appraisal, claims, server));
    return EXIT_OF[appraisal.status];
  },
};

/** The quote API's answer, decoded into evidence. */
async function evidenceFile(path: string): Promise<{
  evidence: Evidence;
  vmUuid: string;
  instanceId: string;
  ear?: QuoteAnswer["ear"];
}> {
  const text = new TextDecoder().decode(await readFlagFile("--evidence", path));
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new VaspError("usage_invalid", `--evidence "${path}" is not JSON`, { cause });
  }
  const parsed = QuoteAnswer.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw usage(
      `--evidence "${path}" is not a quote answer: ${issue?.path.join(".")}: ${issue?.message}`,
    );
  }
  const q = parsed.data;
  return {
    evidence: {
      quote: Uint8Array.from(Buffer.from(q.quote, "base64")),
      chain: readCertificates(new TextEncoder().encode(q.certificates.join(""))),
      // The log's shape was checked; its digests are judged by the replay, as evidence.
      eventLog: q.event_log,
    },
    vmUuid: q.vm_uuid,
    instanceId: q.instance_id,
    ...(q.ear ? { ear: q.ear } : {}),
  };
}

/** The evidence of `--chain`, `--event-log` and `--quote`, read in that order. */
async function rawEvidence(
  values: { quote?: string; chain?: string; "event-log"?: string },
): Promise<Evidence> {
  const chain = readCertificates(await read(values.chain!, "chain"));
  const log = values["event-log"] === undefined
    ? undefined
    : eventLog(await read(values["event-log"], "event log"));
  return { chain, ...(log ? { eventLog: log } : {}), quote: await read(values.quote!, "quote") };
}

/** The `--expect` references with the `--register` values added. */
function withRegisters(
  expect: Expectations | undefined,
  regs: Record<number, string>,
): Expectations | undefined {
  if (Object.keys(regs).length === 0) return expect;
  return {
    registers: { ...expect?.registers, ...regs },
    components: expect?.components ?? {},
  };
}

function usage(message: string): VaspError {
  return new VaspError("usage_invalid", message);
}

const FLAG_OF: Readonly<Record<string, string>> = {
  quote: "--quote",
  chain: "--chain",
  CA: "--ca",
  "event log": "--event-log",
};

function read(path: string, what: string): Promise<Uint8Array> {
  return readFlagFile(FLAG_OF[what] ?? what, path);
}

function only(certs: Uint8Array[], path: string): Uint8Array {
  if (certs.length !== 1) throw usage(`--ca "${path}" holds ${certs.length} certificates, not 1`);
  return certs[0]!;
}

function hexOption(text: string, flag: string): Uint8Array {
  try {
    return fromHex(text, flag);
  } catch (cause) {
    throw new VaspError("usage_invalid", errorMessage(cause), { cause });
  }
}

function time(text: string | undefined): Date {
  if (text === undefined) return new Date();
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw usage(`--now "${text}" is not an ISO-8601 time`);
  return date;
}

function registers(specs: string[]): Record<number, string> {
  const out: Record<number, string> = {};
  for (const spec of specs) {
    const match = /^(\d{1,2})=([0-9a-fA-F]{64})$/.exec(spec);
    if (!match || Number(match[1]) > 23) {
      throw usage(`--register "${spec}" is not N=HEX with N in 0..23 and 32 bytes of hex`);
    }
    out[Number(match[1])] = match[2]!.toLowerCase();
  }
  return out;
}

function eventLog(json: Uint8Array): EventLogEntry[] {
  try {
    return parseEventLog(json);
  } catch (cause) {
    throw new VaspError("usage_invalid", `--event-log: ${errorMessage(cause)}`, { cause });
  }
}

/** The result with bytes as hex, for JSON. */
function jsonOf(result: VerifyResult): unknown {
  if (!result.ok || !result.binding) return result;
  return {
    ...result,
    binding: { ...result.binding, configDigest: `sha256:${toHex(result.binding.configDigest)}` },
  };
}

function quoteLine(result: VerifyResult): string {
  if (!result.ok) return `quote REFUSED [${result.reason}]: ${result.message}`;
  const signer = result.binding
    ? `vASP instance ${result.binding.instanceId} of VM ${result.binding.vmUuid}\n` +
      `  config digest sha256:${toHex(result.binding.configDigest)}`
    : `the ASP's attestation key`;
  return [
    `quote OK: signed by ${signer}`,
    `  chain ${result.chain.map((c) => `${c.role.toUpperCase()} "${c.subject}"`).join(" <- ")}`,
    `  nonce ${result.nonce}, ${result.alg} registers:`,
    ...Object.entries(result.registers).map(([reg, value]) => `  ${reg.padStart(4)} ${value}`),
  ].join("\n");
}

function report(
  appraisal: Appraisal,
  claims: EarClaims,
  server: EarVerification | undefined,
): string {
  const submod = appraisal.submod;
  const vector = Object.entries(submod["ear.trustworthiness-vector"])
    .map(([claim, value]) => `${claim} ${value}`).join(", ");
  return [
    quoteLine(appraisal.verified),
    `EAR ${appraisal.status}: ${vector || "no claims"}`,
    `  profile ${claims.eat_profile}, policy ${submod["ear.appraisal-policy-id"]}`,
    ...submod["ear.vasp.checks"].map((c) =>
      `  ${c.outcome.padEnd(7)} ${c.check}` + (c.reason ? ` [${c.reason}]` : "") +
      (c.message ? `: ${c.message}` : "")
    ),
    ...(server ? [serverLine(server)] : []),
  ].join("\n");
}

function serverLine(server: EarVerification): string {
  return server.ok
    ? `server EAR ${server.status}: signature verified with the AK-endorsed key`
    : `server EAR REFUSED [${server.reason}]: ${server.message}`;
}

function serverJson(server: EarVerification): unknown {
  return server.ok
    ? { ok: true, status: server.status, claims: server.claims }
    : { ok: false, reason: server.reason, message: server.message };
}
