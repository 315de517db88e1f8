/**
 * The decision server's listeners: a Unix socket for local hooks (no token; the socket's mode
 * and directory guard it) and loopback TCP (bearer tokens).
 *
 * @module
 */
import { VaspError } from "../engine/error.ts";
import type { App } from "../http/mod.ts";

/** A TCP address to listen on. */
export interface TcpAddress {
  /** Host name or IP literal (no brackets). */
  readonly hostname: string;
  /** Port; 0 picks a free one. */
  readonly port: number;
}

/**
 * Parses `HOST:PORT` (`[::1]:8787` for IPv6).
 *
 * @param text the address
 * @returns host and port
 * @throws {VaspError} `usage_invalid` for anything else
 */
export function parseListen(text: string): TcpAddress {
  const match = /^(?:\[([0-9a-fA-F:]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw new VaspError("usage_invalid", `Cannot listen on "${text}": expected HOST:PORT`);
  }
  return { hostname: match[1] ?? match[2], port };
}

/**
 * Whether an address stays on this host.
 *
 * @param hostname the host part of a listen address
 * @returns true for 127.0.0.0/8, ::1 and `localhost`
 */
export function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/**
 * Refuses a listen address off this host unless the operator said so. The server speaks plain
 * HTTP: bearer tokens and decisions would cross the network in clear, and anyone on it could
 * replay a hook's token. Put a TLS proxy in front, or pass `--allow-remote` knowingly.
 *
 * @param address the address
 * @param allowRemote the explicit override
 * @throws {VaspError} `usage_invalid` for a non-loopback address without the override
 */
export function checkListen(address: TcpAddress, allowRemote: boolean): void {
  if (allowRemote || isLoopback(address.hostname)) return;
  throw new VaspError(
    "usage_invalid",
    `Refusing to listen on ${address.hostname}: not a loopback address. The API is plain HTTP, ` +
      "so tokens and decisions would cross the network in clear; put a TLS proxy in front, " +
      "or pass --allow-remote",
  );
}

/**
 * Makes the socket path free: removes a stale socket file nothing listens on, and refuses a
 * live one or a file that is not a socket.
 *
 * @param path the socket path
 * @throws {VaspError} `socket_in_use`
 */
export async function claimSocket(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (!info.isSocket) {
    throw new VaspError(
      "socket_in_use",
      `Cannot listen on "${path}": it exists and is not a socket`,
    );
  }
  try {
    const conn = await Deno.connect({ transport: "unix", path });
    conn.close();
  } catch (error) {
    if (!(error instanceof Deno.errors.ConnectionRefused)) throw error;
    await Deno.remove(path); // stale: left by a server that did not shut down
    return;
  }
  throw new VaspError("socket_in_use", `Cannot listen on "${path}": another server listens on it`);
}

/** The running listeners. */
export interface Listeners {
  /** The Unix socket path, or `null`. */
  readonly socket: string | null;
  /** The TCP address bound (the real port when 0 was asked), or `null`. */
  readonly tcp: TcpAddress | null;
  /**
   * Stops accepting, lets requests under way finish, and removes the socket file.
   *
   * @returns once drained
   */
  shutdown(): Promise<void>;
}

/**
 * Starts the listeners.
 *
 * @param app the app
 * @param options `socket` path and `tcp` address (either may be `null`)
 * @returns the listeners
 * @throws {VaspError} `socket_in_use`, `address_in_use`
 */
export async function listen(
  app: App,
  options: { socket: string | null; tcp: TcpAddress | null },
): Promise<Listeners> {
  const servers: Deno.HttpServer[] = [];
  const quiet = () => {};
  let socket: string | null = null;
  let tcp: TcpAddress | null = null;
  try {
    if (options.socket !== null) {
      await claimSocket(options.socket);
      const env = { transport: "unix" } as const;
      servers.push(
        Deno.serve({ path: options.socket, onListen: quiet }, (req) => app.fetch(req, env)),
      );
      socket = options.socket;
      // Hooks run as root or in the libvirt group; nobody else may connect.
      await Deno.chmod(socket, 0o660);
    }
    if (options.tcp !== null) {
      const env = { transport: "tcp" } as const;
      const { hostname, port } = options.tcp;
      let server: Deno.HttpServer;
      try {
        server = Deno.serve({ hostname, port, onListen: quiet }, (req) => app.fetch(req, env));
      } catch (error) {
        if (!(error instanceof Deno.errors.AddrInUse)) throw error;
        throw new VaspError(
          "address_in_use",
          `Cannot listen on ${hostname}:${port}: the address is in use (is another vasp serve ` +
            `running?); stop it, or choose another address with --listen HOST:PORT`,
          { cause: error },
        );
      }
      servers.push(server);
      tcp = { hostname: options.tcp.hostname, port: (server.addr as Deno.NetAddr).port };
    }
  } catch (error) {
    await Promise.all(servers.map((s) => s.shutdown()));
    if (socket !== null) await Deno.remove(socket).catch(() => {});
    throw error;
  }
  return {
    socket,
    tcp,
    async shutdown() {
      await Promise.all(servers.map((s) => s.shutdown()));
      if (socket !== null) await Deno.remove(socket).catch(() => {});
    },
  };
}
