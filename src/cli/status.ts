/**
 * `vasp status`: one screen on the running server — ASP identity, the host as measured against
 * what was recorded as expected (and how to record it), the policy revision, VMs by state,
 * the listeners, and where the operator token is. Asks the server (`GET /v1/status`) and reads
 * the state directory (the listeners `serve` wrote, the token files).
 *
 * @module
 */
import { join, resolve } from "node:path";
import { VaspError } from "../engine/error.ts";
import { OPERATOR_TOKEN_FILE, TokenRegistry } from "../http/tokens.ts";
import { resolveStateDir } from "../store/state_dir.ts";
import { type Command, parseOptions, printJson } from "./_command.ts";
import { connect, CONNECT_OPTIONS, CONNECT_USAGE, type ConnectValues } from "./_connect.ts";
import { readServeFile, type ServeFile } from "./_serve_file.ts";
import type { Status } from "../wire/mod.ts";

/** Everything `vasp status` reports. */
interface Report {
  state_dir: string;
  server: { reachable: boolean; at: string; error?: string };
  status: Status | null;
  listeners: ServeFile | null;
  tokens: { operator_token_file: string | null; by_role: Record<string, number> };
}

const LEARN = '"vasp serve --learn-host" (restart the server with it once)';

function hostLines(host: Status["host"], serving: ServeFile | null): string[] {
  if (host === null) return ["host         not measured by the ASP: every start is denied"];
  const lines = [`host         measured ${host.measured_at} by the ${host.asp} ASP`];
  for (const { part, why } of serving?.host_unmeasured ?? []) {
    lines.push(
      `             NOT MEASURED: ${part} (${why}); policies that require it deny starts: ` +
        `restart the server with ${part === "kernel" ? "--host-kernel" : "--qemu"} FILE`,
    );
  }
  if (!host.expected_recorded) {
    lines.push(
      `             no expected host recorded: starts are denied; record it with ${LEARN}`,
    );
  } else if (host.all_match) {
    lines.push("             every measured file matches the expected host");
  } else {
    const differing = host.files.filter((f) => !f.ok).map((f) => f.name);
    lines.push(
      `             DIFFERS from the expected host: ${differing.join(", ")}; if the change is ` +
        `yours, record it with ${LEARN}`,
    );
  }
  for (const f of host.files) {
    const mark = f.expected === null ? "no expectation" : f.ok ? "ok" : `expected ${f.expected}`;
    lines.push(`  ${f.name.padEnd(14)} ${f.digest}  ${mark}`);
  }
  return lines;
}

function text(s: Report): string {
  const lines = [`state dir    ${s.state_dir}`];
  if (!s.server.reachable) {
    lines.push(
      `server       NOT RUNNING at ${s.server.at}: start it with "deno task serve"` +
        ` (or vasp serve --state-dir ${s.state_dir})`,
    );
  } else {
    const st = s.status!;
    lines.push(`server       running at ${s.server.at}`);
    const ca = join(s.state_dir, "manufacturer-ca.pem");
    lines.push(
      `ASP          ${st.asp_id ?? "closed"}${exists(ca) ? `; manufacturer CA ${ca}` : ""}`,
    );
    lines.push(...hostLines(st.host, s.listeners));
    lines.push(`policies     revision ${st.policy_revision ?? "none loaded"}`);
    const states = Object.entries(st.vms).filter(([, n]) => n > 0);
    lines.push(
      `VMs          ${
        states.length === 0
          ? 'none; register one with "vasp vm register"'
          : states.map(([state, n]) => `${n} ${state}`).join(", ")
      }`,
    );
  }
  if (s.listeners) {
    const l = s.listeners;
    lines.push(
      `listeners    ${l.socket ? `unix:${l.socket} (operator)` : "no operator socket"}; ${
        l.hook_socket ? `unix:${l.hook_socket} (hooks)` : "no hook socket"
      }; ${l.tcp ? `http://${l.tcp} (bearer token)` : "no TCP"}; pid ${l.pid}, log ${l.log_format}`,
    );
  }
  const roles = Object.entries(s.tokens.by_role).map(([r, n]) => `${n} ${r}`).join(", ");
  lines.push(
    `tokens       ${roles || "none"}; operator token ${
      s.tokens.operator_token_file ?? "file not present (see vasp token create --role operator)"
    }`,
  );
  return lines.join("\n");
}

/** `vasp status`. */
export const status: Command = {
  name: "status",
  usage: `usage: vasp status [connection options]

Asks the running server and reads its state directory: the ASP's identity, the host as the
ASP measured it against the expected host (and how to record it), the policy revision in
force, the VMs by state, where the server listens, and where the operator token is. Exits 0
when the server answered, 1 when it is not running.

${CONNECT_USAGE}`,
  async run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, CONNECT_OPTIONS);
    const stateDir = resolve(resolveStateDir(values["state-dir"]));
    using api = connect(values as ConnectValues);
    let answer: Status | null = null;
    let error: string | undefined;
    try {
      answer = await api.call((client) => client.status());
    } catch (e) {
      if (!(e instanceof VaspError && e.code === "server_unreachable")) throw e;
      error = e.message;
    }
    const tokenFile = join(stateDir, OPERATOR_TOKEN_FILE);
    const byRole: Record<string, number> = {};
    for (const t of new TokenRegistry(stateDir).list()) byRole[t.role] = (byRole[t.role] ?? 0) + 1;
    const report: Report = {
      state_dir: stateDir,
      server: { reachable: answer !== null, at: api.where, ...(error ? { error } : {}) },
      status: answer,
      listeners: answer === null ? null : readServeFile(stateDir),
      tokens: {
        operator_token_file: exists(tokenFile) ? tokenFile : null,
        by_role: byRole,
      },
    };
    if (values.json) printJson(report);
    else console.log(text(report));
    return answer === null ? 1 : 0;
  },
};

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
