/**
 * HTTP/1.1 on a listener the server accepts from itself, with the limits `Deno.serve` does not
 * have: a cap on open connections, an idle timeout, a header timeout, a body timeout and size
 * limit, a write timeout, and accept errors that are handled instead of ending the process.
 *
 * `Deno.serve` (Deno 2.9) offers none of these knobs: a connection that sends part of its
 * headers stays open as long as the client wants, and an accept error (`EMFILE` once the
 * process is out of descriptors) is an uncaught rejection that ends the process. `node:http`
 * keeps `headersTimeout` as a property but does not enforce it. So each listener here is a
 * `Deno.Listener` with its own accept loop, and each connection a small, strict HTTP/1.1
 * reader: one request at a time, bodies buffered up to the limit, anything ambiguous refused.
 *
 * @module
 */
import type { Logger } from "../engine/mod.ts";

/** The limits of one listener. */
export interface HttpLimits {
  /** Connections open at once; more are accepted and closed at once. */
  readonly maxConnections: number;
  /** Time a connection may stay silent before a request's first byte (also between requests). */
  readonly idleTimeoutMs: number;
  /** Time from a request's first byte to its complete head (request line and headers). */
  readonly headerTimeoutMs: number;
  /** Time from the end of a request's head to the end of its body; also the answer's write. */
  readonly bodyTimeoutMs: number;
  /** Largest request head (request line and headers). */
  readonly maxHeaderBytes: number;
  /**
   * Largest body read. A larger `Content-Length` reaches the handler without its body (the
   * app's own limit answers it 413 and records it); a larger chunked body is answered 413 here.
   */
  readonly maxBodyBytes: number;
}

/** What a running listener offers. */
export interface HttpListener {
  /** Connections open now. */
  readonly open: number;
  /** Connections closed at once because {@link HttpLimits.maxConnections} were open. */
  readonly refused: number;
  /** Stops accepting, closes idle connections, waits for requests under way. */
  shutdown(): Promise<void>;
}

/** How often deadlines are checked: a timeout fires up to this much late. */
const SWEEP_MS = 250;
const CRLF2 = new Uint8Array([13, 10, 13, 10]);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Origin form (`/path?query`), or absolute form (`http://host/path`), which clients that reach a
// Unix socket through a proxy setting (Deno's fetch) send; the authority is ignored.
const REQUEST_LINE =
  /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (?:https?:\/\/[^\s/?#]*)?(\/[^\s#]*) HTTP\/1\.([01])$/;
const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");
const EMPTY = new Uint8Array(0);
const REASONS: Record<number, string> = {
  200: "OK",
  201: "Created",
  204: "No Content",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  409: "Conflict",
  413: "Content Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
};
const latin1 = new TextDecoder("latin1");
const encoder = new TextEncoder();

/** A request the transport refuses itself; the connection is closed after the answer. */
class Refusal extends Error {
  constructor(readonly status: 400 | 413, readonly code: string, message: string) {
    super(message);
  }
}

/** Buffered reading from one connection; every read is bounded by the connection's deadline. */
class Reader {
  #buf = new Uint8Array(16 * 1024);
  #start = 0;
  #end = 0;

  constructor(readonly conn: Deno.Conn) {}

  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Reads more; `false` at end of stream. */
  async fill(): Promise<boolean> {
    if (this.#end === this.#buf.length) {
      if (this.#start > 0) {
        this.#buf.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      } else {
        const bigger = new Uint8Array(this.#buf.length * 2);
        bigger.set(this.#buf);
        this.#buf = bigger;
      }
    }
    const n = await this.conn.read(this.#buf.subarray(this.#end));
    if (n === null) return false;
    this.#end += n;
    return true;
  }

  /** The index (from the buffer's start) just past `needle`, or -1. */
  find(needle: Uint8Array, from: number): number {
    const hay = this.#buf;
    outer: for (let i = this.#start + from; i + needle.length <= this.#end; i++) {
      for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
      return i - this.#start + needle.length;
    }
    return -1;
  }

  /** Takes `n` buffered bytes (a copy). */
  take(n: number): Uint8Array<ArrayBuffer> {
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.#start += n;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return out;
  }

  /** Reads exactly `n` bytes; `null` if the stream ends first. */
  async exactly(n: number): Promise<Uint8Array<ArrayBuffer> | null> {
    if (this.buffered >= n) return this.take(n);
    const out = new Uint8Array(n);
    let got = this.buffered;
    out.set(this.take(got));
    while (got < n) {
      const r = await this.conn.read(out.subarray(got));
      if (r === null) return null;
      got += r;
    }
    return out;
  }

  /** Reads one CRLF-terminated line of at most `max` bytes, without its CRLF. */
  async line(max: number): Promise<string | null> {
    const crlf = new Uint8Array([13, 10]);
    let at: number;
    while ((at = this.find(crlf, 0)) < 0) {
      if (this.buffered > max) throw new Refusal(400, "request_invalid", "A line is too long");
      if (!await this.fill()) return null;
    }
    return latin1.decode(this.take(at).subarray(0, at - 2));
  }
}

/** A parsed request head. */
interface Head {
  readonly method: string;
  readonly target: string;
  readonly minor: number;
  readonly headers: Headers;
  readonly length: number | null;
  readonly chunked: boolean;
}

function parseHead(text: string): Head {
  const lines = text.split("\r\n");
  const match = REQUEST_LINE.exec(lines[0]);
  if (!match) throw new Refusal(400, "request_invalid", "The request line is not HTTP/1.x");
  const headers = new Headers();
  let length: string | null = null;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    // No obs-fold, no space before the colon, no bare CR or LF, no NUL: refuse, never guess.
    if (!TOKEN.test(name) || /[\0\r\n]/.test(line)) {
      throw new Refusal(400, "request_invalid", `Malformed header line ${i}`);
    }
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (name.toLowerCase() === "content-length") {
      if (!/^\d{1,15}$/.test(value) || (length !== null && length !== value)) {
        throw new Refusal(400, "request_invalid", "Invalid or conflicting Content-Length");
      }
      length = value;
    }
    try {
      headers.append(name, value);
    } catch {
      throw new Refusal(400, "request_invalid", `Malformed header line ${i}`);
    }
  }
  const te = headers.get("transfer-encoding");
  if (te !== null) {
    if (length !== null) {
      throw new Refusal(400, "request_invalid", "Both Content-Length and Transfer-Encoding");
    }
    if (te.trim().toLowerCase() !== "chunked") {
      throw new Refusal(400, "request_invalid", `Transfer-Encoding "${te}" is not supported`);
    }
  }
  return {
    method: match[1],
    target: match[2],
    minor: Number(match[3]),
    headers,
    length: length === null ? null : Number(length),
    chunked: te !== null,
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let n = 0; n < bytes.length;) n += await conn.write(bytes.subarray(n));
}

function serialize(res: Response, body: Uint8Array, omitBody: boolean, close: boolean) {
  let head = `HTTP/1.1 ${res.status} ${REASONS[res.status] ?? (res.statusText || "Status")}\r\n`;
  for (const [name, value] of res.headers) {
    if (name === "content-length" || name === "transfer-encoding" || name === "connection") {
      continue;
    }
    head += `${name}: ${value}\r\n`;
  }
  const bodyless = res.status === 204 || res.status === 304;
  if (!bodyless) head += `content-length: ${body.length}\r\n`;
  if (close) head += "connection: close\r\n";
  head += "\r\n";
  const headBytes = encoder.encode(head);
  if (bodyless || omitBody || body.length === 0) return headBytes;
  const out = new Uint8Array(headBytes.length + body.length);
  out.set(headBytes);
  out.set(body, headBytes.length);
  return out;
}

function refusalResponse(refusal: Refusal): Response {
  return Response.json({ code: refusal.code, message: refusal.message }, {
    status: refusal.status,
  });
}

/**
 * Serves HTTP/1.1 on `listener` until {@link HttpListener.shutdown}.
 *
 * @param listener an open listener (TCP or Unix); the server owns it from now on
 * @param handler answers one request
 * @param options `limits` and `log`
 * @returns the running listener
 */
export function serveHttp1(
  listener: Deno.Listener,
  handler: (request: Request) => Response | Promise<Response>,
  options: { limits: HttpLimits; log: Logger; name: string },
): HttpListener {
  const { limits, log, name } = options;
  const idle = new Set<Deno.Conn>();
  // Each connection's deadline (ms since the epoch; Infinity while the handler runs), checked
  // by one sweep per listener: a timer per request phase cost more than the check.
  const deadlines = new Map<Deno.Conn, number>();
  const sweeper = setInterval(() => {
    const now = Date.now();
    for (const [conn, deadline] of deadlines) if (deadline <= now) closeQuietly(conn);
  }, SWEEP_MS);
  const active = new Set<Promise<void>>();
  let open = 0;
  let refused = 0;
  let stopping = false;

  function closeQuietly(conn: Deno.Conn): void {
    try {
      conn.close();
    } catch { /* already closed by the sweep or the peer */ }
  }

  async function serveConnection(conn: Deno.Conn): Promise<void> {
    const reader = new Reader(conn);
    // Closing with a request's body unread loses the answer (the peer's kernel resets on the
    // unread bytes); after such an answer, stop writing and read a bounded amount first.
    let linger = false;
    const arm = (ms: number) => {
      deadlines.set(conn, Date.now() + ms);
    };
    try {
      for (;;) {
        // Idle until the first byte, then the whole head within the header timeout.
        idle.add(conn);
        arm(limits.idleTimeoutMs);
        if (stopping) return;
        if (reader.buffered === 0 && !await reader.fill()) return;
        idle.delete(conn);
        arm(limits.headerTimeoutMs);
        let end: number;
        let scanned = 0;
        // Each byte is scanned once: a head sent a byte at a time costs no more than one sent whole.
        while ((end = reader.find(CRLF2, scanned)) < 0) {
          if (reader.buffered > limits.maxHeaderBytes) {
            throw new Refusal(400, "request_invalid", "The request head is too large");
          }
          scanned = Math.max(reader.buffered - 3, 0);
          if (!await reader.fill()) return;
        }
        if (end > limits.maxHeaderBytes + 4) {
          throw new Refusal(400, "request_invalid", "The request head is too large");
        }
        // Blank lines before a request line are allowed (RFC 9112 §2.2).
        const head = parseHead(
          latin1.decode(reader.take(end).subarray(0, end - 4)).replace(/^(\r\n)+/, ""),
        );
        arm(limits.bodyTimeoutMs);
        let body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> | null = null;
        let drained = true;
        const proceed = head.headers.get("expect")?.toLowerCase() === "100-continue";
        if (head.chunked) {
          if (proceed) await writeAll(conn, CONTINUE);
          body = await readChunked(reader, limits);
          if (body === null) return;
        } else if (head.length !== null && head.length > 0) {
          if (head.length > limits.maxBodyBytes) {
            // The app's body limit refuses it by its Content-Length, unread, and records that.
            drained = false;
            body = unreadBody(head.length);
          } else {
            if (proceed) await writeAll(conn, CONTINUE);
            body = await reader.exactly(head.length);
            if (body === null) return;
          }
        }
        deadlines.set(conn, Infinity);
        const keepAlive = drained && head.minor === 1 &&
          !/(^|,)\s*close\s*(,|$)/i.test(head.headers.get("connection") ?? "");
        const request = new Request(`http://localhost${head.target}`, {
          method: head.method,
          headers: head.headers,
          ...(body && head.method !== "GET" && head.method !== "HEAD" ? { body } : {}),
        });
        let response: Response;
        try {
          response = await handler(request);
        } catch (error) {
          log.log("error", "internal error", {
            listener: name,
            error: error instanceof Error ? error.stack ?? error.message : String(error),
          });
          response = Response.json({ code: "internal_error", message: "Internal error" }, {
            status: 500,
          });
        }
        arm(limits.bodyTimeoutMs);
        const payload = response.body === null
          ? EMPTY
          : new Uint8Array(await response.arrayBuffer());
        const close = !keepAlive || stopping;
        linger = !drained;
        await writeAll(conn, serialize(response, payload, head.method === "HEAD", close));
        if (close) return;
      }
    } catch (error) {
      if (error instanceof Refusal) {
        arm(limits.bodyTimeoutMs);
        const res = refusalResponse(error);
        const payload = new Uint8Array(await res.arrayBuffer());
        await writeAll(conn, serialize(res, payload, false, true)).catch(() => {});
        linger = true;
      }
      // Anything else is the peer going away or the sweep closing the connection.
    } finally {
      if (linger) {
        arm(limits.bodyTimeoutMs);
        await discard(conn, 4 * limits.maxBodyBytes).catch(() => {});
      }
      deadlines.delete(conn);
      idle.delete(conn);
      closeQuietly(conn);
    }
  }

  const accepting = (async () => {
    let backoff = 0;
    let failures = 0;
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
        backoff = 0;
      } catch (error) {
        if (stopping || error instanceof Deno.errors.BadResource) return;
        // EMFILE and the like: the pending connection stays queued; try again shortly.
        failures++;
        if (backoff === 0 || failures % 100 === 1) {
          log.log("warn", "cannot accept a connection", {
            listener: name,
            failures,
            error: error instanceof Error ? error.message : String(error),
          });
        }
        backoff = Math.min(Math.max(backoff * 2, 10), 1000);
        await new Promise((resolve) => setTimeout(resolve, backoff));
        continue;
      }
      if (open >= limits.maxConnections || stopping) {
        refused++;
        closeQuietly(conn);
        continue;
      }
      open++;
      const done: Promise<void> = serveConnection(conn).finally(() => {
        open--;
        active.delete(done);
      });
      active.add(done);
    }
  })();

  return {
    get open() {
      return open;
    },
    get refused() {
      return refused;
    },
    async shutdown() {
      if (!stopping) {
        stopping = true;
        try {
          listener.close();
        } catch { /* closed already */ }
      }
      for (const conn of idle) closeQuietly(conn);
      await accepting;
      await Promise.all(active);
      clearInterval(sweeper);
    },
  };
}

/** A body over the limit, left unread: reading it fails. */
function unreadBody(length: number): ReadableStream<Uint8Array> {
  return new ReadableStream({
    pull(controller) {
      controller.error(new RangeError(`A body of ${length} bytes is over the limit; not read`));
    },
  });
}

/** Ends writing, then reads and drops up to `max` bytes until the peer closes. */
async function discard(conn: Deno.Conn, max: number): Promise<void> {
  await conn.closeWrite();
  const buf = new Uint8Array(64 * 1024);
  for (let total = 0; total < max;) {
    const n = await conn.read(buf);
    if (n === null) return;
    total += n;
  }
}

/** Reads a chunked body within the limit; `null` if the stream ends first. */
async function readChunked(
  reader: Reader,
  limits: HttpLimits,
): Promise<Uint8Array<ArrayBuffer> | null> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const line = await reader.line(1024);
    if (line === null) return null;
    const size = /^([0-9A-Fa-f]{1,8})(?:;.*)?$/.exec(line);
    if (!size) throw new Refusal(400, "request_invalid", "Malformed chunk size");
    const n = parseInt(size[1], 16);
    if (n === 0) break;
    total += n;
    if (total > limits.maxBodyBytes) {
      throw new Refusal(
        413,
        "body_too_large",
        `The request body exceeds ${limits.maxBodyBytes} bytes`,
      );
    }
    const data = await reader.exactly(n + 2);
    if (data === null) return null;
    if (data[n] !== 13 || data[n + 1] !== 10) {
      throw new Refusal(400, "request_invalid", "Malformed chunk");
    }
    parts.push(data.subarray(0, n));
  }
  let trailer = 0;
  for (;;) {
    const line = await reader.line(limits.maxHeaderBytes);
    if (line === null) return null;
    if (line === "") break;
    trailer += line.length;
    if (trailer > limits.maxHeaderBytes) {
      throw new Refusal(400, "request_invalid", "The chunked trailer is too large");
    }
  }
  const body = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    body.set(part, at);
    at += part.length;
  }
  return body;
}
