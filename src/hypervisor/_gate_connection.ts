/**
 * One client connection of the QMP gate, with its own connection to QEMU. Client input is
 * handled strictly in order: a command waiting for its decision holds back the ones behind it.
 * Replies go back in command order even when the gate answers a command itself.
 *
 * @module
 */
import type { DecideRequest, DecisionAnswer, VmRef } from "../wire/mod.ts";
import type { EventReporter } from "./_event_reporter.ts";
import { classifyCommand, classifyEvent, type FdKind, type GatedCommand } from "./_qmp_commands.ts";
import { parseQmp, type QmpInput, QmpInputSplitter, QmpSyntaxError } from "./_qmp_json.ts";
import { closeFd, fdKind, type LaneNote } from "../../ffi/mod.ts";
import { concat, echoId, errorReply, RETURN_PREFIX, safeParse, startsWith } from "./_qmp_wire.ts";
import { errorMessage } from "../engine/error.ts";

/** What a connection shares with the rest of the gate. */
export interface GateContext {
  readonly vm: VmRef;
  readonly decide: (request: DecideRequest) => Promise<DecisionAnswer>;
  readonly reporter: EventReporter;
  readonly log: (line: string) => void;
  /**
   * The migration under way: `in` when QEMU was started with `-incoming` or sent
   * `migrate-incoming`, `out` once a `migrate` was forwarded; cleared by its final event.
   */
  migration: "in" | "out" | undefined;
  /**
   * Whether QEMU's vCPUs have run (a `RESUME` or `STOP` event was seen). libvirt starts QEMU with `-S`:
   * until then a `cont` is the launch of a start, restore or migration already decided by the
   * libvirt hook (phase `launch`), not the resume of a paused VM.
   */
  launched: boolean;
  /**
   * A save to a file or pipe (libvirt's `migrate` to `fd:` for `virsh save`, `managedsave`,
   * `dump`): `pending` once forwarded, `done` once its `MIGRATION` completed (reported as the
   * save's completion). A `cont` after it (`virsh dump` goes on running the VM) is phase
   * `after-save`.
   */
  saving: "pending" | "done" | undefined;
  /** The kind of each descriptor QEMU holds by `getfd` name (QEMU keeps them per monitor). */
  readonly fdNames: Map<string, FdKind>;
}

/** The gate's side of its connection's lane (libvasp `vasp_lane`, `Lane` in ffi/). */
export interface LaneControl {
  /** The connection holds nothing, having taken in this many bytes from each side. */
  idle(clientBytes: number, upstreamBytes: number): void;
  /** What the `getfd` and `closefd` the lane passed itself did, oldest first. */
  notes(): LaneNote[];
}

/**
 * The little the gate needs of a connection: {@linkcode UnixSocket} has it. Descriptors
 * (SCM_RIGHTS) travel beside the bytes they were sent with.
 */
export interface ByteConn {
  /** The next bytes and the descriptors sent with them; no bytes at the end of the stream. */
  recv(): Promise<{ bytes: Uint8Array; fds: number[] }>;
  /** Sends all of `bytes`, `fds` attached to the first byte (the caller keeps its copies). */
  send(bytes: Uint8Array, fds?: readonly number[]): Promise<void>;
  /** Closes both directions. */
  close(): void;
}

/** One reply owed to the client: QEMU's next reply, or one the gate wrote itself. */
type Slot = { local: Uint8Array } | { upstream: GatedCommand | undefined };

/** Closes received descriptors the gate does not pass on, or no longer needs. */
function closeAll(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      closeFd(fd);
    } catch {
      // Already closed: nothing leaks.
    }
  }
}

const decoder = new TextDecoder("utf-8", { fatal: true });
const SOURCE = "qmp-gate";

/** How long a leaving client's connection waits for QEMU's outstanding replies. */
const DRAIN_MS = 5000;

/** Sends bytes and descriptors, then closes the gate's copies of the descriptors. */
async function sendAll(conn: ByteConn, bytes: Uint8Array, fds: readonly number[]): Promise<void> {
  try {
    await conn.send(bytes, fds);
  } finally {
    closeAll(fds);
  }
}

/** Proxies one client connection; {@linkcode run} resolves when either side has closed. */
export class GateConnection {
  readonly #client: ByteConn;
  readonly #upstream: ByteConn;
  readonly #ctx: GateContext;
  readonly #slots: Slot[] = [];
  #toClient: Promise<void> = Promise.resolve();
  #closed = false;
  #greeted = false;
  #onDrained: (() => void) | undefined;
  readonly #lane: LaneControl | undefined;
  /** Bytes taken in and dealt with, from each side. */
  #clientBytes = 0;
  #upstreamBytes = 0;
  /** Part of a message held back until the rest comes, on either side. */
  #clientHolding = false;
  #upstreamHolding = false;
  /** Sends to the client under way. */
  #sending = 0;

  /**
   * @param client the accepted client connection
   * @param upstream a fresh connection to QEMU's QMP socket
   * @param ctx the gate's shared state
   * @param lane the lane that relays the connection: told whenever the connection holds
   *   nothing (no part of a message, no reply owed, nothing being sent), and read for the
   *   descriptors it passed before anything is decided
   */
  constructor(client: ByteConn, upstream: ByteConn, ctx: GateContext, lane?: LaneControl) {
    this.#client = client;
    this.#upstream = upstream;
    this.#ctx = ctx;
    this.#lane = lane;
  }

  #checkIdle(): void {
    if (
      this.#lane && !this.#closed && this.#slots.length === 0 && this.#sending === 0 &&
      !this.#clientHolding && !this.#upstreamHolding
    ) {
      this.#lane.idle(this.#clientBytes, this.#upstreamBytes);
    }
  }

  /**
   * Runs both directions until one ends, then closes both connections.
   *
   * @returns when the connection is over; never rejects
   */
  async run(): Promise<void> {
    const end = (side: "client" | "QEMU") =>
      [() => side, (error: unknown) => {
        if (!this.#closed) {
          this.#ctx.log(`qmp-gate: ${side} connection: ${errorMessage(error)}`);
        }
        return side;
      }] as const;
    const upstream = this.#fromUpstream().then(...end("QEMU"));
    const first = await Promise.race([this.#fromClient().then(...end("client")), upstream]);
    if (first === "QEMU") {
      // QEMU's last words (the reply to quit, SHUTDOWN) still go to the client.
      await this.#toClient;
    } else if (!this.#closed) {
      // QEMU hands the reply to a command it was running when its client left to the next
      // client; wait for the replies still owed, so none leaks into another session.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        upstream,
        new Promise<void>((resolve) => (this.#onDrained = resolve, this.#checkDrained())),
        new Promise((resolve) => timer = setTimeout(resolve, DRAIN_MS)),
      ]);
      clearTimeout(timer);
    }
    this.close();
  }

  /** Closes both connections. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const conn of [this.#client, this.#upstream]) {
      try {
        conn.close();
      } catch {
        // Already closed by the peer's end.
      }
    }
  }

  async #fromClient(): Promise<void> {
    const splitter = new QmpInputSplitter();
    // Descriptors received while a value is still incomplete belong to that value.
    let held: number[] = [];
    try {
      for (;;) {
        const { bytes, fds } = await this.#client.recv();
        if (bytes.length === 0) return closeAll(fds);
        held.push(...fds);
        const inputs = splitter.push(bytes);
        // Descriptors go with the message holding the last byte they came with (libvirt sends
        // each with its own `getfd`/`add-fd` command in one write).
        const owner = splitter.pending ? undefined : inputs.length - 1;
        for (const [i, input] of inputs.entries()) {
          const fdsOf = i === owner ? held : [];
          if (i === owner) held = [];
          await this.#handle(input, fdsOf);
          if (this.#closed) return;
        }
        if (!splitter.pending && held.length) held = (closeAll(held), []);
        this.#clientBytes += bytes.length;
        this.#clientHolding = splitter.pending;
        this.#checkIdle();
      }
    } finally {
      closeAll(held);
    }
  }

  /** Decides one input; the descriptors that came with it are forwarded or closed. */
  async #handle(input: QmpInput, fds: number[]): Promise<void> {
    let forwarded = false;
    try {
      forwarded = await this.#decideInput(input, fds);
    } finally {
      if (!forwarded) closeAll(fds);
    }
  }

  /** @returns whether the input went to QEMU (its descriptors with it) */
  async #decideInput(input: QmpInput, fds: number[]): Promise<boolean> {
    if (input.kind === "refused") return (this.#refuse(input.reason!), false);
    let value: unknown, raw: Readonly<Record<string, string>>;
    try {
      ({ value, raw } = parseQmp(decoder.decode(input.bytes)));
    } catch (error) {
      const desc = error instanceof QmpSyntaxError
        ? error.message
        : "JSON parse error, invalid UTF-8 sequence in string";
      return (this.#reply(errorReply(desc)), false);
    }
    if (
      input.kind !== "value" || typeof value !== "object" || value === null || Array.isArray(value)
    ) {
      return (this.#reply(errorReply("QMP input must be a JSON object")), false);
    }
    const msg = value as Record<string, unknown>;
    const id = echoId(raw.id, msg.id);
    if ("exec-oob" in msg) {
      // Out-of-band replies overtake in-band ones; the gate matches replies by order.
      this.#refuse("the vASP gate does not pass out-of-band commands (exec-oob)", id);
      return false;
    }
    const name = msg.execute;
    // A command without a string name is refused by QEMU itself.
    const fdNames = this.#ctx.fdNames;
    for (const note of this.#lane?.notes() ?? []) {
      if (note.op === "getfd") fdNames.set(note.name, note.kind);
      else fdNames.delete(note.name);
    }
    const fdname = (msg.arguments as { fdname?: unknown } | undefined)?.fdname;
    if (typeof fdname === "string") {
      if (name === "getfd" && fds.length) fdNames.set(fdname, fdKind(fds[0]!));
      if (name === "closefd") fdNames.delete(fdname);
    }
    const classified = typeof name === "string"
      ? classifyCommand(name, msg.arguments, { fdKind: (n) => fdNames.get(n) })
      : undefined;
    const resumeStep = !this.#ctx.launched
      ? "launch"
      : this.#ctx.saving === "done"
      ? "after-save"
      : undefined;
    // libvirt's migrate-incoming into a QEMU it started with `-incoming defer` for a restore or
    // an incoming migration, which its hook decided (`restore`, `migrate`): part of that launch.
    const incomingLaunch = classified?.operation === "migrate-in" && !classified.phase &&
      !this.#ctx.launched;
    const gated = classified?.operation === "resume" && !classified.phase && resumeStep
      ? { ...classified, phase: resumeStep }
      : incomingLaunch
      ? { ...classified, phase: "launch" }
      : classified;
    if (!gated) return (await this.#forward(input.bytes, fds, undefined), true);
    if (id !== undefined) (gated.details as Record<string, unknown>).qmp_id = msg.id;
    const verdict = await this.#decide(gated);
    if (this.#closed) return false;
    if (!verdict.allow) return (this.#reply(errorReply(verdict.desc, id)), false);
    if (gated.operation === "migrate-out" && !gated.phase) this.#ctx.migration = "out";
    if (gated.operation === "migrate-in" && (!gated.phase || incomingLaunch)) {
      this.#ctx.migration = "in";
    }
    if (gated.operation === "save" && gated.details.command === "migrate") {
      this.#ctx.saving = "pending";
    }
    await this.#forward(input.bytes, fds, gated);
    return true;
  }

  /**
   * Answers input the gate will not pass whatever the policies say (over a limit QEMU would
   * split it at, out-of-band), and reports it: someone tried to get past the gate.
   */
  #refuse(reason: string, id?: string): void {
    this.#ctx.log(`qmp-gate: refused input: ${reason}`);
    this.#reply(errorReply(`vASP refused the input: ${reason}`, id));
    // The audit record: a monitor command nobody could decide on was attempted, and failed.
    this.#ctx.reporter.enqueue({
      operation: "unknown",
      vm: this.#ctx.vm,
      source: SOURCE,
      details: { refused: reason },
      outcome: "failed",
    });
  }

  async #decide(gated: GatedCommand): Promise<{ allow: boolean; desc: string }> {
    const { vm, log } = this.#ctx;
    try {
      const d = await this.#ctx.decide({
        operation: gated.operation,
        vm,
        source: SOURCE,
        ...(gated.phase ? { phase: gated.phase } : {}),
        details: gated.details,
      });
      log(
        `qmp-gate: ${gated.label} → ${d.allow ? "allowed" : "denied"} (decision ${d.decision_id})`,
      );
      // Warnings ride along in `reasons`; a denial names what denied it.
      const denying = d.reasons.filter((r) => (r as { effect?: string }).effect !== "warn");
      const reasons = (denying.length ? denying : d.reasons).map((r) => r.message).join("; ") ||
        "no reason given";
      return {
        allow: d.allow,
        desc: `vASP denied ${gated.label}: ${reasons} (decision ${d.decision_id})`,
      };
    } catch (error) {
      // Fail closed: no answer is a denial.
      const e = error as Error & { code?: string; details?: { decision_id?: unknown } };
      const id = e.details?.decision_id;
      log(`qmp-gate: ${gated.label} → denied, no decision: ${e.message}`);
      return {
        allow: false,
        desc: `vASP denied ${gated.label}: no decision (${e.code ?? "error"}: ${e.message})${
          typeof id === "string" ? ` (decision ${id})` : ""
        }`,
      };
    }
  }

  async #forward(bytes: Uint8Array, fds: number[], gated: GatedCommand | undefined): Promise<void> {
    this.#slots.push({ upstream: gated });
    await sendAll(this.#upstream, bytes, fds);
  }

  /** Answers the client now, or after the replies QEMU still owes for earlier commands. */
  #reply(bytes: Uint8Array): void {
    if (this.#slots.length === 0) this.#emit(bytes);
    else this.#slots.push({ local: bytes });
  }

  #emit(bytes: Uint8Array, fds: readonly number[] = []): void {
    this.#sending++;
    this.#toClient = this.#toClient.then(() =>
      this.#closed ? closeAll(fds) : sendAll(this.#client, bytes, fds)
    )
      .catch((error) => {
        this.#ctx.log(`qmp-gate: client connection: ${errorMessage(error)}`);
        this.close();
      })
      .finally(() => {
        this.#sending--;
        this.#checkIdle();
      });
  }

  async #fromUpstream(): Promise<void> {
    let pending = new Uint8Array(0);
    let held: number[] = [];
    try {
      for (;;) {
        const { bytes, fds } = await this.#upstream.recv();
        if (bytes.length === 0) return closeAll(fds);
        held.push(...fds);
        const data = pending.length ? concat(pending, bytes) : bytes;
        const lines: Uint8Array[] = [];
        let start = 0;
        for (let nl = data.indexOf(0x0a); nl >= 0; nl = data.indexOf(0x0a, start)) {
          lines.push(data.slice(start, nl + 1));
          start = nl + 1;
        }
        pending = data.slice(start);
        // As from the client: descriptors go with the line holding the last byte they came with.
        for (const [i, line] of lines.entries()) {
          const owner = pending.length === 0 && i === lines.length - 1;
          this.#line(line, owner ? held : []);
          if (owner) held = [];
        }
        this.#upstreamBytes += bytes.length;
        this.#upstreamHolding = pending.length > 0;
        this.#checkIdle();
      }
    } finally {
      closeAll(held);
    }
  }

  /** One line from QEMU: the greeting, an event, or the reply to the oldest command. */
  #line(bytes: Uint8Array, fds: readonly number[]): void {
    // Replies can be large (query-qmp-schema); only parse what must be looked into.
    const isReturn = startsWith(bytes, RETURN_PREFIX);
    const msg = isReturn ? undefined : safeParse(bytes);
    if (msg && typeof msg.event === "string") {
      this.#emit(bytes, fds);
      return this.#observeEvent(msg);
    }
    if (msg && "QMP" in msg) {
      this.#greeted = true;
      return this.#emit(bytes, fds);
    }
    // QEMU may send the reply to a previous session's last command to the next client
    // before its greeting; it is no answer to anything this client asked.
    if (!this.#greeted) {
      closeAll(fds);
      return this.#ctx.log(`qmp-gate: dropped a reply from a previous session`);
    }
    const slot = this.#slots.shift();
    this.#emit(bytes, fds);
    if (slot && "upstream" in slot && slot.upstream?.reportReply) {
      this.#reportReply(slot.upstream, msg ?? safeParse(bytes));
    }
    while (this.#slots.length && "local" in this.#slots[0]!) {
      this.#emit((this.#slots.shift() as { local: Uint8Array }).local);
    }
    this.#checkDrained();
  }

  #checkDrained(): void {
    if (this.#onDrained && !this.#slots.some((slot) => "upstream" in slot)) this.#onDrained();
  }

  #observeEvent(msg: Record<string, unknown>): void {
    const event = msg.event as string;
    let mapped = classifyEvent(event, msg.data, this.#ctx.migration);
    if (event === "MIGRATION" && this.#ctx.saving === "pending" && !this.#ctx.migration) {
      // The end of a save to a file or pipe: QEMU's state is on disk.
      const status = (msg.data as { status?: unknown } | undefined)?.status;
      if (status === "completed" || status === "failed" || status === "cancelled") {
        this.#ctx.saving = status === "completed" ? "done" : undefined;
        mapped = { operation: "save", outcome: status === "completed" ? "completed" : "failed" };
      }
    }
    if (!mapped) return;
    if (event === "MIGRATION" && this.#ctx.migration === "in" && !this.#ctx.launched) {
      // The state of a restore or incoming migration has arrived; `started` moves the VM.
      mapped = { ...mapped, phase: "launch" };
    }
    if (event === "MIGRATION") this.#ctx.migration = undefined;
    const launch = event === "RESUME" && !this.#ctx.launched;
    // A STOP says the vCPUs ran too (a QEMU started without -S emits its first RESUME before
    // any client listens).
    if (event === "RESUME" || event === "STOP") this.#ctx.launched = true;
    if (launch) mapped = { ...mapped, phase: "launch" };
    else if (event === "RESUME" && this.#ctx.saving === "done") {
      mapped = { ...mapped, phase: "after-save" };
      this.#ctx.saving = undefined;
    }
    const ts = msg.timestamp as { seconds?: number; microseconds?: number } | undefined;
    this.#ctx.reporter.enqueue({
      operation: mapped.operation,
      vm: this.#ctx.vm,
      source: SOURCE,
      ...(mapped.phase ? { phase: mapped.phase } : {}),
      details: { event, data: msg.data ?? {}, timestamp: msg.timestamp },
      outcome: mapped.outcome,
    }, `${event}@${ts?.seconds}.${ts?.microseconds}`);
  }

  #reportReply(gated: GatedCommand, reply: Record<string, unknown> | undefined): void {
    const ret = reply?.return;
    // HMP reports its failures as text in a successful QMP reply.
    const failed = !reply || "error" in reply || (typeof ret === "string" && /^Error/.test(ret));
    this.#ctx.reporter.enqueue({
      operation: gated.operation,
      vm: this.#ctx.vm,
      source: SOURCE,
      ...(gated.phase ? { phase: gated.phase } : {}),
      details: { ...gated.details, reply: reply ?? null },
      outcome: failed ? "failed" : "completed",
    });
  }
}
