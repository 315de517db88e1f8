import { SILENT } from "../src/engine/mod.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startServer } from "../src/server/mod.ts";
import { TEST_POLICIES, VM_A } from "./fixtures/http_app.ts";
import { tempStateDir } from "./fixtures/state_dir.ts";

const ROOT = new URL("..", import.meta.url).pathname;

async function vasp(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/cli/main.ts", ...args],
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("vasp token create prints a token once that the server accepts by role; list shows no secret; revoke ends it", async () => {
  await using dir = await tempStateDir();
  const policies = join(dir.path, "policies");
  await Deno.mkdir(policies);
  for (const [name, text] of Object.entries(TEST_POLICIES)) {
    await Deno.writeTextFile(join(policies, name), text);
  }
  const server = await startServer({
    stateDir: dir.path,
    policies: { dir: policies },
    tcp: { hostname: "127.0.0.1", port: 0 },
    host: { qemu: null, kernel: null },
    log: SILENT,
  });
  try {
    const base = `http://127.0.0.1:${server.listeners.tcp!.port}`;
    const created = await vasp([
      "token",
      "create",
      "--role",
      "tenant",
      "--tenant",
      "acme",
      "--state-dir",
      dir.path,
    ]);
    assert.equal(created.code, 0, created.stderr);
    const token = created.stdout.trim();
    assert.match(token, /^vasp_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    const seen = await fetch(`${base}/v1/vms`, { headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual(await seen.json(), { vms: [] });
    const denied = await fetch(`${base}/metrics`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(denied.status, 403);
    await denied.body?.cancel();

    const listed = await vasp(["token", "list", "--state-dir", dir.path, "--json"]);
    const { tokens } = JSON.parse(listed.stdout) as {
      tokens: { id: string; role: string; tenant?: string }[];
    };
    assert.deepEqual(tokens.map((t) => t.role).sort(), ["operator", "tenant"]);
    // The secret is base64url (it may hold "_"): everything after `vasp_<16 hex>_`.
    assert.ok(!listed.stdout.includes(token.slice("vasp_".length + 17)));
    const id = tokens.find((t) => t.role === "tenant")!.id;
    assert.equal((await vasp(["token", "revoke", id, "--state-dir", dir.path])).code, 0);
    // A revocation reaches the running server within a second (it rechecks known tokens).
    const revoked = performance.now();
    let status = 200;
    while (status === 200 && performance.now() - revoked < 3000) {
      const res = await fetch(`${base}/v1/vms`, { headers: { authorization: `Bearer ${token}` } });
      status = res.status;
      await res.body?.cancel();
      if (status === 200) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status, 401);
    assert.ok(performance.now() - revoked < 1500, "revoked within about a second");

    const usage = await vasp(["token", "create", "--role", "root", "--state-dir", dir.path]);
    assert.equal(usage.code, 2);
  } finally {
    await server.shutdown();
  }
});

Deno.test("vasp vm register, list, show and remove go through the running server over its socket, or TCP with a token", async () => {
  await using dir = await tempStateDir();
  const server = await startServer({
    stateDir: dir.path,
    policies: { dir: join(ROOT, "policies") },
    tcp: { hostname: "127.0.0.1", port: 0 },
    host: { qemu: null, kernel: null },
    log: SILENT,
  });
  try {
    const local = ["--state-dir", dir.path];
    const registered = await vasp([
      "vm",
      "register",
      "--uuid",
      VM_A,
      "--name",
      "web-1",
      "--tenant",
      "acme",
      "--label",
      "tier=prod",
      "--label",
      "appName=web",
      ...local,
    ]);
    assert.equal(registered.code, 0, registered.stderr);
    assert.match(registered.stdout, new RegExp(`registered web-1 \\(${VM_A}\\), defined`));
    const again = await vasp(["vm", "register", "--uuid", VM_A, "--name", "web-1", ...local]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already registered \[vm_exists\]/);

    const token = join(dir.path, "operator.token");
    const server_ = `http://127.0.0.1:${server.listeners.tcp!.port}`;
    const listed = await vasp(["vm", "list", "--server", server_, "--token-file", token, "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    // Labels are the operator's keys: --json keeps them as given.
    assert.deepEqual(JSON.parse(listed.stdout).vms.map((v: { labels: unknown }) => v.labels), [{
      tier: "prod",
      appName: "web",
    }]);
    const noToken = await vasp(["vm", "list", "--server", server_]);
    assert.equal(noToken.code, 2);

    const table = await vasp(["vm", "list", ...local]);
    assert.match(table.stdout, /^NAME +UUID +STATE +TENANT +VASP +MEASURED\n/);
    assert.match(table.stdout, new RegExp(`\nweb-1 +${VM_A} +defined +acme +- +-$`, "m"));

    const shown = await vasp(["vm", "show", "web-1", ...local]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /labels +\{"tier":"prod","appName":"web"\}/);
    const unknown = await vasp(["vm", "show", "web-2", ...local]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /No VM named "web-2".*vasp vm list/);
    assert.equal((await vasp(["vm", "remove", "web-1", ...local])).code, 0);
    const missing = await vasp(["vm", "show", VM_A, ...local]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /\[vm_not_found\]/);
  } finally {
    await server.shutdown();
  }
  const down = await vasp(["vm", "list", "--state-dir", dir.path]);
  assert.equal(down.code, 2);
  assert.match(
    down.stderr,
    /Cannot reach the vasp server at unix:.*vasp\.sock: is `vasp serve` running\? start it with "deno task serve".*\[server_unreachable\]/,
  );
});
