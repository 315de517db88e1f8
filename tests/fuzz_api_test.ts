/**
 * Fuzzing the API's request validation through the real app (tests/fixtures/http_app.ts, the
 * composition `vasp serve` uses): `POST /v1/decide`, `POST /v1/events` and `POST /v1/vms`
 * bodies, and the queries and paths of `GET /v1/vms` and `GET /v1/audit`, mutated from the
 * corpus in tests/corpus/api/ — as bytes (broken JSON, bad UTF-8) and as JSON (a member
 * replaced by another type, a huge string, deep nesting, `__proto__`). Properties: no answer is
 * 5xx, nothing throws out of the app, every answer fits the OpenAPI document's schema for its
 * route and status (checkAnswer), and the app still decides afterwards.
 */
import assert from "node:assert/strict";
import { corpus, iterations, mutate, type Rng, rng } from "./fixtures/fuzz.ts";
import { openTestApp, type TestApp } from "./fixtures/http_app.ts";
import { checkAnswer } from "./fixtures/wire_check.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Sends raw bytes (not necessarily UTF-8) through the app and checks the answer's shape. */
async function send(
  t: TestApp,
  token: string,
  method: string,
  path: string,
  body?: Uint8Array<ArrayBuffer>,
): Promise<{ status: number; text: string }> {
  const init: RequestInit = {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
  };
  if (body !== undefined) init.body = body;
  const request = new Request(`http://vasp${path}`, init);
  const response = await t.app.fetch(request, { transport: "unix" });
  const text = await response.text();
  // Held to the schema of the route the server sees (the URL parser drops a fragment, resolves
  // dot segments).
  const url = new URL(request.url);
  checkAnswer({ method, path: url.pathname + url.search }, {
    status: response.status,
    contentType: response.headers.get("content-type"),
    text,
  });
  return { status: response.status, text };
}

/** A random JSON value of a wrong or hostile kind. */
function hostile(r: Rng): unknown {
  switch (r(12)) {
    case 0:
      return null;
    case 1:
      return [-1, 0, 1e308, -0, 2 ** 53 + 1, 1.5][r(6)];
    case 2:
      return "x".repeat([0, 1, 256, 4096, 70_000][r(5)]!);
    case 3:
      return ["", "\u0000", "\ud800", "../../etc/passwd", "' OR 1=1 --", "<x/>", "${x}"][r(7)];
    case 4:
      return r(2) === 0;
    case 5:
      return [];
    case 6:
      return {};
    case 7:
      return JSON.parse('{"__proto__":{"admin":true},"constructor":{"prototype":{}}}');
    case 8: {
      let v: unknown = 1;
      for (let d = 1 + r(2000); d > 0; d--) v = r(2) ? [v] : { a: v };
      return v;
    }
    case 9:
      return Array.from({ length: 1 + r(50) }, (_, i) => `v${i}`);
    case 10:
      return "4c1f6a4e-8f0b-4d8e-9a77-2a3e5f1c0b9" + "dD0-"[r(4)];
    default:
      return Object.fromEntries(Array.from({ length: 1 + r(40) }, (_, i) => [`k${i}`, i]));
  }
}

/** Replaces, adds or removes one member somewhere in `value` (a JSON tree). */
function mutateJson(r: Rng, value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== "object" || depth > 4) return hostile(r);
  const entries = Array.isArray(value)
    ? value.map((v, i) => [String(i), v] as [string, unknown])
    : Object.entries(value);
  const copy: Record<string, unknown> = Array.isArray(value)
    ? Object.assign([], value)
    : Object.assign(Object.create(null), value);
  const pick = entries.length ? entries[r(entries.length)]! : undefined;
  switch (r(5)) {
    case 0:
      if (pick) delete copy[pick[0]];
      break;
    case 1:
      copy[["extra", "__proto__", "allow", "decision_id", "role", ""][r(6)]!] = hostile(r);
      break;
    case 2:
      if (pick) copy[pick[0]] = hostile(r);
      break;
    default:
      if (pick) copy[pick[0]] = mutateJson(r, pick[1], depth + 1);
  }
  return Array.isArray(value) ? Object.values(copy) : { ...copy };
}

const ROUTES: Record<string, string> = {
  decide: "/v1/decide",
  event: "/v1/events",
  vm: "/v1/vms",
};

Deno.test({
  name: "the API answers mutated decide, event and VM bodies with a 4xx of its schema, never 5xx",
  async fn() {
    await using t = await openTestApp();
    const token = t.token("operator");
    const r = rng(31);
    const seeds: { route: string; bytes: Uint8Array<ArrayBuffer>; json: unknown }[] = corpus("api")
      .filter((f) => f.name.endsWith(".json")).map((f) => ({
        route: ROUTES[f.name.split("_")[0]!]!,
        bytes: f.bytes,
        json: JSON.parse(dec.decode(f.bytes)) as unknown,
      }));
    assert.equal(seeds.length, 6);
    for (const seed of seeds) {
      const { status, text } = await send(t, token, "POST", seed.route, seed.bytes);
      assert.ok(status < 300 || status === 409, `${seed.route}: ${status} ${text}`);
    }
    const statuses = new Map<number, number>();
    const n = iterations(2000);
    const started = performance.now();
    for (let i = 0; i < n; i++) {
      const seed: (typeof seeds)[number] = seeds[i % seeds.length]!;
      const body: Uint8Array<ArrayBuffer> = r(2) === 0
        ? mutate(r, seed.bytes)
        : enc.encode(JSON.stringify(mutateJson(r, seed.json)));
      // Now and then the wrong route for the body.
      const route: string = r(8) === 0 ? Object.values(ROUTES)[r(3)]! : seed.route;
      try {
        const { status, text } = await send(t, token, "POST", route, body);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        assert.ok(status < 500, `${route} answered ${status}: ${text}`);
        if (status >= 400) assert.equal(typeof JSON.parse(text).code, "string");
      } catch (error) {
        assert.fail(
          `seed ${r.seed} iteration ${i} ${route} ${dec.decode(body).slice(0, 300)}: ${
            (error as Error).stack
          }`,
        );
      }
    }
    const ms = performance.now() - started;
    console.log(
      `${n} bodies in ${ms.toFixed(0)} ms; statuses ${JSON.stringify([...statuses].sort())}`,
    );
    assert.ok([...statuses.keys()].some((s) => s >= 400), "some were refused");
    assert.ok([...statuses.keys()].some((s) => s < 300), "some got through validation");
    assert.equal((await send(t, token, "POST", "/v1/decide", seeds[0]!.bytes)).status, 200);
  },
});

const QUERY_PIECES = [
  "&",
  "=",
  "%",
  "%00",
  "%ff",
  "%zz",
  "+",
  "?",
  "#",
  "state=",
  "state=running",
  "tenant=",
  "limit=-1",
  "limit=0",
  "limit=1e9",
  "limit=99999999999999999999",
  "order=sideways",
  "from=2026-13-45T99:99:99Z",
  "to=yesterday",
  "cursor=%7B%7D",
  "result=maybe",
  "vm=..%2F..",
  "vm=4c1f6a4e-8f0b-4d8e-9a77-2a3e5f1c0b9d",
  "a".repeat(5000),
  "/",
  "//",
  "..",
  "%2e%2e",
  "\u00e9",
];

Deno.test({
  name: "the API answers mutated VM and audit queries and paths within its schema, never 5xx",
  async fn() {
    await using t = await openTestApp();
    const tokens = [t.token("operator"), t.token("tenant", "acme")];
    const r = rng(32);
    const seeds = dec.decode(corpus("api").find((f) => f.name === "queries.txt")!.bytes)
      .split("\n").filter((l) => l);
    const statuses = new Map<number, number>();
    const n = iterations(3000);
    const started = performance.now();
    for (let i = 0; i < n; i++) {
      let path = seeds[i % seeds.length]!;
      for (let k = 1 + r(4); k > 0; k--) {
        const at = 1 + r(path.length);
        const piece = QUERY_PIECES[r(QUERY_PIECES.length)]!;
        path = r(3) === 0
          ? path.slice(0, at) + path.slice(at + 1 + r(10))
          : path.slice(0, at) + piece + path.slice(at);
      }
      if (!path.startsWith("/v1/")) path = "/v1/vms?" + path;
      try {
        // A path the URL parser itself refuses never reaches a server.
        new URL(`http://vasp${path}`);
      } catch {
        continue;
      }
      try {
        const { status, text } = await send(t, tokens[r(2)]!, "GET", path);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        assert.ok(status < 500, `${path} answered ${status}: ${text}`);
      } catch (error) {
        assert.fail(`seed ${r.seed} iteration ${i} GET ${path}: ${(error as Error).stack}`);
      }
    }
    const ms = performance.now() - started;
    console.log(
      `${n} queries in ${ms.toFixed(0)} ms; statuses ${JSON.stringify([...statuses].sort())}`,
    );
    assert.ok(statuses.get(200), "some queries were valid");
    assert.ok([...statuses.keys()].some((s) => s >= 400), "some were refused");
  },
});
