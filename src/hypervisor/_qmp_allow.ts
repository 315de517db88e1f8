/**
 * What the QMP gate passes without a decision: the allow-list. Everything not here is asked
 * about (docs/hooks.md, "What passes without a decision"; keep both in step).
 *
 * The commands libvirt 9.0 sends in its routine work were found by matching the strings of
 * its QEMU driver (`libvirt_driver_qemu.so`) against QEMU 7.2's `query-commands`, plus the
 * short names the compiler folds into longer strings (`stop`, `quit`, `add-fd`, `balloon` …).
 *
 * @module
 */

/**
 * QEMU 7.2's `query-*` commands: state of the host side, devices, jobs and migration, never
 * guest memory or CPU registers. A later QEMU's new query is asked about until listed here.
 */
const QUERIES = [
  "acpi-ospm-status",
  "balloon",
  "block",
  "block-exports",
  "block-jobs",
  "blockstats",
  "chardev",
  "chardev-backends",
  "colo-status",
  "command-line-options",
  "commands",
  "cpu-definitions",
  "cpu-model-expansion",
  "cpus-fast",
  "current-machine",
  "dirty-rate",
  "display-options",
  "dump",
  "dump-guest-memory-capability",
  "fdsets",
  "hotpluggable-cpus",
  "iothreads",
  "jobs",
  "kvm",
  "machines",
  "memdev",
  "memory-devices",
  "memory-size-summary",
  "mice",
  "migrate",
  "migrate-capabilities",
  "migrate-parameters",
  "name",
  "named-block-nodes",
  "pci",
  "pr-managers",
  "qmp-schema",
  "replay",
  "rocker",
  "rocker-of-dpa-flows",
  "rocker-of-dpa-groups",
  "rocker-ports",
  "rx-filter",
  "sev",
  "sev-attestation-report",
  "sev-capabilities",
  "sev-launch-measure",
  "sgx",
  "sgx-capabilities",
  "spice",
  "stats",
  "stats-schemas",
  "status",
  "target",
  "tpm",
  "tpm-models",
  "tpm-types",
  "uuid",
  "vcpu-dirty-limit",
  "version",
  "vm-generation-id",
  "vnc",
  "vnc-servers",
  "xen-replication-status",
  "yank",
].map((q) => `query-${q}`);

/** Commands that pass, grouped by why. */
const PASS_GROUPS: Readonly<Record<string, readonly string[]>> = {
  // Protocol and introspection: no state changes.
  protocol: [
    "qmp_capabilities",
    "qom-list",
    "qom-list-types",
    "qom-list-properties",
    "qom-get",
    "device-list-properties",
  ],
  // Descriptor bookkeeping: what a descriptor is used for (a dump, a migration) is decided.
  descriptors: ["getfd", "closefd", "add-fd", "remove-fd", "add_client"],
  // libvirt's routine tuning of a running VM: no guest data leaves it, no life-cycle step.
  tuning: [
    "balloon",
    "set_link",
    "block_resize",
    "block_set_io_throttle",
    "block-set-write-threshold",
    "set_password",
    "expire_password",
    "client_migrate_info",
    "display-reload",
    "announce-self",
    "rtc-reset-reinjection",
    "calc-dirty-rate",
    "migrate-set-capabilities",
    "migrate-set-parameters",
    "migrate_cancel",
  ],
  // The VM's own disk chain (hot-plug plumbing, commit, pull, bitmaps, jobs): copying a disk
  // out of it is decided (disk-export).
  storage: [
    "blockdev-add",
    "blockdev-del",
    "blockdev-create",
    "blockdev-reopen",
    "block-commit",
    "block-stream",
    "change-backing-file",
    "block-dirty-bitmap-add",
    "block-dirty-bitmap-remove",
    "block-dirty-bitmap-enable",
    "block-dirty-bitmap-disable",
    "block-dirty-bitmap-merge",
    "block-dirty-bitmap-clear",
    "block-job-cancel",
    "block-job-set-speed",
    "block-job-complete",
    "block-job-pause",
    "block-job-resume",
    "block-job-finalize",
    "block-job-dismiss",
    "job-cancel",
    "job-complete",
    "job-dismiss",
    "job-finalize",
    "job-pause",
    "job-resume",
    "nbd-server-stop",
    "nbd-server-remove",
    "block-export-del",
    "blockdev-open-tray",
    "blockdev-close-tray",
    "blockdev-remove-medium",
    "eject",
  ],
  // Taking things away from the VM: hot-unplug.
  removal: ["device_del", "netdev_del", "chardev-remove", "object-del"],
};

const PASS = new Set([...QUERIES, ...Object.values(PASS_GROUPS).flat()]);

/**
 * The commands the gate's lane may pass without the engine (libvasp `vasp_lane`): those that
 * pass whatever their arguments. The lane notes what `getfd` and `closefd` do to QEMU's named
 * descriptors, whose kind decides a later `migrate` to `fd:NAME`.
 */
export const LANE_PASSABLE: readonly string[] = [...PASS];

/** `qom-set` properties libvirt sets at run time (balloon statistics, virtio-mem size). */
const QOM_SET_PASS = new Set(["guest-stats-polling-interval", "requested-size"]);

/**
 * HMP `info` topics that pass: the same host-side state as the queries. Not `registers`,
 * `tlb`, `mem`, `lapic`, `pic` (CPU state and page tables), `virtio-queue-element` (reads
 * guest memory), `ramblock`, `roms`, `jit`, `opcount`, `profile` and the rest.
 */
const HMP_INFO_PASS = new Set([
  "",
  "balloon",
  "block",
  "block-jobs",
  "blockstats",
  "chardev",
  "cpus",
  "dirty_rate",
  "dump",
  "history",
  "hotpluggable-cpus",
  "iothreads",
  "kvm",
  "memdev",
  "memory-devices",
  "memory_size_summary",
  "mice",
  "migrate",
  "migrate_capabilities",
  "migrate_parameters",
  "mtree",
  "name",
  "network",
  "numa",
  "pci",
  "qom-tree",
  "qtree",
  "snapshots",
  "spice",
  "status",
  "tpm",
  "usernet",
  "uuid",
  "vcpu_dirty_limit",
  "version",
  "vm-generation-id",
  "vnc",
]);

/** HMP white space (monitor/hmp.c uses qemu_isspace). */
const HMP_SPACE = /[ \t\n\v\f\r]+/;

/**
 * The words of an HMP command line, as HMP reads its command name and first argument.
 *
 * @param line the `command-line` argument
 * @returns the command name and the rest split on white space
 */
export function hmpWords(line: string): string[] {
  return line.replace(/^[ \t\n\v\f\r]+/, "").split(HMP_SPACE);
}

/**
 * Whether a command passes the gate without a decision.
 *
 * @param command the `execute` name
 * @param args its `arguments`
 * @returns true for an allow-listed command
 */
export function passes(command: string, args: unknown): boolean {
  if (PASS.has(command)) return true;
  const a = (typeof args === "object" && args !== null ? args : {}) as Record<string, unknown>;
  if (command === "qom-set") return typeof a.property === "string" && QOM_SET_PASS.has(a.property);
  if (command === "human-monitor-command") {
    const line = a["command-line"];
    if (typeof line !== "string") return true; // QEMU refuses it itself
    const [name, topic] = hmpWords(line);
    return name === "help" || name === "?" || (name === "info" && HMP_INFO_PASS.has(topic ?? ""));
  }
  return false;
}

/** The allow-list, for docs and tests: each group's commands. */
export const ALLOW_LIST: Readonly<Record<string, readonly string[]>> = {
  queries: QUERIES,
  ...PASS_GROUPS,
  "qom-set properties": [...QOM_SET_PASS],
  "HMP info topics": [...HMP_INFO_PASS].filter(Boolean),
};
