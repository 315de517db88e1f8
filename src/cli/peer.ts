/**
 * `vasp peer add|list|remove`: the other vASP hosts this one trusts as migration peers
 * (docs/lifecycle.md, "Migration"), through the running server, which audits each change.
 *
 * @module
 */
import type { Peer } from "../wire/mod.ts";
import { type Command, parseOptions, readFlagText, table, usageError } from "./_command.ts";
import { connect, CONNECT_OPTIONS, CONNECT_USAGE, type ConnectValues } from "./_connect.ts";

/** Runs one peer request and prints its answer. */
async function send(
  values: Record<string, unknown>,
  ask: Parameters<ReturnType<typeof connect>["call"]>[0],
  show: (data: never) => string,
): Promise<number> {
  using api = connect(values as ConnectValues);
  const data = await api.call(ask);
  if (values.json) console.log(JSON.stringify(data, null, 2));
  else console.log(show(data as never));
  return 0;
}

const line = (p: Peer) =>
  `${p.name} ${p.endpoint}${p.ek ? " (EK pinned)" : ""}${p.has_token ? "" : " (no token)"}`;

/** `vasp peer add`. */
export const peerAdd: Command = {
  name: "peer add",
  usage: `usage: vasp peer add NAME --ca FILE [--ek FILE] --endpoint URL [--token-from FILE]
                    [connection options]

Enrols another vASP host as a migration peer (audited). A VM migrates to it only when its ASP
chains to this CA (or is this EK) and vouches for its host just then; a VM arrives from it only
with its state sealed by that ASP. Its token (a \`peer\` token it made: vasp token create --role
peer on that host) lets this host fetch the state of a VM migrating here from it.

  --ca FILE         its manufacturer CA certificate, PEM (its DIR/manufacturer-ca.pem)
  --ek FILE         its EK certificate, PEM: only that ASP is this peer
  --endpoint URL    its decision endpoint: http://HOST:PORT, or unix:/PATH of its socket
  --token-from FILE the peer token it accepts from this host

${CONNECT_USAGE}`,
  run(args: string[]): Promise<number> {
    const { values, positionals } = parseOptions(args, {
      ...CONNECT_OPTIONS,
      ca: { type: "string" },
      ek: { type: "string" },
      endpoint: { type: "string" },
      "token-from": { type: "string" },
    }, { allowPositionals: true });
    if (positionals.length !== 1) throw usageError("Name the peer: vasp peer add NAME …");
    if (values.ca === undefined || values.endpoint === undefined) {
      throw usageError("A peer needs --ca FILE and --endpoint URL");
    }
    const request = {
      name: positionals[0]!,
      ca: readFlagText("--ca", values.ca),
      ...(values.ek === undefined ? {} : { ek: readFlagText("--ek", values.ek) }),
      endpoint: values.endpoint,
      ...(values["token-from"] === undefined
        ? {}
        : { token: readFlagText("--token-from", values["token-from"]).trim() }),
    };
    return send(values, (client) => client.enrolPeer(request), (p: Peer) => `enrolled ${line(p)}`);
  },
};

/** `vasp peer list`. */
export const peerList: Command = {
  name: "peer list",
  usage: `usage: vasp peer list [connection options]

Lists the enrolled peers under a header: NAME, ENDPOINT, EK (pinned or not), TOKEN, ENROLLED.

${CONNECT_USAGE}`,
  run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, CONNECT_OPTIONS);
    return send(
      values,
      (client) => client.listPeers(),
      ({ peers }: { peers: Peer[] }) =>
        peers.length === 0 ? 'no peers; enrol one with "vasp peer add"' : table(
          ["NAME", "ENDPOINT", "EK", "TOKEN", "ENROLLED"],
          peers.map((p) => [
            p.name,
            p.endpoint,
            p.ek ? "pinned" : "-",
            p.has_token ? "yes" : "no",
            p.enrolled_at,
          ]),
        ),
    );
  },
};

/** `vasp peer remove`. */
export const peerRemove: Command = {
  name: "peer remove",
  usage: `usage: vasp peer remove NAME [connection options]

Trusts the peer no more (audited): no VM migrates to it or arrives from it.

${CONNECT_USAGE}`,
  run(args: string[]): Promise<number> {
    const { values, positionals } = parseOptions(args, CONNECT_OPTIONS, {
      allowPositionals: true,
    });
    if (positionals.length !== 1) throw usageError("Name one peer (see vasp peer list)");
    return send(
      values,
      (client) => client.removePeer(positionals[0]!),
      (p: Peer) => `removed ${p.name}`,
    );
  },
};
