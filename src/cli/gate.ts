/**
 * `vasp gate`: runs the QMP gate for one QEMU (normally started by deploy/qemu/vasp-qemu).
 *
 * @module
 */
import { describeError, VaspError } from "../engine/error.ts";
import { resolveStateDir } from "../store/state_dir.ts";
import { createLogger, LOG_FORMATS, type LogFormat } from "../server/log.ts";
import { type Command, parseOptions, readFlagText } from "./_command.ts";
import type { DecisionPort } from "../hypervisor/mod.ts";

const USAGE = `usage: vasp gate --qmp UPSTREAM_SOCKET --listen SOCKET --vm-uuid UUID --vm-name NAME
                 [--server SOCKET|URL] [--token-file F] [--timeout MS] [--incoming]
                 [--watch-pid PID] [--loadvm NAME] [--log-format text|json]

Listens on SOCKET and proxies each client to QEMU's QMP socket UPSTREAM_SOCKET, passing
descriptors (getfd/add-fd) through. Queries and libvirt's routine commands pass; before any
other command (stop, cont, migrate, snapshots, memory dumps, disk exports, hot-plug …) it asks
the decision server and answers a denied one, or one no decision came for, with a QMP error.
QMP events that move the VM's state (STOP, RESUME, SHUTDOWN, RESET, MIGRATION) are reported.

  --qmp PATH        QEMU's own QMP socket (retried for 30 s per client while QEMU starts)
  --listen PATH     where clients (libvirt) connect; a stale socket there is replaced
  --listen-fd FD    accept on an inherited listening socket instead (libvirt's fd=N monitor)
  --vm-uuid UUID    the VM's UUID (QEMU -uuid)
  --vm-name NAME    the VM's name (QEMU -name guest=NAME)
  --server S        decision server: a Unix socket path or an http:// URL
                    (default: the hook socket, $VASP_STATE_DIR/hook.sock, else
                    ./.vasp/hook.sock)
  --token-file F    the bearer token for a TCP server, from this file (default: $VASP_TOKEN;
                    never on the command line, where every user's ps sees it)
  --timeout MS      time allowed for one decision (default 2000); none in time is a denial
  --incoming        this QEMU was started with -incoming (migration events are migrate-in)
  --loadvm NAME     this QEMU starts from internal snapshot NAME (-loadvm: libvirt's snapshot
                    revert): first ask for that start (its vASP state is the snapshot's) and
                    exit 1, never gating, when it is denied
  --watch-pid PID   exit when process PID has ended (the wrapper passes QEMU's own PID)
  --ready FILE      create FILE once the gate accepts clients
  --log-format F    how lines on stderr are written: text (default: time LEVEL message
                    key=value …) or json (one object a line), as vasp serve's`;

/** `vasp gate`. */
export const gate: Command = {
  name: "gate",
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, {
      qmp: { type: "string" },
      listen: { type: "string" },
      "listen-fd": { type: "string" },
      "vm-uuid": { type: "string" },
      "vm-name": { type: "string" },
      server: { type: "string" },
      "token-file": { type: "string" },
      timeout: { type: "string" },
      incoming: { type: "boolean" },
      "watch-pid": { type: "string" },
      ready: { type: "string" },
      "log-format": { type: "string" },
      loadvm: { type: "string" },
    });
    const format = values["log-format"] ?? "text";
    if (!LOG_FORMATS.includes(format as LogFormat)) {
      throw new VaspError(
        "usage_invalid",
        `--log-format "${format}" is not one of ${LOG_FORMATS.join(", ")}`,
      );
    }
    for (const name of ["qmp", "vm-uuid", "vm-name"] as const) {
      if (!values[name]) throw new VaspError("usage_invalid", `--${name} is required`);
    }
    if ((values.listen === undefined) === (values["listen-fd"] === undefined)) {
      throw new VaspError("usage_invalid", "give one of --listen and --listen-fd");
    }
    const listenFd = values["listen-fd"] === undefined ? undefined : Number(values["listen-fd"]);
    if (listenFd !== undefined && !(Number.isInteger(listenFd) && listenFd >= 0)) {
      throw new VaspError(
        "usage_invalid",
        `--listen-fd "${values["listen-fd"]}" is not a descriptor`,
      );
    }
    const timeoutMs = Number(values.timeout ?? 2000);
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new VaspError(
        "usage_invalid",
        `--timeout "${values.timeout}" is not a positive number`,
      );
    }
    const watchPid = values["watch-pid"] === undefined ? undefined : Number(values["watch-pid"]);
    if (watchPid !== undefined && !(Number.isInteger(watchPid) && watchPid > 0)) {
      throw new VaspError("usage_invalid", `--watch-pid "${values["watch-pid"]}" is not a PID`);
    }
    const server = values.server ?? `${resolveStateDir()}/hook.sock`;
    const { QmpGate } = await import("../hypervisor/mod.ts");
    const token = values["token-file"] === undefined
      ? Deno.env.get("VASP_TOKEN")
      : readFlagText("--token-file", values["token-file"]).trim();
    await using decisions = decisionClient(server, { token, timeoutMs });
    const logger = createLogger({ format: format as LogFormat });
    const vm = { vm: values["vm-name"], vm_uuid: values["vm-uuid"] };
    if (values.loadvm !== undefined) {
      // A revert restarts QEMU with -loadvm: the guest comes back from the snapshot, never
      // through a QMP command the gate would see, so its start is asked for here.
      const answer = await decisions.decide({
        operation: "start",
        phase: "loadvm",
        vm: { uuid: values["vm-uuid"]!, name: values["vm-name"]! },
        source: "qmp-gate",
        details: { snapshot: values.loadvm, action: "load" },
      }).catch((error) => ({
        allow: false,
        decision_id: "",
        reasons: [{ message: describeError(error) }],
      }));
      if (!answer.allow) {
        logger.log("error", `vASP denied the start from snapshot "${values.loadvm}"`, {
          ...vm,
          decision_id: answer.decision_id,
          reasons: answer.reasons.map((r) => r.message),
        });
        return 1;
      }
      logger.log("info", `start from snapshot "${values.loadvm}" allowed`, {
        ...vm,
        decision_id: answer.decision_id,
      });
    }
    const qmpGate = new QmpGate({
      log: (line) =>
        logger.log(
          /denied|failed|dropped|error/i.test(line) ? "warn" : "info",
          line.replace(/^qmp-gate: /, ""),
          vm,
        ),
      upstream: values.qmp!,
      vm: { uuid: values["vm-uuid"]!, name: values["vm-name"]! },
      decisions,
      incoming: values.incoming ?? false,
    });
    if (listenFd === undefined) qmpGate.listen(values.listen!);
    else qmpGate.listenFd(listenFd);
    if (values.ready) await Deno.writeTextFile(values.ready, `${Deno.pid}\n`);
    const where = values.listen ?? `fd ${listenFd}`;
    logger.log("info", "gating", { ...vm, listen: where, qmp: values.qmp, server });

    const stop = () => qmpGate.close();
    const signals = ["SIGTERM", "SIGINT", "SIGHUP"] as const;
    for (const signal of signals) Deno.addSignalListener(signal, stop);
    const watcher = watchPid === undefined ? undefined : setInterval(() => {
      if (!alive(watchPid)) stop();
    }, 1000);
    try {
      await qmpGate.finished;
      // Reports still queued get a moment to reach the server, not forever.
      await Promise.race([qmpGate.reportsIdle(), new Promise((r) => setTimeout(r, 5000))]);
    } finally {
      clearInterval(watcher);
      for (const signal of signals) Deno.removeSignalListener(signal, stop);
    }
    return 0;
  },
};

/**
 * The decision client, loaded beside the gate rather than before it: its answer schemas take
 * about 30 ms to load, and libvirt's first decision comes after some 400 commands the lane
 * passes while the gate is otherwise idle.
 */
function decisionClient(
  server: string,
  options: { token: string | undefined; timeoutMs: number },
): DecisionPort & AsyncDisposable {
  const client = import("../wire/client.ts").then(({ VaspClient }) =>
    new VaspClient(server, options)
  );
  return {
    decide: async (request) => (await client).decide(request),
    report: async (event) => (await client).report(event),
    [Symbol.asyncDispose]: async () => (await client).close(),
  };
}

/** Whether a process runs: a zombie (ended, not yet reaped) does not. */
function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The state follows the command name, which is in parentheses and may hold any byte.
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}
