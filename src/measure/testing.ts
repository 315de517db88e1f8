/**
 * Fixtures for unit tests: a tiny synthetic x86-64 kernel (a System.map and a RAM image
 * holding the banner, a syscall table of slid function pointers and an IDT, placed where a
 * test asks), and a measurement profile with a reference set learned under it.
 *
 * @module
 */
import { type KernelSymbols, parseSymbolMap } from "./symbols.ts";
import type { PhysReader } from "./kaslr.ts";
import { makeProfile, type MeasurementProfile, profileId } from "./profile.ts";
import { REFERENCE_FORMAT, type ReferenceRegion, type ReferenceSet } from "./reference.ts";

/** The measurement profile tests learn and look references up under. */
export const TEST_PROFILE: MeasurementProfile = makeProfile({
  kernel: "Linux version x",
  qemu: "7.2",
  cpu: "qemu64",
  smp: 1,
  cmdline: "",
});

/** A SHA-256 reference set for {@link TEST_PROFILE} holding `regions`, learned at a fixed time. */
export function testReferenceSet(regions: readonly ReferenceRegion[]): ReferenceSet {
  return {
    format: REFERENCE_FORMAT,
    profileId: profileId(TEST_PROFILE),
    profile: TEST_PROFILE,
    alg: "sha256",
    learnedAt: "2025-01-01T00:00:00Z",
    regions: [...regions],
  };
}

/** Link-time addresses of the synthetic kernel. */
export const FAKE = {
  text: 0xffffffff81000000n,
  etext: 0xffffffff81010000n,
  earlyIdt: 0xffffffff81408000n,
  rodata: 0xffffffff81200000n,
  sct: 0xffffffff81200100n,
  banner: 0xffffffff81200400n,
  roAfterInit: 0xffffffff81200800n,
  roAfterInitEnd: 0xffffffff81200900n,
  rodataEnd: 0xffffffff81201000n,
  initTopPgt: 0xffffffff81400000n,
  idt: 0xffffffff81401000n,
  end: 0xffffffff81410000n,
  /** Syscall-table entries (functions) and one padding slot after them. */
  syscalls: 8,
} as const;

const fn = (i: number) => FAKE.text + BigInt(i) * 0x1000n;

/** The synthetic System.map text. */
export function fakeSystemMap(): string {
  const line = (a: bigint, t: string, n: string) => `${a.toString(16)} ${t} ${n}`;
  return [
    line(0n, "D", "__per_cpu_start"),
    line(FAKE.text, "T", "_text"),
    line(FAKE.text, "T", "_stext"),
    ...Array.from({ length: FAKE.syscalls }, (_, i) => line(fn(i), "T", `__x64_sys_f${i}`)),
    line(FAKE.etext, "T", "_etext"),
    line(FAKE.rodata, "D", "__start_rodata"),
    line(FAKE.sct, "D", "sys_call_table"),
    line(FAKE.sct + BigInt(FAKE.syscalls + 1) * 8n, "d", "after_table"),
    line(FAKE.banner, "D", "linux_banner"),
    line(FAKE.roAfterInit, "D", "__start_ro_after_init"),
    line(FAKE.roAfterInitEnd, "D", "__end_ro_after_init"),
    line(FAKE.rodataEnd, "D", "__end_rodata"),
    line(FAKE.initTopPgt, "D", "init_top_pgt"),
    line(FAKE.idt, "b", "idt_table"),
    line(FAKE.idt + 0x1000n, "b", "after_idt"),
    line(FAKE.earlyIdt, "T", "early_idt_handler_array"),
    line(FAKE.end, "B", "_end"),
  ].join("\n");
}

/** The synthetic kernel's symbols. */
export function fakeSymbols(): KernelSymbols {
  return parseSymbolMap(fakeSystemMap(), "fake System.map");
}

/** Encodes one present interrupt gate. */
export function encodeGate(bytes: Uint8Array, vector: number, handler: bigint): void {
  const v = new DataView(bytes.buffer, bytes.byteOffset + vector * 16, 16);
  v.setUint16(0, Number(handler & 0xffffn), true);
  v.setUint16(2, 0x10, true);
  v.setUint8(5, 0x8e);
  v.setUint16(6, Number((handler >> 16n) & 0xffffn), true);
  v.setUint32(8, Number(handler >> 32n), true);
}

/** RAM holding the synthetic kernel at `physText` with virtual slide `slide`. */
export function fakeRam(
  options: { size?: number; physText: bigint; slide: bigint },
): Uint8Array<ArrayBuffer> {
  const ram = new Uint8Array(options.size ?? 64 << 20);
  const at = (va: bigint) => Number(options.physText + (va - FAKE.text));
  ram.set(new TextEncoder().encode("Linux version 9.9.9-fake (test)\n\0"), at(FAKE.banner));
  const view = new DataView(ram.buffer);
  for (let i = 0; i < FAKE.syscalls; i++) {
    view.setBigUint64(at(FAKE.sct) + i * 8, fn(i) + options.slide, true);
  }
  const idt = ram.subarray(at(FAKE.idt), at(FAKE.idt) + 4096);
  for (let v = 0; v < 256; v++) encodeGate(idt, v, fn(v % FAKE.syscalls) + options.slide);
  return ram;
}

/** A PhysReader over bytes, bounds-checked like GuestMemory. */
export function readerOf(ram: Uint8Array): PhysReader {
  return {
    size: BigInt(ram.length),
    readPhys(gpa, len) {
      if (gpa < 0n || gpa + BigInt(len) > BigInt(ram.length)) {
        throw new RangeError(`read of ${len} at ${gpa} outside ${ram.length} bytes`);
      }
      return ram.slice(Number(gpa), Number(gpa) + len);
    },
  };
}
