/**
 * Both sockets of one gate connection read by one loop, so that a message is mostly taken on
 * the main thread as it arrives instead of by a receive waiting on a worker thread.
 *
 * Why: libvirt talks to QEMU in strict turns — a command, its reply, the next command — and
 * starting a VM is about 400 of them (`qom-get` of each CPU feature, queries). A receive
 * parked on a worker thread costs two thread hops per message (the kernel wakes the worker,
 * the worker wakes the event loop). Here what has arrived is taken on the main thread;
 * in a process that runs the gate alone (`vasp gate`), while both sides wait (nothing of the
 * connection is in progress: no decision is being asked), the next message is also waited for
 * on the main thread, up to `spinMs`; the rest is left to a wait on a worker thread, which a
 * {@linkcode Waker} ends when the set of sides to wait for changes. Measured through a real
 * `vasp gate`: 0.29–0.33 ms added to a command against 0.36–0.48 ms with a receive on a worker
 * per side, about 40 ms of a libvirt start (docs/hooks.md, "How the gate reads").
 *
 * @module
 */
import { type Received, UnixSocket, Waker } from "../../ffi/mod.ts";
import type { ByteConn } from "./_gate_connection.ts";

const BOTH = 3;

type Waiter = PromiseWithResolvers<Received>;

/** The reading loop of a pair of sockets. */
class Pump {
  readonly #socks: readonly [UnixSocket, UnixSocket];
  readonly #spinMs: number;
  readonly #waker = new Waker();
  /**
   * Runs the next wait after everything already queued (a reply's send to the client is a few
   * promise steps behind the read that brought it): a message, 20 µs here, where a
   * `setTimeout(0)` takes about 2 ms.
   */
  readonly #turn = new MessageChannel();
  readonly #waiters: (Waiter | undefined)[] = [undefined, undefined];
  /** The sides the wait on a worker thread watches (bits 1, 2); 0 when none runs. */
  #watching = 0;
  #scheduled = false;
  readonly #closed = [false, false];

  constructor(a: UnixSocket, b: UnixSocket, spinMs: number) {
    this.#socks = [a, b];
    this.#spinMs = spinMs;
    this.#turn.port1.onmessage = () => {
      this.#scheduled = false;
      this.#drive();
    };
  }

  recv(side: 0 | 1): Promise<Received> {
    if (this.#waiters[side]) throw new Error("One receive at a time on a gate socket");
    try {
      const now = this.#socks[side].recvNow();
      if (now) return Promise.resolve(now);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#waiters[side] = Promise.withResolvers<Received>();
    this.#schedule();
    return this.#waiters[side].promise;
  }

  /** Closes one side's socket (idempotent); the waker and the port go with the second. */
  close(side: 0 | 1): void {
    if (this.#closed[side]) return;
    this.#closed[side] = true;
    this.#socks[side].close();
    if (!this.#closed.every(Boolean)) return;
    this.#waker.close();
    this.#turn.port1.close();
    this.#turn.port2.close();
  }

  #wanted(): number {
    return (this.#waiters[0] ? 1 : 0) | (this.#waiters[1] ? 2 : 0);
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // Posted from a microtask: a message posted while the port's handler runs (a drive)
    // would be taken at once, ahead of the promise steps queued before it.
    queueMicrotask(() => this.#turn.port2.postMessage(null));
  }

  #drive(): void {
    const wanted = this.#wanted();
    if (!wanted) return;
    const [a, b] = this.#socks;
    let ready: number;
    try {
      ready = UnixSocket.readyNow(
        wanted & 1 ? a : null,
        wanted & 2 ? b : null,
        wanted === BOTH ? this.#spinMs : 0,
      );
    } catch (error) {
      return this.#fail(error);
    }
    if (ready) return this.#deliver(ready);
    // A wait on a worker thread: the one under way when it watches what is wanted, else
    // (once that one has ended, woken) a new one.
    if ((this.#watching & wanted) === wanted) return;
    if (this.#watching) return this.#waker.wake();
    this.#watching = wanted;
    UnixSocket.ready(wanted & 1 ? a : null, wanted & 2 ? b : null, this.#waker).then(
      (ready) => {
        this.#watching = 0;
        this.#deliver(ready);
      },
      (error) => {
        this.#watching = 0;
        this.#fail(error);
      },
    );
  }

  /** Receives on each ready side that waits; waits again for those still waiting. */
  #deliver(ready: number): void {
    for (const side of [0, 1] as const) {
      const waiter = this.#waiters[side];
      if (!waiter || !(ready & (side + 1))) continue;
      try {
        const got = this.#socks[side].recvNow();
        // Taken already, by a look on this thread while the wait ran: wait again.
        if (!got) continue;
        this.#waiters[side] = undefined;
        waiter.resolve(got);
      } catch (error) {
        this.#waiters[side] = undefined;
        waiter.reject(error);
      }
    }
    if (this.#wanted()) this.#schedule();
  }

  #fail(error: unknown): void {
    for (const side of [0, 1] as const) {
      this.#waiters[side]?.reject(error);
      this.#waiters[side] = undefined;
    }
  }
}

/**
 * The two sockets of a gate connection as {@linkcode ByteConn}s read by one {@link Pump}.
 * Each side's `close` closes its socket; the pump's waker goes with the second.
 *
 * @param a the client's connection
 * @param b QEMU's
 * @param spinMs how long the next message of a busy connection is waited for on the main
 *   thread, which nothing else can use meanwhile (QmpGate uses the pump only in a process that
 *   runs the gate alone; 0 waits on a worker thread at once)
 * @returns the connections, in the same order
 */
export function pumped(a: UnixSocket, b: UnixSocket, spinMs: number): [ByteConn, ByteConn] {
  const pump = new Pump(a, b, spinMs);
  const side = (i: 0 | 1, socket: UnixSocket): ByteConn => ({
    recv: () => pump.recv(i),
    send: (bytes, fds) => socket.send(bytes, fds),
    close: () => pump.close(i),
  });
  return [side(0, a), side(1, b)];
}
