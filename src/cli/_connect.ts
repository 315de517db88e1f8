/**
 * How the client commands (`vasp vm …`, `vasp status`) reach the running server: its Unix
 * socket in the state directory by default, or TCP with a token; and an unreachable server
 * turned into an error that says how to start one.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { VaspError } from "../engine/error.ts";
import { VaspClient } from "../wire/client.ts";
import { resolveStateDir } from "../store/state_dir.ts";
import { readFlagText, usageError } from "./_command.ts";

/** parseArgs options of every client command. */
export const CONNECT_OPTIONS = {
  "state-dir": { type: "string" },
  socket: { type: "string" },
  server: { type: "string" },
  "token-file": { type: "string" },
  json: { type: "boolean" },
} as const;

/** Usage lines for {@linkcode CONNECT_OPTIONS}. */
export const CONNECT_USAGE =
  `  --state-dir DIR   reach the server on DIR/vasp.sock (default: $VASP_STATE_DIR, else ./.vasp)
  --socket PATH     reach it on this Unix socket instead
  --server URL      reach it over TCP (http://127.0.0.1:8787); the token comes from
  --token-file F    this file, or from $VASP_TOKEN
  --json            print the answer as JSON (snake_case keys)`;

/** Parsed values of {@linkcode CONNECT_OPTIONS}. */
export type ConnectValues = {
  "state-dir"?: string;
  socket?: string;
  server?: string;
  "token-file"?: string;
};

/** A client and where it points, for messages. */
export interface Connection extends Disposable {
  /** `unix:/path` or the URL. */
  readonly where: string;
  /**
   * Asks the server; an unreachable one becomes an error that says how to start it, an
   * unknown VM one that says how to list them.
   *
   * @param ask what to ask of the client
   * @returns the answer
   * @throws {VaspError} `server_unreachable` naming the server and the next step; the server's
   *   code for an error answer
   */
  call<T>(ask: (api: VaspClient) => Promise<T>): Promise<T>;
}

/**
 * Connects to the server the flags name.
 *
 * @param values parsed {@linkcode CONNECT_OPTIONS}
 * @returns the connection; `using` closes it
 * @throws {VaspError} `usage_invalid` for `--server` without a token; `io_failed` for an
 *   unreadable `--token-file`
 */
export function connect(values: ConnectValues): Connection {
  let api: VaspClient;
  let where: string;
  if (values.server === undefined) {
    const socket = resolve(
      values.socket ?? join(resolveStateDir(values["state-dir"]), "vasp.sock"),
    );
    api = new VaspClient(socket);
    where = `unix:${socket}`;
  } else {
    const token = values["token-file"] === undefined
      ? Deno.env.get("VASP_TOKEN")
      : readFlagText("--token-file", values["token-file"]).trim();
    if (!token) throw usageError("--server needs a token: --token-file FILE or $VASP_TOKEN");
    api = new VaspClient(values.server, { token });
    where = values.server;
  }
  return {
    where,
    async call(ask) {
      try {
        return await ask(api);
      } catch (error) {
        if (error instanceof VaspError && error.code === "decision_unavailable") {
          const start = values.server === undefined
            ? `start it with "deno task serve"${
              values["state-dir"] ? ` (--state-dir ${values["state-dir"]})` : ""
            } or point --state-dir / --socket at its state directory`
            : "check the URL, and that the server listens there (vasp serve --listen HOST:PORT)";
          throw new VaspError(
            "server_unreachable",
            `Cannot reach the vasp server at ${where}: is \`vasp serve\` running? ${start}`,
            { cause: error },
          );
        }
        if (error instanceof VaspError && error.code === "vm_not_found") {
          throw new VaspError(
            "vm_not_found",
            `${error.message} on the server at ${where}: "vasp vm list" shows the VMs it knows`,
            { cause: error, details: error.details },
          );
        }
        throw error;
      }
    },
    [Symbol.dispose]: () => api.close(),
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The UUID of the VM a command line names, by UUID or by name.
 *
 * @param connection the server
 * @param positionals the command's positionals: exactly one, a UUID or a VM name
 * @returns the VM's UUID
 * @throws {VaspError} `usage_invalid` unless one VM is named; `vm_not_found` for an unknown
 *   name; `usage_invalid` for a name that several VMs carry
 */
export async function resolveVm(connection: Connection, positionals: string[]): Promise<string> {
  if (positionals.length !== 1) throw usageError("Name one VM: its name or UUID");
  const named = positionals[0];
  if (UUID.test(named)) return named.toLowerCase();
  const { vms } = await connection.call((api) => api.listVms());
  const found = vms.filter((vm) => vm.name === named);
  if (found.length === 0) {
    throw new VaspError(
      "vm_not_found",
      `No VM named "${named}" on the server at ${connection.where}: "vasp vm list" shows the ` +
        `VMs it knows; register one with "vasp vm register"`,
      { details: { name: named } },
    );
  }
  if (found.length > 1) {
    throw usageError(
      `${found.length} VMs are named "${named}" (${found.map((vm) => vm.uuid).join(", ")}): ` +
        `name one by its UUID`,
    );
  }
  return found[0].uuid;
}
