/**
 * A small client of the decision API for the `vasp` command: over the server's Unix socket
 * (no token) or over TCP with a bearer token. Error answers become a {@link VaspError} with
 * the server's code and message.
 *
 * @module
 */
import { errorMessage, isErrorCode, VaspError } from "../engine/error.ts";

/** How to reach the server. */
export interface ApiClientOptions {
  /** Bearer token (TCP only). */
  readonly token?: string;
  /** Time allowed for one request, in milliseconds (default 10 000). */
  readonly timeoutMs?: number;
}

/**
 * A client of the decision API.
 *
 * @example
 * ```ts ignore
 * using api = new ApiClient(".vasp/vasp.sock");
 * const { vms } = await api.request("GET", "/v1/vms");
 * ```
 */
export class ApiClient implements Disposable {
  readonly #base: string;
  readonly #http?: Deno.HttpClient;
  readonly #headers: Record<string, string> = { "content-type": "application/json" };
  readonly #timeoutMs: number;

  /**
   * @param server a Unix socket path, or an `http://` URL
   * @param options token and timeout
   */
  constructor(server: string, options: ApiClientOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    if (options.token) this.#headers.authorization = `Bearer ${options.token}`;
    if (/^https?:\/\//.test(server)) {
      this.#base = server.replace(/\/+$/, "");
    } else {
      this.#base = "http://localhost";
      this.#http = Deno.createHttpClient({ proxy: { transport: "unix", path: server } });
    }
  }

  /**
   * Sends one request.
   *
   * @param method HTTP method
   * @param path path and query
   * @param body a JSON body, if any
   * @returns the decoded answer
   * @throws {VaspError} `server_unreachable`; the server's code for an error answer
   */
  // deno-lint-ignore no-explicit-any -- callers read the route's documented shape
  async request(method: string, path: string, body?: unknown): Promise<any> {
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${this.#base}${path}`, {
        method,
        headers: this.#headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        client: this.#http,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      text = await response.text();
    } catch (cause) {
      throw new VaspError(
        "server_unreachable",
        `Cannot reach the vASP server at ${this.#base}: ${errorMessage(cause)}`,
        { cause },
      );
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (cause) {
      throw new VaspError(
        "server_unreachable",
        `The answer to ${method} ${path} is not JSON (status ${response.status})`,
        { cause },
      );
    }
    if (!response.ok) {
      const error = data as { code?: string; message?: string };
      throw new VaspError(
        isErrorCode(error.code) ? error.code : "internal_error",
        String(error.message ?? `${method} ${path} failed with status ${response.status}`),
        { details: { status: response.status } },
      );
    }
    return data;
  }

  /** Releases pooled connections. Idempotent. */
  close(): void {
    try {
      this.#http?.close();
    } catch { /* already closed */ }
  }

  /** Same as {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
