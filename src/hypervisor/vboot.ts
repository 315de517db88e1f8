/**
 * vBoot's register allocation (docs/lifecycle.md): a verifier replays the event log and
 * compares each entry's SHA-256 with the file or text it expects. What a start boots is
 * measured by the vASP side (src/vasp, measured launch): each file streamed by the native
 * library and extended with its digests, so the entry's `sha256` is the file's own digest.
 *
 * @module
 */

/** Which instance register vBoot extends with what. */
export const VBOOT_REGISTERS = {
  /** The domain XML as the hook gave it (its SHA-256 is the boot's configuration digest). */
  config: 0,
  /** Firmware: `<os><loader>`, then the NVRAM template `<os><nvram template>`. */
  firmware: 1,
  /** Direct kernel boot: `<os><kernel>`. */
  kernel: 2,
  /** Direct kernel boot: `<os><initrd>`. */
  initrd: 3,
  /** Direct kernel boot: `<os><cmdline>`, as UTF-8. */
  cmdline: 4,
  /** Each `<disk>`: device, type, source, format, target, read-only, backing chain, content. */
  disks: 5,
} as const;
