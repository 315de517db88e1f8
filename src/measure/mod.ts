/**
 * Measuring a guest kernel from the hypervisor side: symbols, KASLR discovery, the regions to
 * measure, normalisation by undoing relocations, profiles and reference values, verdicts in
 * the engine's words, and the per-VM measurement scheduler.
 *
 * @module
 */
export { type BzImage, parseBzImage, type PayloadCompression } from "./bzimage.ts";
export { type ElfImage, findBuildId, parseElf } from "./elf.ts";
export { type GuestCpuFacts, type GuestSettings, type OpenedGuest, openGuest } from "./guest.ts";
export {
  discoverKaslr,
  type KaslrOptions,
  type KernelLayout,
  type PhysReader,
  tableSlots,
} from "./kaslr.ts";
export {
  type DigestAlg,
  type KernelMeasurement,
  type RegionMeasurement,
  type SitesMeasurement,
  unslidMeasurement,
} from "./measurement.ts";
export { expectedDigest, imageSites, maskSites } from "./image_reference.ts";
export { KernelMeasurer, type KernelMeasurerOptions } from "./measurer.ts";
export {
  loadPatchSites,
  type PatchSite,
  type PatchSites,
  type Replacement,
  type SiteKind,
} from "./patch_sites.ts";
export {
  type GuestReader,
  SiteChecker,
  type SiteReport,
  type SiteState,
  type SiteViolation,
} from "./site_check.ts";
export {
  makeProfile,
  type MeasurementProfile,
  profileId,
  TEXT_PARAMETERS,
  textParameters,
} from "./profile.ts";
export {
  compareToReference,
  type Comparison,
  type Difference,
  parseReferenceSet,
  REFERENCE_FORMAT,
  referenceFromMeasurement,
  type ReferenceRegion,
  type ReferenceSet,
} from "./reference.ts";
export { loadReferenceSet, referencePath, saveReferenceSet } from "./reference_store.ts";
export {
  type GuestSession,
  MeasurementMonitor,
  type MonitorDecision,
  type MonitorOptions,
  type MonitorPorts,
  type MonitorStats,
  type MonitorTarget,
  type MonitorTimers,
} from "./scheduler.ts";
export { failedVerdicts, judge, type RegionVerdict, verdictDigest } from "./verdict.ts";
export {
  IDT_BYTES,
  planRegions,
  type RegionKind,
  type RegionSpec,
  SYSCALL_TABLES,
} from "./regions.ts";
export { applyRelocations, parseRelocations, type Relocations, undoRelocations } from "./relocs.ts";
export { type KernelSymbol, KernelSymbols, parseSymbolMap, START_KERNEL_MAP } from "./symbols.ts";
export {
  checkIdt,
  checkSyscallTable,
  decodeIdt,
  type Finding,
  type IdtGate,
  normaliseIdt,
  normaliseSyscallTable,
  tableEntries,
  type TextBounds,
} from "./tables.ts";
export { type KernelImage, loadKernelImage } from "./vmlinuz.ts";
