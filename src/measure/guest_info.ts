/**
 * Facts about a running kernel read from its memory, for the measurement profile: the
 * command line it booted with and its build ID. Guest-controlled like everything else: a
 * lie can only select a profile without references (or with other digests), never a match.
 *
 * @module
 */
import type { GuestMemory } from "../../ffi/mod.ts";
import { errorMessage, VaspError } from "../engine/error.ts";
import type { KernelMeasurer } from "./measurer.ts";
import { findBuildId } from "./elf.ts";
import type { KernelSymbols } from "./symbols.ts";

/** COMMAND_LINE_SIZE on x86. */
const MAX_CMDLINE = 2048;

/**
 * The kernel command line, from the string `saved_command_line` points to.
 *
 * @param memory the guest's RAM
 * @param kernel the measurer (placement and page tables) and the symbols
 * @returns the command line
 * @throws {VaspError} `guest_read_failed` when the pointer or the string cannot be read or
 *   the string has no terminator within 2048 bytes
 */
export function readCommandLine(
  memory: GuestMemory,
  kernel: { measurer: KernelMeasurer; symbols: KernelSymbols },
): string {
  const walk = { cr3: kernel.measurer.cr3, paging: kernel.measurer.paging };
  const at = kernel.symbols.require("saved_command_line") + kernel.measurer.layout.virtOffset;
  try {
    const ptr = new DataView(memory.readVirt(at, 8, walk).buffer).getBigUint64(0, true);
    const bytes: number[] = [];
    // Page by page: the string may end just before an unmapped page.
    for (let va = ptr; bytes.length < MAX_CMDLINE;) {
      const chunk = Math.min(Number(4096n - (va & 4095n)), MAX_CMDLINE - bytes.length);
      const part = memory.readVirt(va, chunk, walk);
      const nul = part.indexOf(0);
      bytes.push(...(nul >= 0 ? part.subarray(0, nul) : part));
      if (nul >= 0) return new TextDecoder().decode(new Uint8Array(bytes));
      va += BigInt(chunk);
    }
  } catch (cause) {
    throw new VaspError(
      "guest_read_failed",
      `Cannot read the guest's command line through saved_command_line: ${errorMessage(cause)}`,
      { cause },
    );
  }
  throw new VaspError("guest_read_failed", `The guest's command line exceeds ${MAX_CMDLINE} bytes`);
}

/**
 * The GNU build ID from the kernel's notes (`__start_notes`…`__stop_notes`) in guest RAM.
 *
 * @param memory the guest's RAM
 * @param kernel the measurer (placement) and the symbols
 * @returns lowercase hex, or null when the kernel has no notes or no build ID
 */
export function readBuildId(
  memory: GuestMemory,
  kernel: { measurer: KernelMeasurer; symbols: KernelSymbols },
): string | null {
  const start = kernel.symbols.get("__start_notes");
  const stop = kernel.symbols.get("__stop_notes");
  if (start === undefined || stop === undefined || stop <= start || stop - start > 65536n) {
    return null;
  }
  const phys = kernel.measurer.layout.physText + (start - kernel.symbols.require("_text"));
  return findBuildId(memory.readPhys(phys, Number(stop - start))) ?? null;
}
