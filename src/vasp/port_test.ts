import assert from "node:assert/strict";
import { engineBinding } from "./port.ts";

const HEX = "ab".repeat(32);

Deno.test("engineBinding() gives the engine the sha256:<hex> form and says whether it can be used", () => {
  assert.deepEqual(
    engineBinding({ instanceId: "i-1", configDigest: HEX }, { sealedExport: true }),
    {
      instanceId: "i-1",
      configDigest: `sha256:${HEX}`,
      certified: true,
      sealedExport: true,
    },
  );
  const refused = engineBinding({ instanceId: "", configDigest: "" }, {
    sealedExport: false,
    error: "the sealed vASP state was refused",
  });
  assert.equal(refused.configDigest, "", "an unknown digest stays empty, never a bare prefix");
  assert.equal(refused.error, "the sealed vASP state was refused");
  const prefixed = engineBinding({ instanceId: "i", configDigest: `sha256:${HEX}` }, {
    sealedExport: false,
  });
  assert.equal(prefixed.configDigest, `sha256:${HEX}`, "never prefixed twice");
});
