/**
 * The audit routes: query by VM and time, and verify the chain. A tenant reads only the
 * records of one of its own VMs, named with `vm=`.
 *
 * @module
 */
import type { Hono } from "hono";
import { VaspError } from "../engine/mod.ts";
import { AuditPage, AuditVerification, routes } from "../wire/mod.ts";
import type { AppEnv } from "./_env.ts";
import { mount, reply } from "./_mount.ts";
import { auditJson } from "./_present.ts";
import type { Services } from "./_services.ts";
import { allow, tenantScope } from "./auth.ts";
import { requestError } from "./errors.ts";

/**
 * Registers the audit routes.
 *
 * @param app the app
 * @param deps its dependencies
 */
export function auditRoutes(app: Hono<AppEnv>, deps: Services): void {
  mount(app, routes.auditRoute, {
    middleware: [allow("tenant")],
    handler: async (c, { query: q }) => {
      const tenant = tenantScope(c.get("principal"));
      if (tenant !== undefined) {
        if (q.vm === undefined) {
          throw requestError(
            "role_forbidden",
            "A tenant reads the audit of one of its VMs: add vm=<uuid>",
          );
        }
        const vm = await deps.store.getVm(q.vm);
        if (!vm || vm.tenant !== tenant) {
          throw new VaspError("vm_not_found", `No VM with UUID ${q.vm}`, {
            details: { uuid: q.vm },
          });
        }
      }
      const page = await deps.store.queryAudit({
        ...(q.vm === undefined ? {} : { vmUuid: q.vm }),
        ...(q.from === undefined ? {} : { from: q.from }),
        ...(q.to === undefined ? {} : { to: q.to }),
        ...(q.cursor === undefined ? {} : { cursor: q.cursor }),
        ...(q.limit === undefined ? {} : { limit: q.limit }),
        ...(q.result === undefined ? {} : { result: q.result }),
        ...(q.order === undefined ? {} : { order: q.order }),
      });
      return reply(c, AuditPage, {
        records: page.records.map(auditJson),
        next_cursor: page.nextCursor,
      });
    },
  });

  mount(app, routes.verifyAuditRoute, {
    middleware: [allow()],
    handler: async (c) => {
      const result = await deps.store.verifyAudit({ verifier: deps.auditVerifier });
      return reply(c, AuditVerification, { ...result });
    },
  });
}
