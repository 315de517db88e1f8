/**
 * The audit routes: query by VM and time, and verify the chain. A tenant reads only the
 * records of one of its own VMs, named with `vm=`.
 *
 * @module
 */
import type { Hono } from "hono";
import { VaspError } from "../engine/mod.ts";
import type { AppEnv } from "./_env.ts";
import { auditJson } from "./_present.ts";
import type { Services } from "./_services.ts";
import { parseAuditQuery } from "./_validate.ts";
import { allow, tenantScope } from "./auth.ts";
import { requestError } from "./errors.ts";

/**
 * Registers the audit routes.
 *
 * @param app the app
 * @param deps its dependencies
 */
export function auditRoutes(app: Hono<AppEnv>, deps: Services): void {
  app.get("/v1/audit", allow("tenant"), async (c) => {
    const query = parseAuditQuery(c.req.query());
    const tenant = tenantScope(c.get("principal"));
    if (tenant !== undefined) {
      if (query.vmUuid === undefined) {
        throw requestError(
          "role_forbidden",
          "A tenant reads the audit of one of its VMs: add vm=<uuid>",
        );
      }
      const vm = await deps.store.getVm(query.vmUuid);
      if (!vm || vm.tenant !== tenant) {
        throw new VaspError("vm_not_found", `No VM with UUID ${query.vmUuid}`, {
          details: { uuid: query.vmUuid },
        });
      }
    }
    const page = await deps.store.queryAudit(query);
    return c.json({ records: page.records.map(auditJson), next_cursor: page.nextCursor });
  });

  app.get("/v1/audit/verify", allow(), async (c) => {
    const result = await deps.store.verifyAudit({ verifier: deps.auditVerifier });
    return c.json(result);
  });
}
