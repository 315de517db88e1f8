/**
 * Who may call what. Over a Unix socket the caller has the socket's role, set by the listener:
 * `operator` on the operator socket (mode 0600: the server's own user), `hook` on the hook
 * socket (mode 0660: its group, which QEMU's user joins). Over TCP every route but `/healthz`
 * needs a bearer token, whose role decides the rest.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv, Principal } from "./_env.ts";
import { requestError } from "./errors.ts";
import type { Role, TokenInfo } from "./tokens.ts";

/** What checks a presented token (the `TokenRegistry`). */
export interface TokenAuthenticator {
  /**
   * @param token the bearer token as sent
   * @returns its listing, or `null` when invalid
   */
  authenticate(token: string): TokenInfo | null;
}

const BEARER = /^Bearer[ ]+([^\s]+)[ ]*$/i;

/**
 * Identifies the caller and sets `principal`.
 *
 * @param tokens the token registry
 * @returns the middleware
 * @throws {VaspError} `token_invalid` (401) over TCP without a valid bearer token
 */
export function authenticate(tokens: TokenAuthenticator): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    let principal: Principal;
    if (c.env?.transport === "unix") {
      principal = { role: c.env.role ?? "operator", via: "unix" };
    } else {
      const header = c.req.header("authorization");
      const match = header ? BEARER.exec(header) : null;
      if (!match) throw requestError("token_invalid", "A bearer token is required");
      const info = tokens.authenticate(match[1]);
      if (!info) throw requestError("token_invalid", "The bearer token is not valid");
      principal = {
        role: info.role,
        via: "token",
        tokenId: info.id,
        ...(info.tenant === undefined ? {} : { tenant: info.tenant }),
      };
    }
    c.set("principal", principal);
    await next();
  };
}

/**
 * Lets only some roles through (operators always pass).
 *
 * @param roles the roles allowed besides `operator`
 * @returns the middleware
 * @throws {VaspError} `role_forbidden` (403) for any other role
 */
export function allow(...roles: Role[]): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const { role } = c.get("principal");
    if (role !== "operator" && !roles.includes(role)) {
      const who = c.get("principal").via === "unix"
        ? `caller on the ${role} socket`
        : `${role} token`;
      throw requestError("role_forbidden", `A ${who} may not ${c.req.method} ${c.req.path}`);
    }
    await next();
  };
}

/**
 * The tenant whose VMs alone a principal may see.
 *
 * @param principal the caller
 * @returns the tenant for a tenant token, `undefined` for anyone who sees every VM
 */
export function tenantScope(principal: Principal): string | undefined {
  return principal.role === "tenant" ? principal.tenant ?? "" : undefined;
}
