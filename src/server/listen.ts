/**
 * The decision server's listeners, each with its own limits (`_http1.ts`):
 *
 * - the operator socket (`vasp.sock`, mode 0600): whoever can open it is `operator`, so only
 *   the server's own user (root in a deployment) can;
 * - the hook socket (`hook.sock`, mode 0660): whoever can open it is `hook` (decide, report
 *   events, readiness) and nothing more; its group is the one QEMU's user and the libvirt hook
 *   are in;
 * - loopback TCP: a bearer token decides the role.
 *
 * A flood on one listener fills that listener's connection cap, never the process's file
 * descriptors: the caps together take about 40% of `RLIMIT_NOFILE` at most, so the sockets
 * keep answering hooks while TCP is flooded.
 *
 * @module
 */
import { VaspError } from "../engine/error.ts";
import type { Logger } from "../engine/mod.ts";
import type { App } from "../http/mod.ts";
import type { Role } from "../http/mod.ts";
import { type HttpLimits, type HttpListener, serveHttp1 } from "./_http1.ts";

export type { HttpLimits } from "./_http1.ts";

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
  /** The operator socket's path, or `null`. */
  readonly socket: string | null;
  /** The hook socket's path, or `null`. */
  readonly hookSocket: string | null;
  /** The TCP address bound (the real port when 0 was asked), or `null`. */
  readonly tcp: TcpAddress | null;
  /** Each listener's limits, as in force. */
  readonly limits: Readonly<Record<ListenerName, HttpLimits>>;
  /** Connections open now and refused at the cap so far, per listener. */
  connections(): Record<ListenerName, { open: number; refused: number }>;
  /**
   * Stops accepting, closes idle connections, lets requests under way finish, and removes the
   * socket files.
   *
   * @returns once drained
   */
  shutdown(): Promise<void>;
}

/** The listeners by name. */
export type ListenerName = "operator" | "hook" | "tcp";

/** Where to listen, and optional limits per listener. */
export interface ListenAt {
  /** The operator socket (mode 0600), or `null`. */
  readonly socket: string | null;
  /** The hook socket (mode 0660), or `null`. */
  readonly hookSocket?: string | null;
  /** Loopback TCP, or `null`. */
  readonly tcp: TcpAddress | null;
  /** Limits that replace the defaults ({@link defaultLimits}), per listener. */
  readonly limits?: Partial<Record<ListenerName, Partial<HttpLimits>>>;
  /** Where accept errors and handler crashes are logged. */
  readonly log?: Logger;
}

/** The body limit of the transport: the largest any route takes (`/v1/decide`, `/v1/events`). */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * The soft limit on open files of this process, from `/proc/self/limits`.
 *
 * @returns the limit, or `null` when unknown or unlimited
 */
export function openFileLimit(): number | null {
  try {
    const text = Deno.readTextFileSync("/proc/self/limits");
    const match = /^Max open files\s+(\d+)/m.exec(text);
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Each listener's default limits. The connection caps are 256 (TCP), 128 (hook socket) and 32
 * (operator socket) at 1024 open files or more, scaled down below that, so that the three
 * together hold about 40% of the process's descriptors at most.
 *
 * @param fileLimit the process's open-file limit (`null`: assume 1024)
 * @returns the limits per listener
 */
export function defaultLimits(fileLimit: number | null): Record<ListenerName, HttpLimits> {
  const scale = Math.min(1, (fileLimit ?? 1024) / 1024);
  const cap = (n: number) => Math.max(2, Math.floor(n * scale));
  const base = {
    idleTimeoutMs: 15_000,
    headerTimeoutMs: 10_000,
    bodyTimeoutMs: 10_000,
    maxHeaderBytes: 16 * 1024,
    maxBodyBytes: MAX_BODY_BYTES,
  };
  return {
    tcp: { ...base, maxConnections: cap(256) },
    hook: { ...base, maxConnections: cap(128) },
    operator: { ...base, maxConnections: cap(32) },
  };
}

function checkLimits(name: string, limits: HttpLimits): void {
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(
        `The ${name} listener's ${key} must be a positive integer, got ${value}`,
      );
    }
  }
}

async function listenUnix(path: string, mode: number): Promise<Deno.Listener> {
  await claimSocket(path);
  const listener = Deno.listen({ transport: "unix", path });
  try {
    // Until the chmod the umask decides (022: nobody else may write, which connecting needs);
    // the socket's directory guards that moment, as it must anyway.
    await Deno.chmod(path, mode);
  } catch (error) {
    listener.close();
    await Deno.remove(path).catch(() => {});
    throw error;
  }
  return listener;
}

function listenTcp({ hostname, port }: TcpAddress): Deno.Listener {
  try {
    return Deno.listen({ hostname, port, transport: "tcp" });
  } catch (error) {
    if (!(error instanceof Deno.errors.AddrInUse)) throw error;
    throw new VaspError(
      "address_in_use",
      `Cannot listen on ${hostname}:${port}: the address is in use (is another vasp serve ` +
        `running?); stop it, or choose another address with --listen HOST:PORT`,
      { cause: error },
    );
  }
}

/**
 * Starts the listeners.
 *
 * @param app the app
 * @param at the operator socket, the hook socket and the TCP address (each may be `null`),
 *   limits, logger
 * @returns the listeners
 * @throws {VaspError} `socket_in_use`, `address_in_use`
 * @throws {RangeError} for a limit that is not a positive integer
 */
export async function listen(app: App, at: ListenAt): Promise<Listeners> {
  const defaults = defaultLimits(openFileLimit());
  const limits = {} as Record<ListenerName, HttpLimits>;
  for (const name of ["operator", "hook", "tcp"] as const) {
    limits[name] = { ...defaults[name], ...at.limits?.[name] };
    checkLimits(name, limits[name]);
  }
  const log = at.log ?? { log() {} };
  const running: Partial<Record<ListenerName, HttpListener>> = {};
  const files: string[] = [];
  const start = (name: ListenerName, listener: Deno.Listener, role: Role | null) => {
    const env = role === null
      ? { transport: "tcp" as const }
      : { transport: "unix" as const, role };
    running[name] = serveHttp1(listener, (req) => app.fetch(req, env), {
      limits: limits[name],
      log,
      name,
    });
  };
  const stop = async () => {
    await Promise.all(Object.values(running).map((l) => l.shutdown()));
    await Promise.all(files.map((f) => Deno.remove(f).catch(() => {})));
  };
  let tcp: TcpAddress | null = null;
  try {
    if (at.socket !== null) {
      const listener = await listenUnix(at.socket, 0o600);
      files.push(at.socket);
      start("operator", listener, "operator");
    }
    if (at.hookSocket != null) {
      const listener = await listenUnix(at.hookSocket, 0o660);
      files.push(at.hookSocket);
      start("hook", listener, "hook");
    }
    if (at.tcp !== null) {
      const listener = listenTcp(at.tcp);
      start("tcp", listener, null);
      tcp = { hostname: at.tcp.hostname, port: (listener.addr as Deno.NetAddr).port };
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    socket: at.socket,
    hookSocket: at.hookSocket ?? null,
    tcp,
    limits,
    connections() {
      const out = {} as Record<ListenerName, { open: number; refused: number }>;
      for (const name of ["operator", "hook", "tcp"] as const) {
        const l = running[name];
        out[name] = { open: l?.open ?? 0, refused: l?.refused ?? 0 };
      }
      return out;
    },
    shutdown: stop,
  };
}
