/**
 * The QMP gate: a proxy on a Unix socket in front of QEMU's real QMP socket. It passes the
 * greeting, capability negotiation, replies, events and an allow-list of queries and routine
 * commands through unchanged, with the descriptors libvirt sends beside them (SCM_RIGHTS,
 * through libvasp's sockets); before anything else (`stop`, `migrate`, snapshots, memory
 * dumps, disk exports, hot-plug, unknown commands …) it asks the decision server, and answers
 * a denied command — or one no decision came for — with a QMP error instead of forwarding it.
 * It reads input exactly as QEMU does and refuses what QEMU would split. QMP events that move
 * the VM's life-cycle state are reported to the server. See docs/hooks.md.
 *
 * @module
 */
import { errorMessage, isVaspError, VaspError } from "../engine/error.ts";
import type {
  DecideRequest,
  DecisionAnswer,
  EventAnswer,
  EventReport,
  VmRef,
} from "../wire/mod.ts";
import { EventReporter } from "./_event_reporter.ts";
import { GateConnection, type GateContext } from "./_gate_connection.ts";
import { type Lane, UnixSocket } from "../../ffi/mod.ts";
import { LANE_PASSABLE } from "./_qmp_allow.ts";

/** What the gate needs of the decision server; `VaspClient` (src/wire) provides it. */
export interface DecisionPort {
  /** Asks for a decision; a rejection counts as a denial. */
  decide(request: DecideRequest): Promise<DecisionAnswer>;
  /** Reports an event. */
  report(event: EventReport): Promise<EventAnswer>;
}

/** How to build a gate. */
export interface QmpGateOptions {
  /** Path of QEMU's own QMP socket. */
  readonly upstream: string;
  /** The VM behind this QEMU. */
  readonly vm: VmRef;
  /** The decision server. */
  readonly decisions: DecisionPort;
  /** How long to keep retrying QEMU's socket for a new client (QEMU may still be starting). */
  readonly upstreamWaitMs?: number;
  /** This QEMU was started to receive a migration (`-incoming`). */
  readonly incoming?: boolean;
  /** Where the gate writes one line per decision and per failure (default: stderr). */
  readonly log?: (line: string) => void;
}

/**
 * A running QMP gate.
 *
 * @example
 * ```ts ignore
 * const gate = new QmpGate({ upstream: "/run/vm1/qmp.sock", vm, decisions: client });
 * gate.listen("/run/vm1/monitor.sock");
 * await gate.finished;
 * ```
 */
export class QmpGate {
  readonly #options: QmpGateOptions;
  readonly #ctx: GateContext;
  readonly #connections = new Set<GateConnection>();
  readonly #accepted = new Set<UnixSocket>();
  #listener: UnixSocket | undefined;
  #path: string | undefined;
  #finished: Promise<void> = Promise.resolve();
  #passed = 0;

  /**
   * @param options upstream socket, VM, decision server
   * @throws {TypeError} when the VM has no UUID or name
   */
  constructor(options: QmpGateOptions) {
    if (!options.vm?.uuid || !options.vm?.name) {
      throw new TypeError(
        `Cannot gate VM ${JSON.stringify(options.vm)}: it needs a uuid and a name`,
      );
    }
    this.#options = options;
    const log = options.log ?? ((line: string) => console.error(line));
    this.#ctx = {
      vm: options.vm,
      decide: (request) => options.decisions.decide(request),
      reporter: new EventReporter(options.decisions, log),
      log,
      migration: options.incoming ? "in" : undefined,
      launched: false,
      saving: undefined,
      fdNames: new Map(),
    };
  }

  /**
   * Starts accepting clients on a Unix socket (a stale socket file at `path` is replaced).
   *
   * @param path where clients (libvirt) connect
   * @returns this gate
   * @throws {VaspError} `gate_listen_failed` when the socket cannot be created
   */
  listen(path: string): this {
    this.#assertIdle();
    try {
      if (Deno.lstatSync(path).isSocket) Deno.removeSync(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    this.#start(() => UnixSocket.listen(path), `Cannot listen on "${path}"`);
    this.#path = path;
    return this;
  }

  /**
   * Starts accepting clients on an inherited listening socket (libvirt's `fd=N` monitor).
   * The gate owns the descriptor from then on and closes it with the gate.
   *
   * @param fd the descriptor, already bound and listening
   * @returns this gate
   * @throws {VaspError} `gate_listen_failed` when `fd` is not a listening socket
   */
  listenFd(fd: number): this {
    this.#assertIdle();
    this.#start(() => UnixSocket.adopt(fd), `Cannot accept on file descriptor ${fd}`);
    return this;
  }

  #start(open: () => UnixSocket, what: string): void {
    try {
      this.#listener = open();
    } catch (cause) {
      throw new VaspError("gate_listen_failed", `${what}: ${errorMessage(cause)}`, {
        cause,
      });
    }
    this.#finished = this.#accept(this.#listener);
  }

  #assertIdle(): void {
    if (this.#listener) {
      throw new VaspError("gate_listen_failed", "Cannot listen twice: the gate already listens");
    }
  }

  /** Resolves when the gate has stopped accepting clients (after {@linkcode close}). */
  get finished(): Promise<void> {
    return this.#finished;
  }

  /** How many commands the lanes of the connections that have ended passed themselves. */
  get lanePassed(): number {
    return this.#passed;
  }

  /**
   * Waits until every queued event report has been sent (or has failed).
   *
   * @returns when no report is pending
   */
  reportsIdle(): Promise<void> {
    return this.#ctx.reporter.idle();
  }

  /**
   * Stops listening, closes every connection and removes the socket file.
   *
   * @returns when the accept loop has ended
   */
  async close(): Promise<void> {
    const listener = this.#listener;
    this.#listener = undefined;
    listener?.close();
    if (this.#path) await Deno.remove(this.#path).catch(() => {});
    this.#path = undefined;
    for (const conn of this.#accepted) conn.close();
    for (const connection of this.#connections) connection.close();
    await this.#finished;
  }

  async #accept(listener: UnixSocket): Promise<void> {
    try {
      for (let client; (client = await listener.accept());) this.#serve(client);
    } catch (error) {
      if (this.#listener) this.#ctx.log(`qmp-gate: accept failed: ${errorMessage(error)}`);
    }
  }

  async #serve(client: UnixSocket): Promise<void> {
    this.#accepted.add(client);
    let upstream: UnixSocket;
    try {
      upstream = await connectWithRetry(
        this.#options.upstream,
        this.#options.upstreamWaitMs ?? 30_000,
      );
    } catch (error) {
      this.#ctx.log(`qmp-gate: ${errorMessage(error)}; closing the client`);
      this.#accepted.delete(client);
      return client.close();
    }
    this.#accepted.delete(client);
    if (!this.#listener) return (client.close(), upstream.close());
    let opened: { lane: Lane; client: UnixSocket; upstream: UnixSocket };
    try {
      opened = UnixSocket.lane(client, upstream, LANE_PASSABLE);
    } catch (error) {
      this.#ctx.log(`qmp-gate: ${errorMessage(error)}; closing the client`);
      return (client.close(), upstream.close());
    }
    const { lane } = opened;
    const connection = new GateConnection(
      opened.client,
      opened.upstream,
      this.#ctx,
      lane,
    );
    this.#connections.add(connection);
    await connection.run();
    this.#connections.delete(connection);
    this.#passed += lane.passed;
    lane.close();
  }
}

/** How often a missing QEMU socket is looked for again while QEMU starts. */
const UPSTREAM_RETRY_MS = 5;

async function connectWithRetry(path: string, waitMs: number): Promise<UnixSocket> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return UnixSocket.connect(path);
    } catch (cause) {
      const retry = isVaspError(cause, "item_not_found");
      if (!retry || Date.now() >= deadline) {
        throw new VaspError(
          "upstream_unavailable",
          `Cannot connect to QEMU's QMP socket "${path}": ${errorMessage(cause)}`,
          { cause },
        );
      }
      // QEMU comes up beside the gate (deploy/qemu/vasp-qemu): its socket is looked for often,
      // each look a failed connect(2) of a few microseconds.
      await new Promise((resolve) => setTimeout(resolve, UPSTREAM_RETRY_MS));
    }
  }
}
