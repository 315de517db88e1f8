/**
 * Reading request bodies: a size limit enforced while reading, and JSON decoding with a
 * stable error.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "./_env.ts";
import { requestError } from "./errors.ts";
import { errorMessage } from "../engine/error.ts";

/** The default body limit: 64 KiB, far above any event a hook sends. */
export const DEFAULT_BODY_LIMIT = 64 * 1024;

/**
 * Refuses a body over `maxSize` bytes, by its `Content-Length` or, for a chunked body, as
 * soon as the bytes read pass it.
 *
 * @param maxSize the limit in bytes
 * @returns the middleware
 * @throws {VaspError} `body_too_large` (413)
 */
export function limitBody(maxSize: number): MiddlewareHandler<AppEnv> {
  return bodyLimit({
    maxSize,
    onError: () => {
      throw requestError("body_too_large", `The request body exceeds ${maxSize} bytes`, {
        limit: maxSize,
      });
    },
  });
}

/**
 * Reads and decodes a JSON body, keeping what was read for the error record.
 *
 * @param c the request context
 * @returns the decoded value
 * @throws {VaspError} `json_invalid` (400) naming the parse error
 */
export async function readJson(c: Context<AppEnv>): Promise<unknown> {
  const text = await c.req.text();
  c.set("bodyText", text);
  try {
    const body: unknown = JSON.parse(text);
    c.set("body", body);
    return body;
  } catch (error) {
    throw requestError(
      "json_invalid",
      `The request body is not valid JSON: ${errorMessage(error)}`,
    );
  }
}
