import assert from "node:assert/strict";
import { join } from "node:path";
import { VaspError } from "../engine/mod.ts";
import { VaspClient } from "./client.ts";

const VM = { uuid: "4c1f6a4e-8f0b-4d8e-9a77-2a3e5f1c0b9d", name: "web-1" };
const PAUSE = { operation: "pause", vm: VM, source: "qmp-gate", details: {} } as const;

/** A server on a Unix socket that answers every request with `answer`. */
async function fakeServer(
  answer: (request: Request) => Response | Promise<Response>,
): Promise<{ socket: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "vasp-client-" });
  const socket = join(dir, "vasp.sock");
  const server = Deno.serve({ path: socket, onListen() {} }, answer);
  return {
    socket,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const code = (expected: string) => (e: unknown) => {
  assert.ok(e instanceof VaspError, String(e));
  assert.equal(e.code, expected, e.message);
  return true;
};

Deno.test("VaspClient returns an answer that fits its schema, and sends the token", async () => {
  let auth: string | null = null;
  await using fake = await fakeServer((req) => {
    auth = req.headers.get("authorization");
    return Response.json({
      decision_id: "d1",
      allow: false,
      reasons: [{ policy: "p", rule: "r", message: "no", effect: "deny" }],
      actions: ["alert"],
      policy_revision: "sha256:00",
      state: "running",
      transition: { from: "running", to: "paused" },
    });
  });
  using client = new VaspClient(fake.socket, { token: "t0k" });
  const decision = await client.decide(PAUSE);
  assert.equal(decision.allow, false);
  assert.equal(decision.reasons[0]!.message, "no");
  assert.equal(auth, "Bearer t0k");
});

Deno.test("VaspClient names an error answer by the server's code and keeps its decision ID", async () => {
  await using fake = await fakeServer(() =>
    Response.json({ code: "store_closed", message: "closed", decision_id: "d2" }, { status: 503 })
  );
  using client = new VaspClient(fake.socket);
  await assert.rejects(client.decide(PAUSE), (e) => {
    code("store_closed")(e);
    assert.deepEqual((e as VaspError).details, { status: 503, decision_id: "d2" });
    return true;
  });
});

Deno.test("VaspClient calls an answer that is not JSON, or not its shape, answer_malformed", async () => {
  for (const answer of [new Response("<html>"), Response.json({ allow: "yes" })]) {
    await using fake = await fakeServer(() => answer.clone());
    using client = new VaspClient(fake.socket);
    await assert.rejects(client.decide(PAUSE), code("answer_malformed"));
  }
  await using fake = await fakeServer(() => new Response("bad gateway", { status: 502 }));
  using client = new VaspClient(fake.socket);
  await assert.rejects(client.listVms(), code("answer_malformed"));
});

Deno.test("VaspClient calls no server, or no answer within the timeout, decision_unavailable", async () => {
  using nobody = new VaspClient("/nonexistent/vasp.sock");
  await assert.rejects(nobody.decide(PAUSE), code("decision_unavailable"));
  // An answer that never comes: the timeout ends the wait, however busy the machine is.
  const never = Promise.withResolvers<Response>();
  await using fake = await fakeServer(() => never.promise);
  using slow = new VaspClient(fake.socket, { timeoutMs: 50 });
  await assert.rejects(slow.report({ ...PAUSE, outcome: "completed" }), (e) => {
    code("decision_unavailable")(e);
    assert.match((e as Error).message, /no answer within 50 ms/);
    return true;
  });
  never.resolve(new Response("late"));
});

Deno.test("VaspClient returns /readyz's 503 as a readiness, not an error", async () => {
  await using fake = await fakeServer(() =>
    Response.json({
      ready: false,
      checks: { store: true, policies: false, asp: true },
      policy_revision: null,
      asp_id: "a",
      code: "not_ready",
      message: "Not ready: policies failing",
    }, { status: 503 })
  );
  using client = new VaspClient(fake.socket);
  assert.equal((await client.readiness()).ready, false);
  assert.throws(() => new VaspClient(fake.socket, { timeoutMs: 0 }), RangeError);
});
