/**
 * `vasp token create|list|revoke`: bearer tokens for the decision server's TCP listener. Only
 * hashes are kept (DIR/tokens.json, mode 0600); `create` prints the token once. A running
 * server sees the change at its next request.
 *
 * @module
 */
import { VaspError } from "../engine/error.ts";
import { type Role, ROLES, TokenRegistry } from "../http/mod.ts";
import { resolveStateDir } from "../store/mod.ts";
import { type Command, parseOptions } from "./_command.ts";

const STATE_DIR = "  --state-dir DIR  the state directory (default: $VASP_STATE_DIR, else ./.vasp)";

/** `vasp token create`. */
export const tokenCreate: Command = {
  name: "token create",
  summary: "make a bearer token (hook, operator or tenant) and print it once",
  usage: `usage: vasp token create --role hook|operator|tenant [--tenant T] [--state-dir DIR]

Prints the new token on stdout; only its SHA-256 is kept. Roles: hook (decide, report
events), operator (everything), tenant (read its own VMs, measurements and audit).

  --role ROLE      what the token may do
  --tenant T       the tenant a tenant token speaks for (tenant role only)
${STATE_DIR}`,
  run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, {
      role: { type: "string" },
      tenant: { type: "string" },
      "state-dir": { type: "string" },
    });
    const role = values.role as Role | undefined;
    if (role === undefined || !ROLES.includes(role)) {
      throw new VaspError("usage_invalid", `--role must be one of ${ROLES.join(", ")}`);
    }
    const registry = new TokenRegistry(resolveStateDir(values["state-dir"]));
    const { token, info } = registry.create({ role, tenant: values.tenant });
    console.error(`token ${info.id} (${info.role}${info.tenant ? ` of ${info.tenant}` : ""})`);
    console.log(token);
    return Promise.resolve(0);
  },
};

/** `vasp token list`. */
export const tokenList: Command = {
  name: "token list",
  summary: "list bearer tokens (never their secrets)",
  usage: `usage: vasp token list [--state-dir DIR] [--json]

${STATE_DIR}
  --json           print JSON`,
  run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, {
      "state-dir": { type: "string" },
      json: { type: "boolean" },
    });
    const tokens = new TokenRegistry(resolveStateDir(values["state-dir"])).list();
    if (values.json) {
      console.log(JSON.stringify(tokens, null, 2));
    } else {
      for (const t of tokens) {
        console.log(`${t.id}  ${t.role.padEnd(8)}  ${t.created}  ${t.tenant ?? ""}`.trimEnd());
      }
    }
    return Promise.resolve(0);
  },
};

/** `vasp token revoke`. */
export const tokenRevoke: Command = {
  name: "token revoke",
  summary: "revoke a bearer token by its id",
  usage: `usage: vasp token revoke ID [--state-dir DIR]

${STATE_DIR}`,
  run(args: string[]): Promise<number> {
    const { values, positionals } = parseOptions(args, { "state-dir": { type: "string" } }, {
      allowPositionals: true,
    });
    if (positionals.length !== 1) throw new VaspError("usage_invalid", "Name one token id");
    new TokenRegistry(resolveStateDir(values["state-dir"])).revoke(positionals[0]);
    console.error(`revoked ${positionals[0]}`);
    return Promise.resolve(0);
  },
};
