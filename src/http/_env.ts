/**
 * The app's Hono environment: what a listener passes in (`Bindings`) and what middleware
 * hands on to handlers (`Variables`).
 *
 * @module
 */
import type { Role } from "./tokens.ts";

/** Who is asking. */
export interface Principal {
  /** What it may do. */
  readonly role: Role;
  /** The tenant a tenant token speaks for. */
  readonly tenant?: string;
  /** How it was identified: the Unix socket it came through (its file mode), or a bearer token. */
  readonly via: "unix" | "token";
  /** The token's id, when by token. */
  readonly tokenId?: string;
}

/** The Hono environment of the app. */
export interface AppEnv {
  Bindings: {
    /** Which listener the request came through; anything but `unix` needs a token. */
    readonly transport?: "unix" | "tcp";
    /**
     * Over a Unix socket, the role of whoever can open that socket (its mode and group decide
     * who can): `hook` for the hook socket, `operator` (the default) for the operator socket.
     */
    readonly role?: Role;
  };
  Variables: {
    /** Set by the auth middleware on every route but `/healthz`. */
    principal: Principal;
    /** The decision or event ID, assigned before anything else. */
    decisionId: string;
    /** The body as decoded (for the error record). */
    body: unknown;
    /** The body's text when it did not decode. */
    bodyText: string;
  };
}
