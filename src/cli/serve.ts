/**
 * `vasp serve`, first version: opens the ASP in the state directory, measures the host into
 * its host registers, prints the ASP's identity and the register values, and runs until
 * SIGINT or SIGTERM. The decision server takes this command's place later and keeps these
 * steps.
 *
 * @module
 */
import { resolve } from "node:path";
import { Asp } from "../../ffi/mod.ts";
import { type CertificateInfo, describeCertificate, toHex } from "../attest/mod.ts";
import { resolveStateDir } from "../store/mod.ts";
import { type Command, parseOptions } from "./_command.ts";
import { type HostMeasurement, measureHost } from "./_host.ts";

const USAGE = `usage: vasp serve [--state-dir DIR] [--policies DIR]

Opens the software ASP in DIR (created on first use), measures the host into its host
registers (engine code, native library, policy bundle, QEMU binary, host kernel image), prints
the ASP's identity and the registers, and runs until SIGINT or SIGTERM.

  --state-dir DIR  the state directory (default: $VASP_STATE_DIR, else ./.vasp)
  --policies DIR   the policy bundle to measure (default: the project's policies/)`;

/** Who the ASP is: its ID and certificates, and where a verifier finds the trusted CA. */
export interface AspIdentity {
  readonly id: string;
  readonly stateDir: string;
  readonly ek: CertificateInfo;
  readonly ak: CertificateInfo;
  readonly ca: CertificateInfo;
  /** The manufacturer CA certificate, PEM, for verifiers to trust. */
  readonly caPemPath: string;
}

/** `vasp serve`. */
export const serve: Command = {
  name: "serve",
  summary: "open the ASP, measure the host, and run until stopped",
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, {
      "state-dir": { type: "string" },
      policies: { type: "string" },
    });
    const stateDir = resolve(resolveStateDir(values["state-dir"]));
    const stop = stopSignal();
    try {
      using asp = Asp.open(stateDir);
      const measured = await measureHost(asp, { policyDir: values.policies });
      const registers = measured.map((m) => toHex(asp.read(m.reg)));
      console.log(report(await identify(asp), measured, registers));
      console.log("ready; stop with Ctrl-C or SIGTERM");
      console.log(`stopping on ${await stop.signal}`);
    } finally {
      stop.dispose();
    }
    return 0;
  },
};

/**
 * The ASP's identity.
 *
 * @param asp the open ASP
 * @returns its ID, certificate descriptions and the CA's PEM path
 * @throws {NativeError} when the ASP is closed
 */
export async function identify(asp: Asp): Promise<AspIdentity> {
  const [ek, ak, ca] = await Promise.all(
    (["ek", "ak", "ca"] as const).map((k) => describeCertificate(asp.certificate(k))),
  );
  return {
    id: asp.id,
    stateDir: asp.stateDir,
    ek: ek!,
    ak: ak!,
    ca: ca!,
    caPemPath: `${asp.stateDir}/manufacturer-ca.pem`,
  };
}

function report(who: AspIdentity, measured: HostMeasurement[], registers: string[]): string {
  const cert = (c: CertificateInfo) => `${c.subject}  sha256 ${c.sha256}`;
  return [
    `vASP ASP ${who.id}`,
    `  state dir        ${who.stateDir}`,
    `  EK certificate   ${cert(who.ek)}`,
    `  AK certificate   ${cert(who.ak)}`,
    `  manufacturer CA  ${cert(who.ca)}`,
    `                   ${who.caPemPath}`,
    "host registers (SHA-256 bank):",
    ...measured.flatMap((m, i) => [
      `  ${String(m.reg).padStart(2)} ${registers[i]}  ${m.part}`,
      `     ${m.skipped ? `not measured: ${m.skipped}` : `${m.sha256}  ${m.description}`}`,
    ]),
  ].join("\n");
}

/** Resolves with the first SIGINT or SIGTERM; `dispose()` removes the listeners. */
function stopSignal(): { signal: Promise<Deno.Signal>; dispose(): void } {
  const { promise, resolve } = Promise.withResolvers<Deno.Signal>();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  const handlers = signals.map((sig) => [sig, () => resolve(sig)] as const);
  for (const [sig, handler] of handlers) Deno.addSignalListener(sig, handler);
  return {
    signal: promise,
    dispose() {
      for (const [sig, handler] of handlers) Deno.removeSignalListener(sig, handler);
    },
  };
}
