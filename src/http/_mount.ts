/**
 * Mounting a route from its wire definition (src/wire/routes.ts): its path and query are
 * checked against the definition's schemas before the handler runs, and its body is read and
 * checked with {@link readBody}. Every failure is `request_invalid` naming the field and the
 * value, thrown to the one error writer.
 *
 * zod's `safeParse` in one validator, rather than `OpenAPIHono.openapi()`: that one answers a
 * missing or other content type with a 415 `HTTPException` and a failed check with its own
 * body, outside the error writer, and it reads the body before `recorded()` can keep its text
 * for the audit record.
 *
 * @module
 */
import type { Context, Handler, Hono, MiddlewareHandler } from "hono";
import type { z } from "zod";
import { describeIssue, type WireRoute } from "../wire/mod.ts";
import { readJson } from "./_body.ts";
import type { AppEnv } from "./_env.ts";
import { requestError } from "./errors.ts";

type Out<S> = S extends z.ZodType ? z.output<S> : undefined;
/** The checked path parameters of a route. */
export type ParamsOf<R> = R extends { request: { params: infer S } } ? Out<S> : undefined;
/** The checked query of a route. */
export type QueryOf<R> = R extends { request: { query: infer S } } ? Out<S> : undefined;
type BodySchema<R> = R extends
  { request: { body: { content: { "application/json": { schema: infer S } } } } } ? S
  : never;

/** What a handler gets, checked. */
export interface Checked<R> {
  /** Path parameters. */
  readonly params: ParamsOf<R>;
  /** Query parameters. */
  readonly query: QueryOf<R>;
}

function check<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const checked = schema.safeParse(input);
  if (checked.success) return checked.data;
  const { field, message } = describeIssue(checked.error, input, what);
  throw requestError("request_invalid", message, { field });
}

/**
 * Reads the JSON body and checks it against the route's body schema.
 *
 * @param c the request
 * @param route the route's definition
 * @returns the checked body
 * @throws {VaspError} `json_invalid`, `request_invalid` naming the field
 */
export async function readBody<R extends WireRoute>(
  c: Context<AppEnv>,
  route: R,
): Promise<z.output<BodySchema<R>>> {
  const schema =
    (route as { request?: { body?: { content: Record<string, { schema: z.ZodType }> } } })
      .request?.body?.content["application/json"]?.schema;
  if (!schema) throw new TypeError(`Route ${route.operationId} takes no JSON body`);
  return check(schema, await readJson(c), "body") as z.output<BodySchema<R>>;
}

/**
 * Mounts a route: `middleware` (auth, limits) first, then the path and query checks, then the
 * handler.
 *
 * @param app the app
 * @param route the route's definition
 * @param options `middleware` run before the checks; `handler` gets the context and the checked
 *   path and query
 */
export function mount<R extends WireRoute>(
  app: Hono<AppEnv>,
  route: R,
  options: {
    middleware?: MiddlewareHandler<AppEnv>[];
    handler: (c: Context<AppEnv>, input: Checked<R>) => Response | Promise<Response>;
  },
): void {
  const request = (route as { request?: { params?: z.ZodType; query?: z.ZodType } }).request;
  const handler: Handler<AppEnv> = (c) => {
    const params = request?.params ? check(request.params, c.req.param(), "path") : undefined;
    const query = request?.query ? check(request.query, c.req.query(), "query") : undefined;
    return options.handler(c, { params, query } as Checked<R>);
  };
  const path = route.path.replaceAll(/\{([a-z_]+)\}/g, ":$1");
  const chain = [...(options.middleware ?? []), handler] as [Handler<AppEnv>];
  app.on(route.method.toUpperCase(), path, ...chain);
}

/**
 * Answers JSON that the compiler holds to the route's schema for that status.
 *
 * @param c the request
 * @param schema the answer's schema
 * @param value the answer
 * @param status the status (default 200)
 * @returns the response
 */
export function reply<S extends z.ZodType>(
  c: Context<AppEnv>,
  schema: S,
  value: z.input<S>,
  status: 200 | 201 | 503 = 200,
): Response {
  void schema;
  return c.json(value as object, status);
}
