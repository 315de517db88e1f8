/**
 * `vasp attest verify`: verifies a quote and its certificate chain offline, against a
 * manufacturer CA the caller trusts. Needs no ASP and no native library.
 *
 * @module
 */
import { errorMessage, VaspError } from "../engine/error.ts";
import { type EventLogEntry, parseEventLog } from "../../ffi/event_log.ts";
import {
  fromHex,
  readCertificates,
  toHex,
  type VerifyOptions,
  verifyQuote,
  type VerifyResult,
} from "../attest/mod.ts";
import { type Command, parseDigest, parseOptions, printJson, readFlagFile } from "./_command.ts";

const USAGE = `usage: vasp attest verify --quote FILE --chain FILE --ca FILE --nonce HEX [options]

Verifies a quote offline: its signature, the chain of its signer up to the trusted
manufacturer CA, the nonce, and whatever else is asked. Exits 0 when it verifies, 1 when it
is refused (with a stable reason), 2 on a usage error.

  --quote FILE          the quote, binary
  --chain FILE          PEM certificates, signer first: instance, AK, EK (instance quote)
                        or AK, EK (ASP quote)
  --ca FILE             the trusted manufacturer CA, PEM or DER
  --nonce HEX           the nonce the quote must carry
  --vm UUID             an instance quote must be bound to this VM
  --config-digest D     ... and to this configuration digest, sha256:HEX
  --instance-id HEX     ... and to this vASP instance
  --register N=HEX      register N must hold HEX (repeatable)
  --event-log FILE      JSON event log whose replay every quoted register must equal
  --now ISO-8601        judge certificate validity at this time (default: now)
  --json                print the result as JSON`;

/** `vasp attest verify`. */
export const attestVerify: Command = {
  name: "attest verify",
  summary: "verify a quote and its certificate chain offline",
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, {
      quote: { type: "string" },
      chain: { type: "string" },
      ca: { type: "string" },
      nonce: { type: "string" },
      vm: { type: "string" },
      "config-digest": { type: "string" },
      "instance-id": { type: "string" },
      register: { type: "string", multiple: true },
      "event-log": { type: "string" },
      now: { type: "string" },
      json: { type: "boolean" },
    });
    for (const name of ["quote", "chain", "ca", "nonce"] as const) {
      if (values[name] === undefined) throw usage(`--${name} is required`);
    }
    const options: VerifyOptions = {
      chain: readCertificates(await read(values.chain!, "chain")),
      root: only(readCertificates(await read(values.ca!, "CA")), values.ca!),
      nonce: hexOption(values.nonce!, "--nonce"),
      now: time(values.now),
      vm: values.vm === undefined ? undefined : {
        vmUuid: values.vm,
        configDigest: values["config-digest"] === undefined
          ? undefined
          : parseDigest("--config-digest", values["config-digest"]),
        instanceId: values["instance-id"],
      },
      registers: registers(values.register ?? []),
      eventLog: values["event-log"] === undefined
        ? undefined
        : eventLog(await read(values["event-log"], "event log")),
    };
    const result = await verifyQuote(await read(values.quote!, "quote"), options);
    if (values.json) printJson(jsonOf(result));
    else console.log(report(result));
    return result.ok ? 0 : 1;
  },
};

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

function registers(specs: string[]): Record<number, Uint8Array> {
  const out: Record<number, Uint8Array> = {};
  for (const spec of specs) {
    const match = /^(\d{1,2})=([0-9a-fA-F]{64})$/.exec(spec);
    if (!match || Number(match[1]) > 23) {
      throw usage(`--register "${spec}" is not N=HEX with N in 0..23 and 32 bytes of hex`);
    }
    out[Number(match[1])] = fromHex(match[2]!);
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

function report(result: VerifyResult): string {
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
