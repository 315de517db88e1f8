/**
 * Accepting on a listening socket the gate inherited as a file descriptor: newer libvirt
 * binds the monitor socket itself and hands QEMU `-chardev socket,fd=N`. `Deno.listen` cannot
 * adopt a descriptor, `node:net` can; this wraps its sockets in the gate's `ByteConn`.
 *
 * @module
 */
import net from "node:net";
import type { ByteConn } from "./_gate_connection.ts";

/** A `node:net` socket seen as a `ByteConn` (pull reads, awaited writes). */
export class NodeConn implements ByteConn {
  readonly #socket: net.Socket;
  readonly #chunks: Uint8Array[] = [];
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  /** @param socket an accepted socket */
  constructor(socket: net.Socket) {
    this.#socket = socket;
    const wake = () => (this.#wake?.(), this.#wake = undefined);
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      // Hold the peer back while the gate works through what it has (a pending decision).
      socket.pause();
      wake();
    });
    socket.on("end", () => (this.#ended = true, wake()));
    socket.on("close", () => (this.#ended = true, wake()));
    socket.on("error", (error: Error) => (this.#error = error, wake()));
  }

  /**
   * @param p where to copy the next bytes
   * @returns how many bytes, or null at the end of the stream
   * @throws {Error} the socket's error
   */
  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      this.#socket.resume();
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    const chunk = this.#chunks[0]!;
    const n = Math.min(p.length, chunk.length);
    p.set(chunk.subarray(0, n));
    if (n === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(n);
    return n;
  }

  /**
   * @param p bytes to send
   * @returns `p.length` once the socket has taken them
   * @throws {Error} when the socket is closed
   */
  write(p: Uint8Array): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#socket.write(p, (error) => error ? reject(error) : resolve(p.length));
    });
  }

  /** Destroys the socket. Idempotent. */
  close(): void {
    this.#ended = true;
    this.#socket.destroy();
    this.#wake?.();
  }
}

/**
 * Listens on an inherited, already listening socket descriptor.
 *
 * @param fd the descriptor
 * @param onConnection called with each accepted connection
 * @returns the server, for `close()`, once it listens
 */
export function listenOnFd(
  fd: number,
  onConnection: (conn: ByteConn) => void,
): Promise<net.Server> {
  const server = net.createServer((socket) => onConnection(new NodeConn(socket)));
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ fd }, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}
