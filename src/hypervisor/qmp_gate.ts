/**
 * The QMP gate: a proxy on a Unix socket in front of QEMU's real QMP socket. It passes the
 * greeting, capability negotiation, replies and events through unchanged; before a
 * life-cycle command (`stop`, `cont`, `migrate`, snapshots, memory dumps, `quit` …) it asks
 * the decision server, and answers a denied command — or one no decision came for — with a
 * QMP error instead of forwarding it. QMP events that move the VM's life-cycle state are
 * reported to the server. See docs/hooks.md.
 *
 * @module
 */
import { VaspError } from "../engine/error.ts";
import type { Decision, DecisionRequest, EventAck, EventReport, VmRef } from "./decision_client.ts";
import { EventReporter } from "./_event_reporter.ts";
import { type ByteConn, GateConnection, type GateContext } from "./_gate_connection.ts";
import { listenOnFd } from "./_node_conn.ts";
import type { Server } from "node:net";

/** What the gate needs of the decision server; {@linkcode DecisionClient} provides it. */
export interface DecisionPort {
  /** Asks for a decision; a rejection counts as a denial. */
  decide(request: DecisionRequest): Promise<Decision>;
  /** Reports an event. */
  report(event: EventReport): Promise<EventAck>;
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
  readonly #accepted = new Set<ByteConn>();
  #listener: Deno.Listener | undefined;
  #fdServer: Server | undefined;
  #finished: Promise<void> = Promise.resolve();

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
    try {
      this.#listener = Deno.listen({ transport: "unix", path });
    } catch (cause) {
      throw new VaspError(
        "gate_listen_failed",
        `Cannot listen on "${path}": ${(cause as Error).message}`,
        { cause },
      );
    }
    this.#finished = this.#accept(this.#listener);
    return this;
  }

  /**
   * Starts accepting clients on an inherited listening socket (libvirt's `fd=N` monitor).
   *
   * @param fd the descriptor, already bound and listening
   * @returns this gate, once it accepts
   * @throws {VaspError} `gate_listen_failed` when `fd` is not a listening socket
   */
  async listenFd(fd: number): Promise<this> {
    this.#assertIdle();
    let done!: () => void;
    this.#finished = new Promise((resolve) => done = resolve);
    try {
      this.#fdServer = await listenOnFd(fd, (conn) => this.#serve(conn));
    } catch (cause) {
      done();
      throw new VaspError(
        "gate_listen_failed",
        `Cannot accept on file descriptor ${fd}: ${(cause as Error).message}`,
        { cause },
      );
    }
    this.#fdServer.once("close", done);
    return this;
  }

  #assertIdle(): void {
    if (this.#listener || this.#fdServer) {
      throw new VaspError("gate_listen_failed", "Cannot listen twice: the gate already listens");
    }
  }

  /** Resolves when the gate has stopped accepting clients (after {@linkcode close}). */
  get finished(): Promise<void> {
    return this.#finished;
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
    if (listener) {
      const path = (listener.addr as Deno.UnixAddr).path;
      try {
        listener.close();
      } catch {
        // Already closed.
      }
      await Deno.remove(path).catch(() => {});
    }
    const fdServer = this.#fdServer;
    this.#fdServer = undefined;
    fdServer?.close();
    for (const conn of this.#accepted) closeQuietly(conn);
    for (const connection of this.#connections) connection.close();
    await this.#finished;
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    try {
      for await (const client of listener) this.#serve(client);
    } catch (error) {
      if (this.#listener) this.#ctx.log(`qmp-gate: accept failed: ${(error as Error).message}`);
    }
  }

  async #serve(client: ByteConn): Promise<void> {
    this.#accepted.add(client);
    let upstream: Deno.Conn;
    try {
      upstream = await connectWithRetry(
        this.#options.upstream,
        this.#options.upstreamWaitMs ?? 30_000,
      );
    } catch (error) {
      this.#ctx.log(`qmp-gate: ${(error as Error).message}; closing the client`);
      this.#accepted.delete(client);
      return closeQuietly(client);
    }
    this.#accepted.delete(client);
    if (!this.#listener && !this.#fdServer) return (closeQuietly(client), closeQuietly(upstream));
    const connection = new GateConnection(client, upstream, this.#ctx);
    this.#connections.add(connection);
    await connection.run();
    this.#connections.delete(connection);
  }
}

async function connectWithRetry(path: string, waitMs: number): Promise<Deno.Conn> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await Deno.connect({ transport: "unix", path });
    } catch (cause) {
      const retry = cause instanceof Deno.errors.NotFound ||
        cause instanceof Deno.errors.ConnectionRefused;
      if (!retry || Date.now() >= deadline) {
        throw new VaspError(
          "upstream_unavailable",
          `Cannot connect to QEMU's QMP socket "${path}": ${(cause as Error).message}`,
          { cause },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

function closeQuietly(conn: ByteConn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
