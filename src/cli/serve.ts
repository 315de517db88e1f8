/**
 * `vasp serve`: the decision server. Opens the ASP in the state directory, measures the host
 * into its host registers, prints the ASP's identity and the register values, then serves the
 * decision API on a Unix socket and loopback TCP until SIGINT or SIGTERM, and shuts down
 * cleanly (drain, shutdown checkpoint, close).
 *
 * @module
 */
import { join, resolve } from "node:path";
import type { Asp } from "../../ffi/mod.ts";
import type { CertificateInfo } from "../attest/mod.ts";
import { toHex } from "../codec/mod.ts";
import type { HostState } from "../engine/mod.ts";
import { resolveStateDir } from "../store/state_dir.ts";
import { type Command, parseOptions, usageError } from "./_command.ts";
import { POLICY_OPTIONS, POLICY_USAGE, policySource } from "./_policy_flags.ts";
import { removeServeFile, writeServeFile } from "./_serve_file.ts";
import type { HostMeasurement } from "../host/mod.ts";
import { HOST_EXPECTED_FILE } from "../host/expected.ts";
import type { RunningServer } from "../server/mod.ts";
import { createLogger, LOG_FORMATS, type LogFormat } from "../server/log.ts";

const USAGE =
  `usage: vasp serve [--state-dir DIR] [--policies DIR | --policies-repo REPO [--policies-ref REF]
                  [--policies-path PATH]] [--listen HOST:PORT | --no-tcp] [--socket PATH | --no-socket]
                  [--hook-socket PATH | --no-hook-socket]
                  [--allow-remote] [--learn-host] [--qemu FILE] [--host-kernel FILE]
                  [--libvirt-uri URI] [--log-format text|json]

Opens the software ASP in DIR (created on first use, removed again if that first start
fails), measures the host into its host registers (engine code, native library, policy
bundle, QEMU binary, host kernel image), prints the ASP's identity and the registers, and
serves the decision API until SIGINT or SIGTERM. On the first start it writes an operator
token to DIR/operator.token (mode 0600). Every decision and event is logged on stderr, one
line each (docs/api.md, "Logs"). "vasp status" shows a running server.

  --state-dir DIR       the state directory (default: $VASP_STATE_DIR, else ./.vasp)
${POLICY_USAGE}
  --socket PATH         the operator socket, mode 0600: whoever opens it is operator, no
                        token (default: DIR/vasp.sock)
  --hook-socket PATH    the hook socket, mode 0660: whoever opens it may decide and report
                        events, nothing else (default: DIR/hook.sock; QEMU's user must reach
                        it: see deploy/libvirt/README.md)
  --listen HOST:PORT    the TCP listener, bearer token required (default: 127.0.0.1:8787)
  --allow-remote        allow a non-loopback --listen address: the API is plain HTTP, so
                        tokens would cross the network in clear; put a TLS proxy in front
  --no-tcp, --no-socket, --no-hook-socket
                        run without that listener (not all: a server needs one)
  --learn-host          record the host as measured now as the expected host
                        (DIR/host-expected.json), which host-integrity policies compare with
  --qemu FILE           the QEMU binary to measure (default: qemu-system-x86_64 on PATH)
  --host-kernel FILE    the host kernel image to measure (default: /boot/vmlinuz-$(uname -r))
  --libvirt-uri URI     the libvirt whose domain events (define, undefine) the server follows
                        (default: qemu:///system)
  --log-format F        text (default: time LEVEL message key=value …) or json (one object a
                        line; the startup facts too, and nothing on stdout)`;

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

/**
 * What the host-integrity policies will see: which parts were not measured, and which measured
 * files match what the operator learned.
 */
function hostReport(
  host: HostState,
  measured: readonly HostMeasurement[],
  stateDir: string,
): string {
  const missing = measured.filter((m) => !m.sha256).map((m) => m.part);
  const unmeasured = missing.length
    ? `; not measured: ${missing.join(", ")} (policies that require them deny starts; ` +
      `point to them with --qemu / --host-kernel)`
    : "";
  const learned = Object.entries(host.files).filter(([, f]) => f.expected !== "");
  const file = join(stateDir, HOST_EXPECTED_FILE);
  if (learned.length === 0) {
    return `host expectations none recorded (${file}): host-integrity policies deny every ` +
      `start; record this host as measured now with "vasp serve --learn-host"${unmeasured}`;
  }
  const differing = learned.filter(([, f]) => f.digest !== f.expected).map(([name]) => name);
  const matching = learned.length - differing.length;
  return `host expectations ${matching} of ${learned.length} match (${file})` +
    (differing.length
      ? `; DIFFERING: ${differing.join(", ")} (if the change is yours, record it with ` +
        `"vasp serve --learn-host")`
      : "") +
    unmeasured;
}

/** `vasp serve`. */

export const serve: Command = {
  name: "serve",
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, {
      "state-dir": { type: "string" },
      ...POLICY_OPTIONS,
      socket: { type: "string" },
      "no-socket": { type: "boolean" },
      "hook-socket": { type: "string" },
      "no-hook-socket": { type: "boolean" },
      listen: { type: "string" },
      "no-tcp": { type: "boolean" },
      "allow-remote": { type: "boolean" },
      "learn-host": { type: "boolean" },
      qemu: { type: "string" },
      "host-kernel": { type: "string" },
      "libvirt-uri": { type: "string" },
      "log-format": { type: "string" },
    });
    const format = values["log-format"] ?? "text";
    if (!LOG_FORMATS.includes(format as LogFormat)) {
      throw usageError(`--log-format "${format}" is not one of ${LOG_FORMATS.join(", ")}`);
    }
    if (values["no-socket"] && values["no-tcp"]) {
      throw usageError(
        "--no-socket and --no-tcp leave the server with no listener: keep the Unix socket " +
          "(for local hooks) or the TCP listener (--listen HOST:PORT)",
      );
    }
    if (values["no-socket"] && values.socket !== undefined) {
      throw usageError("give --socket PATH or --no-socket, not both");
    }
    if (values["no-tcp"] && values.listen !== undefined) {
      throw usageError("give --listen HOST:PORT or --no-tcp, not both");
    }
    const log = createLogger({ format: format as LogFormat });
    const stateDir = resolve(resolveStateDir(values["state-dir"]));
    // The server is loaded only when it runs (`vasp help` and the client commands start fast).
    const { checkListen, parseListen, startServer } = await import("../server/mod.ts");
    const tcp = values["no-tcp"] ? null : parseListen(values.listen ?? "127.0.0.1:8787");
    if (tcp) checkListen(tcp, values["allow-remote"] ?? false);
    const policies = policySource(values);
    const stop = stopSignal();
    try {
      const server = await startServer({
        stateDir,
        policies,
        socket: values["no-socket"] ? null : values.socket,
        hookSocket: values["no-hook-socket"] ? null : values["hook-socket"],
        tcp,
        host: { qemu: values.qemu, kernel: values["host-kernel"] },
        learnHost: values["learn-host"],
        ...(values["libvirt-uri"] === undefined ? {} : { libvirt: { uri: values["libvirt-uri"] } }),
        log,
      });
      try {
        const { socket, hookSocket, tcp: bound } = server.listeners;
        writeServeFile(stateDir, {
          pid: Deno.pid,
          started_at: new Date().toISOString(),
          socket: socket ?? null,
          hook_socket: hookSocket ?? null,
          tcp: bound ? hostPort(bound) : null,
          log_format: format,
          host_unmeasured: server.host.measured.filter((m) => !m.sha256).map((m) => ({
            part: m.part,
            why: m.skipped ?? "not measured",
          })),
        });
        const who = await identify(server.asp);
        if (format === "json") {
          log.log("info", "serving", startupFacts(server, who, stateDir));
        } else {
          const registers = server.host.measured.map((m) => toHex(server.asp.read(m.reg)));
          console.log(report(who, server.host.measured, registers));
          console.log(hostReport(server.host.state(), server.host.measured, stateDir));
          console.log(`policy revision  ${server.policyStore.current().revision}`);
          console.log(
            `audit checkpoints signed by the ASP attestation key, chain ${server.akChain}`,
          );
          if (socket) console.log(`listening on unix:${socket} (operator, no token; mode 0600)`);
          if (hookSocket) {
            console.log(`listening on unix:${hookSocket} (hook role, no token; mode 0660)`);
          }
          if (bound) console.log(`listening on http://${hostPort(bound)} (bearer token)`);
          if (server.tokenFile) console.log(`operator token written to ${server.tokenFile}`);
          console.log(
            'ready; decisions and events are logged on stderr; "vasp status" shows this server; ' +
              "stop with Ctrl-C or SIGTERM",
          );
        }
        const signal = await stop.signal;
        if (format === "json") log.log("info", "stopping", { signal });
        else console.log(`stopping on ${signal}`);
      } finally {
        removeServeFile(stateDir);
        await server.shutdown();
      }
      if (format === "json") log.log("info", "stopped");
      else console.log("stopped");
    } finally {
      stop.dispose();
    }
    return 0;
  },
};

/** The startup facts as one structured record. */
function startupFacts(
  server: RunningServer,
  who: AspIdentity,
  stateDir: string,
): Record<string, unknown> {
  const { socket, tcp } = server.listeners;
  const files = Object.entries(server.host.state().files);
  return {
    state_dir: stateDir,
    asp_id: who.id,
    ek_digest: `sha256:${who.ek.sha256}`,
    ak_digest: `sha256:${who.ak.sha256}`,
    ca_pem: who.caPemPath,
    host_files: Object.fromEntries(files.map(([name, f]) => [name, f.digest])),
    host_unmeasured: server.host.measured.filter((m) => !m.sha256).map((m) => m.part),
    host_expected_recorded: files.some(([, f]) => f.expected !== ""),
    host_differing: files.filter(([, f]) => f.expected !== "" && f.expected !== f.digest)
      .map(([name]) => name),
    policy_revision: server.policyStore.current().revision,
    ak_chain: server.akChain,
    socket: socket ?? null,
    tcp: tcp ? hostPort(tcp) : null,
    operator_token_written: server.tokenFile ?? null,
  };
}

function hostPort(address: { hostname: string; port: number }): string {
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  return `${host}:${address.port}`;
}

/**
 * The ASP's identity.
 *
 * @param asp the open ASP
 * @returns its ID, certificate descriptions and the CA's PEM path
 * @throws {NativeError} when the ASP is closed
 */
export async function identify(asp: Asp): Promise<AspIdentity> {
  const { describeCertificate } = await import("../attest/mod.ts");
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

function report(
  who: AspIdentity,
  measured: readonly HostMeasurement[],
  registers: string[],
): string {
  const cert = (c: CertificateInfo) => `${c.subject}  sha256:${c.sha256}`;
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
      `     ${m.skipped ? `not measured: ${m.skipped}` : `sha256:${m.sha256}  ${m.description}`}`,
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
