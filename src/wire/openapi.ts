/**
 * The API's OpenAPI 3.1 document, generated from the route definitions of `routes.ts`: the
 * same schemas the server validates with and the client checks answers with. The generator
 * (`@hono/zod-openapi`) is loaded on the first call, so that clients of the schemas never load it.
 *
 * @module
 */
import { ROUTES } from "./routes.ts";

let built: Record<string, unknown> | undefined;

/**
 * The OpenAPI 3.1 document of the API.
 *
 * @returns a fresh copy of the document
 * @example
 * ```ts
 * import { openApiDocument } from "./openapi.ts";
 * const doc = await openApiDocument() as { paths: Record<string, unknown> };
 * if (!("/v1/decide" in doc.paths)) throw new Error("no /v1/decide");
 * ```
 */
export async function openApiDocument(): Promise<Record<string, unknown>> {
  if (!built) {
    const { OpenAPIHono } = await import("@hono/zod-openapi");
    // Used only as a registry: routes are mounted by src/http with its own validator.
    const registry = new OpenAPIHono();
    for (const route of ROUTES) registry.openAPIRegistry.registerPath(route);
    registry.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
      type: "http",
      scheme: "bearer",
    });
    built = registry.getOpenAPI31Document({
      openapi: "3.1.0",
      info: {
        title: "vASP decision API",
        version: "1",
        description: "Decisions on VM life-cycle operations, VM records, policies and the audit " +
          "trail. Over the Unix socket no token is needed; over TCP a bearer token is required " +
          "on every route but /healthz. Roles: hook (decide, events), operator (everything), " +
          "tenant (read its own VMs, their measurements, quotes and audit).",
      },
      servers: [{ url: "http://127.0.0.1:8787" }],
      security: [{ bearer: [] }],
    }) as unknown as Record<string, unknown>;
  }
  return structuredClone(built);
}
