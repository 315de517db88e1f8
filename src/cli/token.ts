/**
 * `vasp token create|list|revoke`: bearer tokens for the decision server's TCP listener. Only
 * hashes are kept (DIR/tokens.json, mode 0600); `create` prints the token once. A running
 * server sees the change at its next request.
 *
 * @module
 */
import { VaspError } from "../engine/error.ts";
import { type Role, ROLES, TokenRegistry } from "../http/tokens.ts";
import { resolveStateDir } from "../store/state_dir.ts";
import { type Command, parseOptions, printJson, table, usageError } from "./_command.ts";

const COMMON_USAGE =
  `  --state-dir DIR  the state directory (default: $VASP_STATE_DIR, else ./.vasp)
  --json           print the result as JSON (snake_case keys)`;

const COMMON = { "state-dir": { type: "string" }, json: { type: "boolean" } } as const;

/** `vasp token create`. */
export const tokenCreate: Command = {
  name: "token create",
  usage: `usage: vasp token create --role hook|operator|tenant|metrics|peer [--tenant T]
                         [--state-dir DIR] [--json]

Prints the new token on stdout; only its SHA-256 is kept. Roles: hook (decide, report
events), operator (everything), tenant (read its own VMs, measurements and audit), metrics
(read /metrics, /readyz and /v1/status only: for a Prometheus scraper), peer (another vASP
host fetching the state of a VM that migrates to it: give it to that host's vasp peer add).

  --role ROLE      what the token may do
  --tenant T       the tenant a tenant token speaks for (tenant role only)
${COMMON_USAGE}`,
  run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, {
      ...COMMON,
      role: { type: "string" },
      tenant: { type: "string" },
    });
    const role = values.role as Role | undefined;
    if (role === undefined || !ROLES.includes(role)) {
      throw usageError(`--role must be one of ${ROLES.join(", ")}`);
    }
    if (role === "tenant" && values.tenant === undefined) {
      throw usageError("a tenant token needs --tenant T");
    }
    if (role !== "tenant" && values.tenant !== undefined) {
      throw usageError(`--tenant goes with --role tenant only, not ${role}`);
    }
    const registry = new TokenRegistry(resolveStateDir(values["state-dir"]));
    const { token, info } = registry.create({ role, tenant: values.tenant });
    if (values.json) {
      printJson({ ...info, token });
    } else {
      console.error(`token ${info.id} (${info.role}${info.tenant ? ` of ${info.tenant}` : ""})`);
      console.log(token);
    }
    return Promise.resolve(0);
  },
};

/** `vasp token list`. */
export const tokenList: Command = {
  name: "token list",
  usage: `usage: vasp token list [--state-dir DIR] [--json]

Lists every token under a header: ID, ROLE, TENANT, CREATED.

${COMMON_USAGE}`,
  run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, COMMON);
    const tokens = new TokenRegistry(resolveStateDir(values["state-dir"])).list();
    if (values.json) printJson({ tokens });
    else if (tokens.length === 0) console.log('no tokens; make one with "vasp token create"');
    else {
      console.log(table(
        ["ID", "ROLE", "TENANT", "CREATED"],
        tokens.map((t) => [t.id, t.role, t.tenant ?? "-", t.created]),
      ));
    }
    return Promise.resolve(0);
  },
};

/** `vasp token revoke`. */
export const tokenRevoke: Command = {
  name: "token revoke",
  usage: `usage: vasp token revoke ID [--state-dir DIR] [--json]

Revokes the token whose ID "vasp token list" shows; a running server refuses it within a
second.

${COMMON_USAGE}`,
  run(args: string[]): Promise<number> {
    const { values, positionals } = parseOptions(args, COMMON, { allowPositionals: true });
    if (positionals.length !== 1) throw usageError("Name one token ID (see vasp token list)");
    const registry = new TokenRegistry(resolveStateDir(values["state-dir"]));
    try {
      registry.revoke(positionals[0]);
    } catch (error) {
      if (!(error instanceof VaspError && error.code === "token_not_found")) throw error;
      throw new VaspError(
        "token_not_found",
        `${error.message} in ${registry.path}: "vasp token list" shows the IDs`,
        { cause: error },
      );
    }
    if (values.json) printJson({ id: positionals[0], revoked: true });
    else console.error(`revoked ${positionals[0]}`);
    return Promise.resolve(0);
  },
};
