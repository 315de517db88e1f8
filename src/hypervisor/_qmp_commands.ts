/**
 * Which QMP commands and events the gate cares about, and the operation each one is. The
 * lists and their reasons are documented in docs/hooks.md ("What the gate asks about");
 * keep both in step.
 *
 * @module
 */
import type { FdKind } from "../../ffi/mod.ts";
import { hmpWords, passes } from "./_qmp_allow.ts";
import type { Operation } from "../engine/mod.ts";

/** What the gate asks the decision server about one command. */
export interface GatedCommand {
  /** Life-cycle operation (`pause`, `resume`, …). */
  readonly operation: Operation;
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
  readonly operation: Operation;
  readonly phase?: string;
  readonly action?: string;
  readonly exposesMemory?: true;
  readonly diskOnly?: true;
  readonly reportReply?: true;
  /** An internal VM snapshot, named by the command (`details.snapshot`). */
  readonly vmSnapshot?: true;
}

// The decision is the record: a dump does not move the VM to "saved".
const SAVE_MEMORY: Rule = { operation: "save", exposesMemory: true };

/** Asked about as `unknown`: a command vASP does not know the effect of. */
const UNKNOWN: Rule = { operation: "unknown" };
const DISK_EXPORT: Rule = { operation: "disk-export" };
const GUEST_INPUT: Rule = { operation: "guest-input" };
const DEVICE_ATTACH: Rule = { operation: "device-attach" };
/** A `migrate` into a file or pipe: the VM's whole state saved (or dumped) on this host. */
const SAVE_TO_FILE: Rule = { operation: "save" };
const DISK_SNAPSHOT: Rule = { operation: "snapshot", action: "save", diskOnly: true };

/** QMP commands that change what runs, expose guest data or reach into the guest. */
const QMP_RULES: Readonly<Record<string, Rule>> = {
  "stop": { operation: "pause" },
  "cont": { operation: "resume" },
  "system_wakeup": { operation: "resume", phase: "wakeup" },
  "system_reset": { operation: "start", phase: "reset" },
  "x-exit-preconfig": { operation: "start", phase: "preconfig" },
  "system_powerdown": { operation: "shutdown" },
  // libvirt's `destroy` is a forced power-off (the domain stays defined; `undefine`, from
  // libvirt's domain events, ends the VM's life): so is `quit`.
  "quit": { operation: "shutdown", phase: "quit" },
  "migrate": { operation: "migrate-out" },
  "migrate-continue": { operation: "migrate-out", phase: "continue" },
  "migrate-start-postcopy": { operation: "migrate-out", phase: "continue" },
  "migrate-pause": { operation: "migrate-out", phase: "continue" },
  "migrate-incoming": { operation: "migrate-in" },
  "migrate-recover": { operation: "migrate-in", phase: "recover" },
  "x-colo-lost-heartbeat": { operation: "migrate-in", phase: "failover" },
  "snapshot-save": { operation: "snapshot", action: "save", reportReply: true, vmSnapshot: true },
  "snapshot-load": { operation: "restore", action: "load", reportReply: true, vmSnapshot: true },
  "snapshot-delete": {
    operation: "snapshot",
    action: "delete",
    reportReply: true,
    vmSnapshot: true,
  },
  "blockdev-snapshot": DISK_SNAPSHOT,
  "blockdev-snapshot-sync": DISK_SNAPSHOT,
  "blockdev-snapshot-internal-sync": DISK_SNAPSHOT,
  "blockdev-snapshot-delete-internal-sync": { ...DISK_SNAPSHOT, action: "delete" },
  "xen-save-devices-state": { operation: "save", reportReply: true },
  "xen-load-devices-state": { operation: "restore", reportReply: true },
  "dump-guest-memory": SAVE_MEMORY,
  "memsave": SAVE_MEMORY,
  "pmemsave": SAVE_MEMORY,
  // The VGA framebuffer is guest memory.
  "screendump": SAVE_MEMORY,
  // A copy of a disk, or the disk itself, served or written outside the VM.
  "drive-backup": DISK_EXPORT,
  "blockdev-backup": DISK_EXPORT,
  "drive-mirror": DISK_EXPORT,
  "blockdev-mirror": DISK_EXPORT,
  "nbd-server-start": DISK_EXPORT,
  "nbd-server-add": DISK_EXPORT,
  "block-export-add": DISK_EXPORT,
  // Keys, pointer events and NMIs delivered to the guest.
  "send-key": GUEST_INPUT,
  "input-send-event": GUEST_INPUT,
  "inject-nmi": GUEST_INPUT,
  // Something new in the VM: a device, a network or character back-end, an object, a medium.
  "device_add": DEVICE_ATTACH,
  "netdev_add": DEVICE_ATTACH,
  "chardev-add": DEVICE_ATTACH,
  "object-add": DEVICE_ATTACH,
  "blockdev-insert-medium": DEVICE_ATTACH,
  "blockdev-change-medium": DEVICE_ATTACH,
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
  "migrate_start_postcopy": QMP_RULES["migrate-start-postcopy"]!,
  "migrate_pause": QMP_RULES["migrate-pause"]!,
  "migrate_incoming": QMP_RULES["migrate-incoming"]!,
  "migrate_recover": QMP_RULES["migrate-recover"]!,
  "x_colo_lost_heartbeat": QMP_RULES["x-colo-lost-heartbeat"]!,
  "savevm": { operation: "snapshot", action: "save", reportReply: true, vmSnapshot: true },
  "loadvm": { operation: "restore", action: "load", reportReply: true, vmSnapshot: true },
  "delvm": { operation: "snapshot", action: "delete", reportReply: true, vmSnapshot: true },
  "sendkey": GUEST_INPUT,
  "mouse_move": GUEST_INPUT,
  "mouse_button": GUEST_INPUT,
  "nmi": GUEST_INPUT,
  "drive_backup": DISK_EXPORT,
  "drive_mirror": DISK_EXPORT,
  "nbd_server_start": DISK_EXPORT,
  "nbd_server_add": DISK_EXPORT,
  // HMP's own argument syntax is not parsed: what a hot-plug brings is unknown, so the worst.
  ...Object.fromEntries(
    ["device_add", "netdev_add", "chardev-add", "object_add", "drive_add", "change"].map((
      name,
    ) => [name, { ...DEVICE_ATTACH, exposesMemory: true } as Rule]),
  ),
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

/** HMP `info` topics that show CPU state, page tables or guest memory. */
const HMP_INFO_MEMORY = new Set([
  "registers",
  "tlb",
  "mem",
  "lapic",
  "pic",
  "virtio-queue-element",
]);

/** Device models, back-ends and objects through which guest memory or traffic leaves QEMU. */
const EXPOSING_DRIVER = /^(vhost-user|vfio-user|vhost-vdpa|vfio-|ivshmem)/;
const EXPOSING_NETDEV = new Set(["vhost-user", "vhost-vdpa"]);
const EXPOSING_OBJECT = /^(filter-dump|filter-mirror|filter-redirector)$/;
const SHARED_MEMORY = /^memory-backend-(file|memfd)$/;

/** Transaction actions that only touch dirty bitmaps: they pass like the commands. */
const BITMAP_ACTION = /^(block-dirty-bitmap-|abort$)/;

function ruleFor(command: string, args: Record<string, unknown>): Rule | undefined {
  const rule = QMP_RULES[command];
  if (rule?.operation !== "device-attach") return rule ?? UNKNOWN;
  const exposes = (command === "device_add" && EXPOSING_DRIVER.test(String(args.driver))) ||
    (command === "netdev_add" && EXPOSING_NETDEV.has(String(args.type))) ||
    (command === "object-add" && (EXPOSING_OBJECT.test(String(args["qom-type"])) ||
      (SHARED_MEMORY.test(String(args["qom-type"])) && args.share === true)));
  return exposes ? { ...rule, exposesMemory: true } : rule;
}

function transactionRule(args: Record<string, unknown>): Rule | undefined {
  const actions = Array.isArray(args.actions) ? args.actions : [];
  const types = actions.map((a) => String((a as { type?: unknown } | null)?.type));
  if (types.some((t) => t === "drive-backup" || t === "blockdev-backup")) return DISK_EXPORT;
  if (types.length > 0 && types.every((t) => BITMAP_ACTION.test(t))) return undefined;
  if (types.length > 0 && types.every((t) => BITMAP_ACTION.test(t) || /snapshot/.test(t))) {
    return DISK_SNAPSHOT;
  }
  return UNKNOWN;
}

/** What a descriptor passed with `getfd` is: where a `migrate` to `fd:NAME` writes. */
export type { FdKind };

/** How to classify: what the gate knows beyond the command itself. */
export interface ClassifyOptions {
  /** The kind of the descriptor QEMU holds under a `getfd` name, if the gate saw it. */
  readonly fdKind?: (name: string) => FdKind | undefined;
}

/**
 * Where a `migrate` writes. libvirt saves (`virsh save`, `managedsave`) and dumps (`virsh dump`
 * without `--memory-only`) by migrating to a file or pipe it passes as `fd:NAME`, and migrates
 * to another host through a socket it passes the same way.
 */
function migrateTarget(uri: unknown, options: ClassifyOptions): FdKind | "network" | "unknown" {
  if (typeof uri !== "string") return "unknown";
  if (uri.startsWith("fd:")) return options.fdKind?.(uri.slice(3)) ?? "unknown";
  if (uri.startsWith("file:") || uri.startsWith("exec:")) return "file";
  return "network";
}

/**
 * Says whether a QMP command needs a decision, and as which operation: nothing on the
 * allow-list does (see `_qmp_allow.ts`); everything else is asked about, as `unknown` when
 * its effect is not known. A `migrate` into a file or a pipe is a `save`, not a migration.
 *
 * @param command the `execute` name
 * @param args the `arguments` member, if any
 * @param options what the gate knows of the descriptors QEMU holds
 * @returns the operation to ask about, or `undefined` to pass the command straight through
 */
export function classifyCommand(
  command: string,
  args: unknown,
  options: ClassifyOptions = {},
): GatedCommand | undefined {
  if (passes(command, args)) return undefined;
  const details: Record<string, unknown> = { command };
  if (args !== undefined) details.arguments = args;
  const a = (typeof args === "object" && args !== null ? args : {}) as Record<string, unknown>;
  if (command === "transaction") {
    const rule = transactionRule(a);
    return rule && gated(rule, details, command);
  }
  if (command === "migrate") {
    const target = migrateTarget(a.uri, options);
    details.migrate_to = target;
    if (target === "file" || target === "pipe") return gated(SAVE_TO_FILE, details, command);
  }
  if (command !== "human-monitor-command") {
    const rule = ruleFor(command, a)!;
    // QMP's snapshot jobs name the snapshot by its tag.
    if (rule.vmSnapshot && typeof a.tag === "string") details.snapshot = a.tag;
    return gated(rule, details, command);
  }
  const line = a["command-line"] as string;
  const [name = "", topic] = hmpWords(line);
  details.hmp = line;
  details.hmp_command = name;
  const rule = HMP_RULES[name] ??
    (name === "info" && HMP_INFO_MEMORY.has(topic ?? "") ? SAVE_MEMORY : UNKNOWN);
  // `savevm NAME`, `loadvm NAME`, `delvm NAME`: HMP's string argument (libvirt quotes it:
  // `savevm "s1"`).
  if (rule.vmSnapshot && topic) {
    const snapshot = hmpString(line.replace(/^[ \t\n\v\f\r]*[^ \t\n\v\f\r]+/, ""));
    if (snapshot !== undefined) details.snapshot = snapshot;
  }
  return gated(rule, details, `${command} ${name}`);
}

/** HMP's escapes inside a quoted string (QEMU's monitor `get_str`). */
const HMP_ESCAPES: Readonly<Record<string, string>> = {
  "n": "\n",
  "r": "\r",
  "\\": "\\",
  "'": "'",
  '"': '"',
};

/**
 * Reads an HMP string argument as QEMU's monitor does: blanks skipped, then either a quoted
 * string (escapes `\n \r \\ \' \"`) or everything up to the next blank.
 *
 * @param rest the command line after the command's name
 * @returns the string, or `undefined` where QEMU would refuse the argument
 */
export function hmpString(rest: string): string | undefined {
  const text = rest.replace(/^[ \t\n\v\f\r]+/, "");
  if (!text.startsWith('"')) return /^[^ \t\n\v\f\r]+/.exec(text)?.[0];
  let out = "";
  for (let i = 1; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') return out;
    if (c === "\\") {
      const e = HMP_ESCAPES[text[++i] ?? ""];
      if (e === undefined) return undefined;
      out += e;
    } else out += c;
  }
  return undefined; // unterminated
}

function gated(rule: Rule, details: Record<string, unknown>, label: string): GatedCommand {
  if (rule.action) details.action = rule.action;
  if (rule.exposesMemory) details.exposes_memory = true;
  if (rule.diskOnly) details.disk_only = true;
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
  readonly operation: Operation;
  /** Sub-step, when there is one. */
  readonly phase?: string;
  /** Whether the operation completed or failed. */
  readonly outcome: "completed" | "failed";
}

/** SHUTDOWN reasons (QAPI ShutdownCause) that mean the host ended the VM, not the guest
 * (`virsh destroy` is `host-signal`): a forced power-off, which ends no vASP instance. */
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
      return HOST_ENDED.has(String(d.reason))
        ? { operation: "shutdown", phase: "forced", outcome: "completed" }
        : { operation: "shutdown", outcome: "completed" };
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
