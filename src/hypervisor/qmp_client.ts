/**
 * A small client for QEMU's QMP monitor over a Unix socket: reads the greeting, negotiates
 * capabilities, runs commands matched to their answers by `id`, and queues asynchronous
 * events. General enough for the measurement code (registers, version, CPUs) and for a proxy
 * that needs to speak to QEMU itself.
 *
 * QEMU writes one JSON object per line. Answers carry the `id` of their command; events
 * (`{"event": …}`) may arrive at any time, between or before answers.
 *
 * @module
 */
import { asError, type ErrorCode, errorMessage, VaspError } from "../engine/error.ts";

/** QEMU's version, from the greeting. */
export interface QmpVersion {
  /** Major, minor, micro. */
  readonly qemu: { readonly major: number; readonly minor: number; readonly micro: number };
  /** Distribution suffix, e.g. `Debian 1:7.2+dfsg-7+deb12u18`. */
  readonly package: string;
}

/** An asynchronous QMP event. */
export interface QmpEvent {
  /** Event name, e.g. `STOP`, `RESUME`, `SHUTDOWN`. */
  readonly event: string;
  /** Event data, if any. */
  readonly data?: Record<string, unknown>;
  /** When QEMU emitted it. */
  readonly timestamp?: { readonly seconds: number; readonly microseconds: number };
}

/** Options for {@linkcode QmpClient.connect}. */
export interface QmpConnectOptions {
  /** Milliseconds to wait for the connection, the greeting and capabilities. Default 5000. */
  timeoutMs?: number;
  /** Events kept while nobody waits for them; older ones are dropped. Default 256. */
  maxQueuedEvents?: number;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface EventWaiter {
  name?: string;
  resolve(event: QmpEvent): void;
  reject(error: Error): void;
}

/** Longest line accepted from QEMU; a longer one means the stream is not QMP. */
const MAX_LINE = 16 << 20;

/** Rejects with `qmp_timeout` after `ms` unless `promise` settles first. */
function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new VaspError("qmp_timeout", `${what}: no answer within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A connected QMP session. Close it (`await using`) to release the socket.
 *
 * @example
 * ```ts ignore
 * await using qmp = await QmpClient.connect("/run/vm1.qmp");
 * const status = await qmp.execute<{ status: string }>("query-status");
 * const regs = await qmp.hmp("info registers");
 * ```
 */
export class QmpClient implements AsyncDisposable {
  readonly #conn: Deno.UnixConn;
  readonly #path: string;
  readonly #pending = new Map<string, Pending>();
  readonly #events: QmpEvent[] = [];
  readonly #waiters: EventWaiter[] = [];
  readonly #maxEvents: number;
  #greeting: { resolve(v: unknown): void; reject(e: Error): void } | undefined;
  #version: QmpVersion | undefined;
  #nextId = 1;
  #closed: VaspError | undefined;
  #reader: Promise<void>;

  private constructor(conn: Deno.UnixConn, path: string, maxEvents: number) {
    this.#conn = conn;
    this.#path = path;
    this.#maxEvents = maxEvents;
    this.#reader = this.#readLoop();
  }

  /**
   * Connects to a QMP socket, reads the greeting and enters command mode.
   *
   * @param path the Unix socket QEMU listens on (`-qmp unix:PATH,server=on`)
   * @param options timeout and event queue size
   * @returns the session
   * @throws {VaspError} `qmp_unreachable` when the socket cannot be reached,
   *   `qmp_protocol_violated` when the peer does not greet as QMP, `qmp_timeout`
   */
  static async connect(path: string, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = options.timeoutMs ?? 5000;
    let conn: Deno.UnixConn;
    try {
      conn = await withTimeout(
        Deno.connect({ transport: "unix", path }),
        timeoutMs,
        `Cannot connect to QMP "${path}"`,
      );
    } catch (cause) {
      if (cause instanceof VaspError) throw cause;
      throw new VaspError(
        "qmp_unreachable",
        `Cannot connect to QMP "${path}": ${errorMessage(cause)}`,
        { cause, details: { path } },
      );
    }
    const client = new QmpClient(conn, path, options.maxQueuedEvents ?? 256);
    try {
      const greeting = new Promise((resolve, reject) => client.#greeting = { resolve, reject });
      const hello = await withTimeout(greeting, timeoutMs, `QMP "${path}" sent no greeting`);
      client.#version = (hello as { QMP?: { version?: QmpVersion } }).QMP?.version;
      await client.execute("qmp_capabilities", undefined, { timeoutMs });
    } catch (error) {
      await client.close();
      throw error;
    }
    return client;
  }

  /** QEMU's version from the greeting. */
  get version(): QmpVersion | undefined {
    return this.#version;
  }

  /**
   * Runs a command and returns its `return` value.
   *
   * @param command the QMP command, e.g. `query-status`
   * @param args its arguments
   * @param options `timeoutMs` (default 10000)
   * @returns the command's `return` member
   * @throws {VaspError} `qmp_failed` (QEMU's error class and description),
   *   `qmp_closed`, `qmp_timeout`
   */
  async execute<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    options: { timeoutMs?: number } = {},
  ): Promise<T> {
    if (this.#closed) throw this.#closed;
    const id = `vasp-${this.#nextId++}`;
    const answer = new Promise<unknown>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
    });
    const line = JSON.stringify(
      args ? { execute: command, arguments: args, id } : {
        execute: command,
        id,
      },
    );
    try {
      await this.#conn.write(new TextEncoder().encode(`${line}\n`));
      return await withTimeout(
        answer,
        options.timeoutMs ?? 10_000,
        `QMP command "${command}" on "${this.#path}"`,
      ) as T;
    } catch (error) {
      if (error instanceof VaspError) throw error;
      throw this.#fail(asError(error));
    } finally {
      this.#pending.delete(id);
    }
  }

  /**
   * Runs a human-monitor command (`info registers`, `x /4gx 0x…`) and returns its text.
   *
   * @param commandLine the HMP command line
   * @returns the monitor's output
   * @throws {VaspError} as {@linkcode QmpClient.execute}
   */
  hmp(commandLine: string): Promise<string> {
    return this.execute<string>("human-monitor-command", { "command-line": commandLine });
  }

  /**
   * The next event (optionally of one name), from the queue or as it arrives.
   *
   * @param name only this event, e.g. `STOP`; others stay queued
   * @param options `timeoutMs` (default 10000)
   * @returns the event
   * @throws {VaspError} `qmp_timeout`, `qmp_closed`
   */
  nextEvent(name?: string, options: { timeoutMs?: number } = {}): Promise<QmpEvent> {
    const at = this.#events.findIndex((e) => name === undefined || e.event === name);
    if (at >= 0) return Promise.resolve(this.#events.splice(at, 1)[0]!);
    if (this.#closed) return Promise.reject(this.#closed);
    let waiter!: EventWaiter;
    const event = new Promise<QmpEvent>((resolve, reject) => waiter = { name, resolve, reject });
    this.#waiters.push(waiter);
    return withTimeout(
      event,
      options.timeoutMs ?? 10_000,
      `QMP event ${name ?? "(any)"} on "${this.#path}"`,
    ).finally(() => {
      const i = this.#waiters.indexOf(waiter);
      if (i >= 0) this.#waiters.splice(i, 1);
    });
  }

  /** Closes the socket; pending commands fail with `qmp_closed`. Idempotent. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#fail(new Error("closed by the client"));
      try {
        this.#conn.close();
      } catch { /* already closed */ }
    }
    await this.#reader;
  }

  /** Same as {@linkcode QmpClient.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #fail(cause: Error, code: ErrorCode = "qmp_closed"): VaspError {
    this.#closed ??= new VaspError(
      code,
      `QMP connection "${this.#path}" is closed: ${cause.message}`,
      { cause, details: { path: this.#path } },
    );
    for (const p of this.#pending.values()) p.reject(this.#closed);
    this.#pending.clear();
    this.#greeting?.reject(this.#closed);
    for (const w of this.#waiters.splice(0)) w.reject(this.#closed);
    return this.#closed;
  }

  #dispatch(message: Record<string, unknown>): void {
    if ("QMP" in message && this.#greeting) {
      this.#greeting.resolve(message);
      this.#greeting = undefined;
      return;
    }
    if (typeof message.event === "string") {
      const event = message as unknown as QmpEvent;
      const w = this.#waiters.findIndex((x) => x.name === undefined || x.name === event.event);
      if (w >= 0) return this.#waiters.splice(w, 1)[0]!.resolve(event);
      this.#events.push(event);
      if (this.#events.length > this.#maxEvents) this.#events.shift();
      return;
    }
    const pending = typeof message.id === "string" ? this.#pending.get(message.id) : undefined;
    if (!pending) return; // an answer to a command that timed out
    if ("error" in message) {
      const e = message.error as { class?: string; desc?: string };
      pending.reject(
        new VaspError(
          "qmp_failed",
          `QMP error ${e.class ?? "?"}: ${e.desc ?? "(no description)"}`,
          {
            details: { class: e.class, path: this.#path },
          },
        ),
      );
    } else pending.resolve(message.return);
  }

  async #readLoop(): Promise<void> {
    const decoder = new TextDecoder();
    let buffered = "";
    try {
      for await (const chunk of this.#conn.readable) {
        buffered += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line !== "") this.#dispatch(JSON.parse(line));
        }
        if (buffered.length > MAX_LINE) throw new Error(`a line over ${MAX_LINE} bytes`);
      }
      this.#fail(new Error("QEMU closed the connection"));
    } catch (error) {
      const protocol = error instanceof SyntaxError || /over \d+ bytes/.test(String(error));
      if (protocol) {
        this.#fail(new Error(`not QMP: ${errorMessage(error)}`), "qmp_protocol_violated");
      } else this.#fail(asError(error));
      try {
        this.#conn.close();
      } catch { /* already closed */ }
    }
  }
}
