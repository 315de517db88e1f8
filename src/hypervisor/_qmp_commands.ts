/**
 * Which QMP commands and events the gate cares about, and the life-cycle operation each one
 * is. The lists and their reasons are documented in docs/hooks.md ("What the gate asks
 * about"); keep both in step.
 *
 * @module
 */

/** What the gate asks the decision server about one command. */
export interface GatedCommand {
  /** Life-cycle operation (`pause`, `resume`, …). */
  readonly operation: string;
  /** Sub-step, when the operation has several (`reset`, `continue`, …). */
  readonly phase?: string;
  /** The command as it was sent (name, arguments) plus what it means. */
  readonly details: Record<string, unknown>;
  /** A short name for messages: `stop`, `human-monitor-command savevm`. */
  readonly label: string;
  /**
   * Report the reply's outcome as an event: for operations after which QEMU emits no event
   * that would move the recorded state (snapshots, memory dumps).
   */
  readonly reportReply: boolean;
}

interface Rule {
  readonly operation: string;
  readonly phase?: string;
  readonly action?: string;
  readonly exposesMemory?: true;
  readonly reportReply?: true;
}

// The decision is the record: a dump does not move the VM to "saved".
const SAVE_MEMORY: Rule = { operation: "save", exposesMemory: true };

/** QMP commands that change what runs or expose guest memory. */
const QMP_RULES: Readonly<Record<string, Rule>> = {
  "stop": { operation: "pause" },
  "cont": { operation: "resume" },
  "system_wakeup": { operation: "resume", phase: "wakeup" },
  "system_reset": { operation: "start", phase: "reset" },
  "x-exit-preconfig": { operation: "start", phase: "preconfig" },
  "system_powerdown": { operation: "shutdown" },
  "quit": { operation: "destroy" },
  "migrate": { operation: "migrate-out" },
  "migrate-continue": { operation: "migrate-out", phase: "continue" },
  "migrate-incoming": { operation: "migrate-in" },
  "migrate-recover": { operation: "migrate-in", phase: "recover" },
  "x-colo-lost-heartbeat": { operation: "migrate-in", phase: "failover" },
  "snapshot-save": { operation: "snapshot", action: "save", reportReply: true },
  "snapshot-load": { operation: "restore", action: "load", reportReply: true },
  "snapshot-delete": { operation: "snapshot", action: "delete", reportReply: true },
  "xen-save-devices-state": { operation: "save", reportReply: true },
  "xen-load-devices-state": { operation: "restore", reportReply: true },
  "dump-guest-memory": SAVE_MEMORY,
  "memsave": SAVE_MEMORY,
  "pmemsave": SAVE_MEMORY,
  // The VGA framebuffer is guest memory.
  "screendump": SAVE_MEMORY,
};

/** HMP commands (first word of `human-monitor-command`), aliases included. */
const HMP_RULES: Readonly<Record<string, Rule>> = {
  "stop": QMP_RULES.stop!,
  "s": QMP_RULES.stop!,
  "cont": QMP_RULES.cont!,
  "c": QMP_RULES.cont!,
  "system_wakeup": QMP_RULES.system_wakeup!,
  "system_reset": QMP_RULES.system_reset!,
  "exit_preconfig": QMP_RULES["x-exit-preconfig"]!,
  "system_powerdown": QMP_RULES.system_powerdown!,
  "quit": QMP_RULES.quit!,
  "q": QMP_RULES.quit!,
  "migrate": QMP_RULES.migrate!,
  "migrate_continue": QMP_RULES["migrate-continue"]!,
  "migrate_incoming": QMP_RULES["migrate-incoming"]!,
  "migrate_recover": QMP_RULES["migrate-recover"]!,
  "x_colo_lost_heartbeat": QMP_RULES["x-colo-lost-heartbeat"]!,
  "savevm": { operation: "snapshot", action: "save", reportReply: true },
  "loadvm": { operation: "restore", action: "load", reportReply: true },
  "delvm": { operation: "snapshot", action: "delete", reportReply: true },
  // Read guest memory, registers or page tables, or open a debugger on the guest.
  ...Object.fromEntries(
    [
      "x",
      "xp",
      "memsave",
      "pmemsave",
      "dump-guest-memory",
      "sum",
      "print",
      "p",
      "gva2gpa",
      "gpa2hva",
      "gpa2hpa",
      "gdbserver",
      "screendump",
    ].map((name) => [name, SAVE_MEMORY]),
  ),
};

/** HMP commands that only read host-side state; everything else not listed is asked about. */
const HMP_PASS = new Set(["info", "help", "?"]);

/** Any other HMP command: unknown effect, so treated as the worst case, a memory exposure. */
const HMP_UNCLASSIFIED: Rule = SAVE_MEMORY;

/**
 * Says whether a QMP command needs a decision, and as which operation.
 *
 * @param command the `execute` (or `exec-oob`) name
 * @param args the `arguments` member, if any
 * @returns the operation to ask about, or `undefined` to pass the command straight through
 */
export function classifyCommand(command: string, args: unknown): GatedCommand | undefined {
  const details: Record<string, unknown> = { command };
  if (args !== undefined) details.arguments = args;
  if (command !== "human-monitor-command") {
    const rule = QMP_RULES[command];
    return rule && gated(rule, details, command);
  }
  const line = (args as { "command-line"?: unknown } | null)?.["command-line"];
  // Without a string command line QEMU refuses the command itself.
  if (typeof line !== "string") return undefined;
  // HMP skips leading white space and ends the name at the next one (monitor/hmp.c).
  const name = line.replace(/^[ \t\n\v\f\r]+/, "").split(/[ \t\n\v\f\r]/, 1)[0]!;
  if (HMP_PASS.has(name)) return undefined;
  details.hmp = line;
  details.hmp_command = name;
  const rule = HMP_RULES[name];
  if (!rule) details.unclassified = true;
  return gated(rule ?? HMP_UNCLASSIFIED, details, `${command} ${name}`);
}

function gated(rule: Rule, details: Record<string, unknown>, label: string): GatedCommand {
  if (rule.action) details.action = rule.action;
  if (rule.exposesMemory) details.exposes_memory = true;
  return {
    operation: rule.operation,
    ...(rule.phase ? { phase: rule.phase } : {}),
    details,
    label,
    reportReply: rule.reportReply ?? false,
  };
}

/** A QMP event turned into a report for `POST /v1/events`. */
export interface EventMapping {
  /** Life-cycle operation the event completes (or fails). */
  readonly operation: string;
  /** Sub-step, when there is one. */
  readonly phase?: string;
  /** Whether the operation completed or failed. */
  readonly outcome: "completed" | "failed";
}

/** SHUTDOWN reasons (QAPI ShutdownCause) that mean the host ended the VM, not the guest. */
const HOST_ENDED = new Set(["host-qmp-quit", "host-signal", "host-ui", "host-error"]);

/**
 * Maps a QMP event to the life-cycle operation it reports.
 *
 * @param event the event's name (`STOP`, `MIGRATION`, …)
 * @param data the event's `data` member
 * @param migration the migration under way on this QEMU: `in` (it was started with `-incoming` or
 *   sent `migrate-incoming`), `out` (a `migrate` command was forwarded), or `undefined`. QEMU
 *   also emits `MIGRATION` events while `savevm` writes a snapshot: those are no migration.
 * @returns the report to send, or `undefined` for events that move no state
 */
export function classifyEvent(
  event: string,
  data: unknown,
  migration: "in" | "out" | undefined,
): EventMapping | undefined {
  const d = (data ?? {}) as Record<string, unknown>;
  switch (event) {
    case "STOP":
      return { operation: "pause", outcome: "completed" };
    case "RESUME":
      return { operation: "resume", outcome: "completed" };
    case "RESET":
      return { operation: "start", phase: "reset", outcome: "completed" };
    case "POWERDOWN":
      return { operation: "shutdown", phase: "request", outcome: "completed" };
    case "SHUTDOWN":
      return {
        operation: HOST_ENDED.has(String(d.reason)) ? "destroy" : "shutdown",
        outcome: "completed",
      };
    case "MIGRATION": {
      const outcome = d.status === "completed"
        ? "completed"
        : d.status === "failed" || d.status === "cancelled"
        ? "failed"
        : undefined;
      if (!outcome || !migration) return undefined;
      return { operation: migration === "in" ? "migrate-in" : "migrate-out", outcome };
    }
    default:
      return undefined;
  }
}
