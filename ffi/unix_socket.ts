/**
 * Unix stream sockets that carry file descriptors (SCM_RIGHTS), which Deno's own sockets
 * cannot: the QMP gate passes libvirt's `getfd`/`add-fd` descriptors through them, and its
 * {@linkcode Lane} relays each connection. Calls that wait (accept, receive, a send into a full
 * buffer) run on a worker thread and return a Promise; a send that fits runs on the calling
 * thread, with no thread hop.
 *
 * @module
 */
import { NativeError } from "./error.ts";
import { nativeSockets } from "./loader.ts";
import { check, cstr, outSlot, slotPointer } from "./_util.ts";

/** What one receive brought. */
export interface Received {
  /** The bytes (a copy); empty at the end of the stream. */
  readonly bytes: Uint8Array;
  /** Descriptors that came with them, now the caller's: pass them on or {@linkcode closeFd}. */
  readonly fds: number[];
}

/** Bytes one receive takes at most. */
const RECV_SIZE = 64 * 1024;
/** `VASP_SOCK_MAX_FDS`. */
const MAX_FDS = 16;
/** `VASP_SOCK_DONTWAIT`: a send that does not wait for room. */
const DONTWAIT = 1;

const ADOPT = Symbol("adopt a vasp_sock");

/** Backstop for sockets collected while open (no call can be pending then). */
const finalizer = new FinalizationRegistry<Deno.PointerObject>((ptr) =>
  nativeSockets().vasp_sock_close(ptr)
);

/**
 * A connected or listening Unix stream socket owned by libvasp.
 *
 * @example
 * ```ts ignore
 * using listener = UnixSocket.listen("/run/gate.sock");
 * const conn = await listener.accept();
 * const { bytes, fds } = await conn!.recv();
 * ```
 */
export class UnixSocket {
  #ptr: Deno.PointerObject | null;
  #pending = 0;
  #closing = false;
  #recvBuf = new Uint8Array(RECV_SIZE);
  #recvLen = outSlot();
  #recvFds = new Int32Array(MAX_FDS);
  #recvNfds = new Uint32Array(1);

  /** @internal */
  constructor(key: typeof ADOPT, ptr: Deno.PointerObject) {
    if (key !== ADOPT) throw new TypeError("UnixSocket is made by listen, adopt or connect");
    this.#ptr = ptr;
    finalizer.register(this, ptr, this);
  }

  /**
   * Listens on a new socket at `path`.
   *
   * @param path where clients connect; nothing may exist there yet
   * @returns the listening socket
   * @throws {NativeError} `io_failed` when it cannot be created
   */
  static listen(path: string): UnixSocket {
    const out = outSlot();
    check(nativeSockets().vasp_sock_listen(cstr(path), out), null, `Cannot listen on "${path}"`);
    return new UnixSocket(ADOPT, slotPointer(out)!);
  }

  /**
   * Takes over an inherited listening socket (libvirt's `fd=N` monitor).
   *
   * @param fd the descriptor; owned by the socket from now on (not on failure)
   * @returns the listening socket
   * @throws {NativeError} `argument_invalid` when `fd` is not a listening Unix socket
   */
  static adopt(fd: number): UnixSocket {
    const out = outSlot();
    check(nativeSockets().vasp_sock_adopt(fd, out), null, `Cannot accept on descriptor ${fd}`);
    return new UnixSocket(ADOPT, slotPointer(out)!);
  }

  /**
   * Connects to a listening socket.
   *
   * @param path the socket
   * @returns the connection
   * @throws {NativeError} `not_found` when nothing listens there (yet), else `io_failed`
   */
  static connect(path: string): UnixSocket {
    const out = outSlot();
    check(nativeSockets().vasp_sock_connect(cstr(path), out), null, `Cannot connect to "${path}"`);
    return new UnixSocket(ADOPT, slotPointer(out)!);
  }

  #live(what: string): Deno.PointerObject {
    if (this.#ptr === null || this.#closing) {
      throw new NativeError("handle_closed", `Cannot ${what}: the socket is closed`);
    }
    return this.#ptr;
  }

  /**
   * Runs a call that waits on a worker thread, then `after` with its result while the
   * handle is still alive (its error message is read there); a close meanwhile frees the
   * handle only after both.
   */
  async #waiting<T, R>(call: Promise<T>, after: (result: T) => R): Promise<R> {
    this.#pending++;
    try {
      return after(await call);
    } finally {
      if (--this.#pending === 0 && this.#closing) this.#free();
    }
  }

  #rxCheck(rc: number, ptr: Deno.PointerObject, what: string): void {
    if (rc === 0) return;
    const p = nativeSockets().vasp_sock_rx_errmsg(ptr);
    const detail = p === null ? "" : new Deno.UnsafePointerView(p).getCString();
    throw new NativeError(NativeError.codeFor(rc), `${what}: ${detail}`, { rc });
  }

  /**
   * Waits for the next client of a listening socket.
   *
   * @returns the connection, or null once the socket is closed
   * @throws {NativeError} when accepting fails
   */
  async accept(): Promise<UnixSocket | null> {
    if (this.#closing) return null;
    const ptr = this.#live("accept");
    const out = outSlot();
    const rc = await this.#waiting(nativeSockets().vasp_sock_accept(ptr, out), (rc) => {
      if (rc !== 13) this.#rxCheck(rc, ptr, "Cannot accept a connection");
      return rc;
    });
    if (rc === 13) return null;
    const conn = new UnixSocket(ADOPT, slotPointer(out)!);
    if (this.#closing) return (conn.close(), null);
    return conn;
  }

  /**
   * Waits for bytes, and the descriptors sent with them. One receive at a time.
   *
   * @returns the bytes and descriptors; no bytes at the end of the stream or once closed
   * @throws {NativeError} when receiving fails (the peer reset the connection)
   */
  async recv(): Promise<Received> {
    if (this.#closing) return { bytes: new Uint8Array(0), fds: [] };
    const ptr = this.#live("receive");
    return await this.#waiting(
      nativeSockets().vasp_sock_recv(
        ptr,
        this.#recvBuf,
        BigInt(RECV_SIZE),
        this.#recvLen,
        this.#recvFds,
        MAX_FDS,
        this.#recvNfds,
      ),
      (rc) => {
        this.#rxCheck(rc, ptr, "Cannot receive");
        return {
          bytes: this.#recvBuf.slice(0, Number(this.#recvLen[0])),
          fds: Array.from(this.#recvFds.subarray(0, this.#recvNfds[0])),
        };
      },
    );
  }

  /**
   * Sends all of `bytes`, the descriptors attached to the first byte. The caller keeps its
   * copies of the descriptors (close them once sent).
   *
   * @param bytes what to send (not empty)
   * @param fds descriptors to pass, at most 16
   * @throws {RangeError} for more than 16 descriptors or no bytes
   * @throws {NativeError} when the peer is gone (`io_failed`) or the socket was closed
   */
  async send(bytes: Uint8Array, fds: readonly number[] = []): Promise<void> {
    if (fds.length > MAX_FDS) throw new RangeError(`Cannot send ${fds.length} descriptors`);
    if (bytes.length === 0) throw new RangeError("Cannot send no bytes");
    const sent = outSlot();
    let fdArray: Int32Array<ArrayBuffer> | null = fds.length ? Int32Array.from(fds) : null;
    for (let at = 0; at < bytes.length;) {
      const ptr = this.#live("send");
      const part = at === 0 ? bytes : bytes.slice(at);
      const nfds = fdArray ? fdArray.length : 0;
      let rc = nativeSockets().vasp_sock_send(
        ptr,
        part,
        BigInt(part.length),
        fdArray,
        nfds,
        DONTWAIT,
        sent,
      );
      if (rc === 0 && sent[0] === 0n) {
        rc = await this.#waiting(
          nativeSockets().vasp_sock_send_wait(
            ptr,
            part,
            BigInt(part.length),
            fdArray,
            nfds,
            0,
            sent,
          ),
          (rc) => (check(rc, ptr, "Cannot send"), rc),
        );
      }
      check(rc, ptr, "Cannot send");
      at += Number(sent[0]);
      fdArray = null;
    }
  }

  /**
   * Puts a {@linkcode Lane} between two connected sockets: it owns them from then on, and
   * `client` and `upstream` are closed here.
   *
   * @param client libvirt's connection
   * @param upstream QEMU's connection
   * @param names the commands the lane may pass itself
   * @returns the lane and the engine's ends, which stand in for `client` and `upstream`
   * @throws {NativeError} when the lane cannot start (then both sockets are unchanged)
   */
  static lane(
    client: UnixSocket,
    upstream: UnixSocket,
    names: Iterable<string>,
  ): { lane: Lane; client: UnixSocket; upstream: UnixSocket } {
    const list = [...names];
    if (list.some((name) => !/^[A-Za-z0-9_.-]+$/.test(name))) {
      throw new RangeError(`A lane's command names are QMP names: ${list.join(", ")}`);
    }
    const out = outSlot(), outClient = outSlot(), outUpstream = outSlot();
    check(
      nativeSockets().vasp_lane_open(
        client.#live("open a lane"),
        upstream.#live("open a lane"),
        cstr(list.join("\n")),
        out,
        outClient,
        outUpstream,
      ),
      null,
      "Cannot open the gate's lane",
    );
    // libvasp freed both handles; the lane's thread owns their descriptors.
    for (const s of [client, upstream]) {
      s.#ptr = null;
      finalizer.unregister(s);
    }
    return {
      lane: new Lane(ADOPT, slotPointer(out)!),
      client: new UnixSocket(ADOPT, slotPointer(outClient)!),
      upstream: new UnixSocket(ADOPT, slotPointer(outUpstream)!),
    };
  }

  /** Wakes a pending accept or receive (they see the end); the socket stays open. */
  shutdown(): void {
    if (this.#ptr && !this.#closing) nativeSockets().vasp_sock_shutdown(this.#ptr);
  }

  /** Shuts the socket down and closes it once no call waits on it. Idempotent. */
  close(): void {
    if (this.#ptr === null || this.#closing) return;
    nativeSockets().vasp_sock_shutdown(this.#ptr);
    this.#closing = true;
    if (this.#pending === 0) this.#free();
  }

  #free(): void {
    const ptr = this.#ptr;
    this.#ptr = null;
    finalizer.unregister(this);
    if (ptr) nativeSockets().vasp_sock_close(ptr);
  }

  /** Same as {@linkcode close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** What a descriptor is, as its /proc link says (libvasp `vasp_fd_kind`). */
export type FdKind = "socket" | "pipe" | "file" | "other";

/** What a `getfd` or `closefd` the lane passed did to QEMU's named descriptors. */
export type LaneNote =
  | { readonly op: "getfd"; readonly name: string; readonly kind: FdKind }
  | { readonly op: "closefd"; readonly name: string };

/**
 * What a descriptor of this process is, as its /proc link says.
 *
 * @param fd the descriptor
 * @returns `socket`, `pipe`, `file` (a path) or `other` (also when it is not open)
 */
export function fdKind(fd: number): FdKind {
  const p = nativeSockets().vasp_fd_kind(fd);
  return new Deno.UnsafePointerView(p!).getCString() as FdKind;
}

const laneFinalizer = new FinalizationRegistry<Deno.PointerObject>((ptr) =>
  nativeSockets().vasp_lane_free(ptr)
);

/**
 * The QMP gate's fast lane (libvasp `vasp_lane`): a thread that relays one gate connection
 * and passes a listed query and its reply itself while the engine holds nothing of the
 * connection, which the engine says with {@linkcode idle}. Made by {@linkcode UnixSocket.lane}.
 */
export class Lane {
  #ptr: Deno.PointerObject | null;
  /** Room for every note the lane keeps (`NOTES_CAP`). */
  readonly #notes = new Uint8Array(64 * 1024);
  readonly #notesLen = outSlot();

  /** @internal */
  constructor(key: typeof ADOPT, ptr: Deno.PointerObject) {
    if (key !== ADOPT) throw new TypeError("A Lane is made by UnixSocket.lane");
    this.#ptr = ptr;
    laneFinalizer.register(this, ptr, this);
  }

  /**
   * Says the engine holds nothing of the connection: it has taken in this many bytes from
   * its two ends and sent everything it will send for them.
   *
   * @param clientBytes bytes taken in from the client end
   * @param upstreamBytes bytes taken in from the upstream end
   */
  idle(clientBytes: number, upstreamBytes: number): void {
    if (this.#ptr) {
      nativeSockets().vasp_lane_idle(this.#ptr, BigInt(clientBytes), BigInt(upstreamBytes));
    }
  }

  /**
   * Takes the notes of the `getfd` and `closefd` the lane passed itself, oldest first.
   *
   * @returns what each did to QEMU's named descriptors
   */
  notes(): LaneNote[] {
    if (!this.#ptr) return [];
    const len = this.#notesLen;
    check(
      nativeSockets().vasp_lane_notes(this.#ptr, this.#notes, BigInt(this.#notes.length), len),
      null,
      "Cannot read the lane's notes",
    );
    if (len[0] === 0n) return [];
    const lines = new TextDecoder().decode(this.#notes.subarray(0, Number(len[0])))
      .split("\n").filter(Boolean);
    return lines.map((line) => {
      if (line.startsWith("closefd ")) return { op: "closefd", name: line.slice(8) };
      const at = line.lastIndexOf(" ");
      return { op: "getfd", name: line.slice(6, at), kind: line.slice(at + 1) as FdKind };
    });
  }

  /** How many commands the lane passed itself. */
  get passed(): number {
    return this.#ptr ? Number(nativeSockets().vasp_lane_passed(this.#ptr)) : 0;
  }

  /** Releases the handle; the lane's thread ends once the engine's ends are closed. */
  close(): void {
    const ptr = this.#ptr;
    this.#ptr = null;
    laneFinalizer.unregister(this);
    if (ptr) nativeSockets().vasp_lane_free(ptr);
  }
}

/**
 * Closes a descriptor {@linkcode UnixSocket.recv} handed over.
 *
 * @param fd the descriptor
 * @throws {NativeError} when it cannot be closed
 */
export function closeFd(fd: number): void {
  check(nativeSockets().vasp_fd_close(fd), null, `Cannot close descriptor ${fd}`);
}
