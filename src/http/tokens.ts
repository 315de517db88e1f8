/**
 * Bearer tokens for the TCP listener. Only SHA-256 hashes are kept, in a JSON file (mode
 * 0600) in the state directory; a token is shown once, when it is made. A token is
 * `vasp_<id>_<secret>`: the id finds the entry, and the hash of the whole token is compared in
 * constant time.
 *
 * @module
 */
import { timingSafeEqual } from "node:crypto";
import { dirname, join } from "node:path";
import { errorMessage, VaspError } from "../engine/error.ts";
import { sha256Hex } from "../store/canonical_json.ts";
import { writePrivateFile } from "../store/private_file.ts";

const TOKEN_FILE = { code: "token_store_failed", name: "token file" } as const;

/**
 * What a token may do: `hook` decides and reports, `operator` everything, `tenant` reads its
 * own VMs, `metrics` reads `/metrics`, `/readyz` and `/v1/status` only (for a scraper), `peer`
 * is another vASP host fetching the state of a VM that migrates to it.
 */
export type Role = "hook" | "operator" | "tenant" | "metrics" | "peer";

/** Every role, for argument checks. */
export const ROLES: readonly Role[] = ["hook", "operator", "tenant", "metrics", "peer"];

/** A token as listed: never the secret. */
export interface TokenInfo {
  /** Public part of the token, unique. */
  readonly id: string;
  /** What it may do. */
  readonly role: Role;
  /** The tenant a `tenant` token speaks for. */
  readonly tenant?: string;
  /** When it was made. */
  readonly created: string;
}

interface StoredToken extends TokenInfo {
  /** SHA-256 (hex) of the whole token. */
  readonly sha256: string;
}

/** The token file's name inside the state directory. */
export const TOKENS_FILE = "tokens.json";
/** Where `serve` writes the first operator token. */
export const OPERATOR_TOKEN_FILE = "operator.token";

/** How long a known token is trusted without looking at the file again. */
const RECHECK_MS = 1000;
const TOKEN = /^vasp_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$/;
const TENANT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function parseFile(path: string, text: string): StoredToken[] {
  const bad = (why: string): never => {
    throw new VaspError("token_store_failed", `Cannot read the token file "${path}": ${why}`, {
      details: { path },
    });
  };
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    bad(`not JSON (${errorMessage(error)})`);
  }
  const tokens = (data as { tokens?: unknown })?.tokens;
  if (!Array.isArray(tokens)) bad('no "tokens" array');
  return (tokens as unknown[]).map((t, i) => {
    const e = t as Partial<StoredToken>;
    if (
      typeof e?.id !== "string" || !ROLES.includes(e.role as Role) ||
      typeof e.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(e.sha256) ||
      typeof e.created !== "string" ||
      (e.role === "tenant") !== (typeof e.tenant === "string" && e.tenant !== "")
    ) {
      bad(`entry ${i} is malformed`);
    }
    return e as StoredToken;
  });
}

/**
 * The token registry of one state directory. It rereads the file when it changes: a token made
 * by `vasp token create` works at once, and one revoked by `vasp token revoke` stops working
 * within a second.
 *
 * @example
 * ```ts
 * import { TokenRegistry } from "./tokens.ts";
 * const dir = Deno.makeTempDirSync();
 * const registry = new TokenRegistry(dir);
 * const { token } = registry.create({ role: "hook" });
 * if (registry.authenticate(token)?.role !== "hook") throw new Error("token not accepted");
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export class TokenRegistry {
  /** The token file. */
  readonly path: string;
  #tokens: StoredToken[] = [];
  #stamp = "";
  #checkedAt = -Infinity;
  /**
   * Tokens already checked against their stored hash, cleared whenever the file changes. Every
   * request carries one, and a lookup by the whole token costs far less than hashing it again;
   * only valid tokens get in, so a client cannot grow it.
   */
  #verified = new Map<string, TokenInfo>();

  /**
   * @param stateDir the state directory (the file is created on the first {@link create})
   */
  constructor(stateDir: string) {
    this.path = join(stateDir, TOKENS_FILE);
  }

  /** Rereads the file if its modification time, size or inode changed. */
  #refresh(): void {
    this.#checkedAt = performance.now();
    let stat: Deno.FileInfo;
    try {
      stat = Deno.statSync(this.path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      this.#tokens = [];
      this.#stamp = "";
      this.#verified.clear();
      return;
    }
    const stamp = `${stat.mtime?.getTime()}:${stat.size}:${stat.ino}`;
    if (stamp === this.#stamp) return;
    this.#tokens = parseFile(this.path, Deno.readTextFileSync(this.path));
    this.#stamp = stamp;
    this.#verified.clear();
  }

  /**
   * Makes a token and stores its hash.
   *
   * @param options `role`; `tenant`, required for (and only for) the `tenant` role
   * @returns the token (shown once: only its hash is kept) and its listing
   * @throws {VaspError} `request_invalid` for a bad role or tenant; `token_store_failed`
   */
  create(options: { role: Role; tenant?: string }): { token: string; info: TokenInfo } {
    const { role, tenant } = options;
    if (!ROLES.includes(role)) {
      throw new VaspError("request_invalid", `Unknown role "${role}"; use ${ROLES.join(", ")}`);
    }
    if (role === "tenant" && (tenant === undefined || !TENANT.test(tenant))) {
      throw new VaspError(
        "request_invalid",
        `A tenant token needs a tenant name (letters, digits, ".", "_", "-"), got ${
          JSON.stringify(tenant)
        }`,
      );
    }
    if (role !== "tenant" && tenant !== undefined) {
      throw new VaspError("request_invalid", `Only a tenant token names a tenant, not a ${role}`);
    }
    this.#refresh();
    const id = hex(crypto.getRandomValues(new Uint8Array(8)));
    const token = `vasp_${id}_${base64url(crypto.getRandomValues(new Uint8Array(32)))}`;
    const info: TokenInfo = {
      id,
      role,
      ...(tenant === undefined ? {} : { tenant }),
      created: new Date().toISOString(),
    };
    this.#write([...this.#tokens, { ...info, sha256: sha256Hex(token) }]);
    return { token, info };
  }

  /**
   * Every token, without secrets.
   *
   * @returns the listing, oldest first
   * @throws {VaspError} `token_store_failed` for an unreadable file
   */
  list(): TokenInfo[] {
    this.#refresh();
    return this.#tokens.map(({ sha256: _, ...info }) => info);
  }

  /**
   * Revokes a token.
   *
   * @param id the token's id (from {@link list})
   * @throws {VaspError} `token_not_found`; `token_store_failed`
   */
  revoke(id: string): void {
    this.#refresh();
    const kept = this.#tokens.filter((t) => t.id !== id);
    if (kept.length === this.#tokens.length) {
      throw new VaspError("token_not_found", `No token with id "${id}"`, { details: { id } });
    }
    this.#write(kept);
  }

  /**
   * Checks a presented token.
   *
   * @param token the bearer token as sent
   * @returns its listing, or `null` when it is not a valid token
   * @throws {VaspError} `token_store_failed` when the file cannot be read (fail closed)
   */
  authenticate(token: string): TokenInfo | null {
    // A known token is rechecked against the file at most once a second, so a revocation
    // takes effect within a second; a token not seen yet is looked for in the file at once.
    if (performance.now() - this.#checkedAt > RECHECK_MS) this.#refresh();
    const verified = this.#verified.get(token);
    if (verified) return verified;
    const match = TOKEN.exec(token);
    if (!match) return null;
    let entry = this.#tokens.find((t) => t.id === match[1]);
    if (!entry) {
      this.#refresh();
      entry = this.#tokens.find((t) => t.id === match[1]);
    }
    const presented = new TextEncoder().encode(sha256Hex(token));
    // Compare against a stand-in when the id is unknown, so both paths cost the same.
    const expected = new TextEncoder().encode(entry?.sha256 ?? "0".repeat(64));
    if (!timingSafeEqual(presented, expected) || !entry) return null;
    const { sha256: _, ...info } = entry;
    this.#verified.set(token, info);
    return info;
  }

  #write(tokens: StoredToken[]): void {
    Deno.mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    writePrivateFile(this.path, JSON.stringify({ version: 1, tokens }, null, 2) + "\n", TOKEN_FILE);
    this.#stamp = "";
    this.#refresh();
  }
}

/**
 * On a first start (no operator token yet), makes an operator token and writes it to
 * `<stateDir>/operator.token` (mode 0600).
 *
 * @param registry the registry
 * @param stateDir the state directory
 * @returns the file's path when a token was made, `undefined` when one existed
 * @throws {VaspError} `token_store_failed`
 */
export function bootstrapOperatorToken(
  registry: TokenRegistry,
  stateDir: string,
): string | undefined {
  if (registry.list().some((t) => t.role === "operator")) return undefined;
  const { token } = registry.create({ role: "operator" });
  const path = join(stateDir, OPERATOR_TOKEN_FILE);
  writePrivateFile(path, token + "\n", TOKEN_FILE);
  return path;
}
