import assert from "node:assert/strict";
import { join } from "node:path";
import { tempStateDir } from "./fixtures/state_dir.ts";

const ROOT = new URL("..", import.meta.url).pathname;

async function vasp(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/cli/main.ts", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** Reads JSON log records from a stream until one satisfies `until`. */
async function readUntil(
  reader: ReadableStreamDefaultReader<string>,
  records: Record<string, unknown>[],
  until: (r: Record<string, unknown>) => boolean,
  buffer = { text: "" },
): Promise<void> {
  while (!records.some(until)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`log ended before the record looked for: ${buffer.text}`);
    buffer.text += value;
    const lines = buffer.text.split("\n");
    buffer.text = lines.pop()!;
    for (const line of lines.filter((l) => l.trim())) records.push(JSON.parse(line));
  }
}

Deno.test("serve --log-format json logs its start, each decision and its stop as JSON on stderr; vasp status reads the running server", async () => {
  await using dir = await tempStateDir();
  const kernel = join(dir.path, "vmlinuz-stand-in");
  await Deno.writeTextFile(kernel, "a host kernel image");
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "-A", "src/cli/main.ts", "serve", "--state-dir", dir.path, "--no-tcp"],
      ...["--host-kernel", kernel, "--log-format", "json"],
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new Response(child.stdout).text();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const records: Record<string, unknown>[] = [];
  const buffer = { text: "" };
  let stopped = false;
  try {
    await readUntil(reader, records, (r) => r.msg === "serving", buffer);
    const serving = records.find((r) => r.msg === "serving")!;
    assert.equal(serving.level, "info");
    assert.match(String(serving.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(serving.host_expected_recorded, false);
    assert.match(String(serving.policy_revision), /^sha256:[0-9a-f]{64}$/);
    assert.equal(serving.socket, join(dir.path, "vasp.sock"));
    assert.equal(serving.tcp, null);

    const status = await vasp(["status", "--state-dir", dir.path]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^server +running at unix:/m);
    assert.match(
      status.stdout,
      /no expected host recorded: starts are denied; record it with "vasp serve --learn-host"/,
    );
    assert.match(status.stdout, /^VMs +none; register one with "vasp vm register"$/m);
    assert.match(
      status.stdout,
      /^listeners +unix:.*vasp\.sock \(operator\); unix:.*hook\.sock \(hooks\); no TCP; pid \d+, log json$/m,
    );
    assert.match(status.stdout, /^tokens +1 operator; operator token .*operator\.token$/m);
    const json = JSON.parse((await vasp(["status", "--state-dir", dir.path, "--json"])).stdout);
    assert.equal(json.status.host.expected_recorded, false);
    assert.equal(json.listeners.log_format, "json");

    using client = Deno.createHttpClient({
      proxy: { transport: "unix", path: join(dir.path, "vasp.sock") },
    });
    const res = await fetch("http://vasp/v1/decide", {
      client,
      method: "POST",
      body: JSON.stringify({
        operation: "start",
        vm: { uuid: "6f1c2a9e-3b4d-4c5e-8f70-1a2b3c4d5e6f", name: "web-1" },
        source: "api",
        details: {},
      }),
    });
    const answer = await res.json();
    assert.equal(answer.allow, false);
    assert.ok(
      answer.reasons.some((r: { rule: string; message: string }) =>
        r.rule === "expected-recorded" && r.message.includes('run "vasp serve --learn-host"')
      ),
      JSON.stringify(answer.reasons),
    );
    await readUntil(reader, records, (r) => r.msg === "denied", buffer);
    const denied = records.find((r) => r.msg === "denied")!;
    assert.equal(denied.level, "warn");
    assert.equal(denied.decision_id, answer.decision_id);
    assert.equal(denied.vm, "web-1");
    assert.equal(denied.operation, "start");
    assert.equal(denied.allow, false);
    assert.equal(typeof denied.ms, "number");

    child.kill("SIGTERM");
    stopped = true;
    await readUntil(reader, records, (r) => r.msg === "stopped", buffer);
    assert.equal((await child.status).code, 0);
    assert.equal(await stdout, "", "JSON format prints nothing on stdout");
  } finally {
    if (!stopped) child.kill("SIGTERM");
    await reader.cancel().catch(() => {});
    await child.status;
  }
  const down = await vasp(["status", "--state-dir", dir.path]);
  assert.equal(down.code, 1);
  assert.match(down.stdout, /server +NOT RUNNING at unix:.*: start it with "deno task serve"/);
});
