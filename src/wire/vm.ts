/**
 * The VM routes' shapes: registration, the VM as answered, its measurements, how the monitor
 * measures it (introspection settings), and a tenant's quote.
 *
 * @module
 */
import { z } from "zod";
import { LIFECYCLE_STATES } from "../engine/lifecycle.ts";
import { Time, Uuid, UuidInput } from "./common.ts";

const State = z.enum(LIFECYCLE_STATES);
const Labels = z.record(
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/, {
    error: "label keys are letters, digits and ._/-, at most 63",
  }),
  z.string().max(256),
);
const Path = z.string().min(1).max(4096).refine((s) => !s.includes("\0"), "no NUL byte");
const Positive = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

/** Default milliseconds between two measurements of a VM. */
export const DEFAULT_INTERVAL_MS = 1000;

const INTROSPECTION = {
  memory: Path.meta({ description: "guest RAM file (memory-backend-file share=on)" }),
  symbols: Path.meta({ description: "the guest kernel's System.map" }),
  vmlinuz: Path.optional().meta({ description: "the guest kernel's vmlinuz (undoes KASLR)" }),
  qmp: Path.optional().meta({ description: "QEMU's QMP socket: CR3, IDTR, pause and kill" }),
  below_4g: Positive.optional().meta({ description: "bytes of RAM below the PCI hole" }),
  qemu_version: Path.optional().meta({ description: "profile fact without QMP" }),
  cpu: Path.optional().meta({ description: "profile fact without QMP" }),
  smp: Positive.optional().meta({ description: "profile fact without QMP" }),
};

/** How the monitor measures a VM, as sent (`PUT /v1/vms/{uuid}/introspection`, registration). */
export const IntrospectionRequest = z.strictObject({
  ...INTROSPECTION,
  interval_ms: Positive.min(100).default(DEFAULT_INTERVAL_MS).meta({
    description: "milliseconds between two measurements (default 1000)",
  }),
}).meta({ id: "IntrospectionRequest" });
/** How the monitor measures a VM, as sent. */
export type IntrospectionRequest = z.input<typeof IntrospectionRequest>;

/** How the monitor measures a VM, as answered. */
export const Introspection = z.object({ ...INTROSPECTION, interval_ms: Positive })
  .meta({ id: "Introspection" });
/** How the monitor measures a VM, as answered. */
export type Introspection = z.infer<typeof Introspection>;

/** The body of `POST /v1/vms`. */
export const NewVmRequest = z.strictObject({
  uuid: UuidInput,
  name: z.string().min(1).max(256).meta({ description: "libvirt domain name" }),
  tenant: z.string().regex(/^[A-Za-z0-9._-]{0,128}$/, {
    error: 'letters, digits, ".", "_", "-", at most 128',
  }).default("").meta({ description: 'owning tenant; "" for the operator' }),
  labels: Labels.default({}).meta({ description: "labels policies can match" }),
  state: State.default("defined").meta({ description: "initial state" }),
  config_digest: z.string().regex(/^(sha256:)?[0-9a-fA-F]{64}$/, {
    error: "expected sha256:<64 hex digits>",
  }).optional().meta({
    description: "sha256:<hex> of the VM's configuration: a vASP instance is bound to it",
  }),
  domain_xml: z.string().min(1).optional().meta({
    description: "the domain XML; its SHA-256 becomes the configuration digest",
  }),
  introspection: IntrospectionRequest.optional(),
}).refine((vm) => vm.config_digest === undefined || vm.domain_xml === undefined, {
  error: "give config_digest or domain_xml, not both",
  path: ["domain_xml"],
}).meta({ id: "NewVm", description: "a VM to register" });
/** The body of `POST /v1/vms`. */
export type NewVmRequest = z.input<typeof NewVmRequest>;

/** A VM as answered. */
export const Vm = z.object({
  uuid: Uuid,
  name: z.string(),
  tenant: z.string(),
  labels: z.record(z.string(), z.string()),
  state: State.meta({ description: "recorded life-cycle state" }),
  binding: z.object({
    instance_id: z.string(),
    config_digest: z.string(),
    sealed: z.boolean(),
    sealed_counter: z.number().int(),
  }).nullable().meta({ description: "the VM's vASP instance (null: none)" }),
  introspection: Introspection.nullable(),
  created_at: Time,
  updated_at: Time,
}).meta({ id: "Vm", description: "a VM" });
/** A VM as answered. */
export type Vm = z.infer<typeof Vm>;

/** The query of `GET /v1/vms`. */
export const VmListQuery = z.strictObject({
  state: State.optional().meta({ description: "only this state" }),
  tenant: z.string().optional().meta({ description: "only this tenant (operators)" }),
});
/** The query of `GET /v1/vms`. */
export type VmListQuery = z.input<typeof VmListQuery>;

/** The answer of `GET /v1/vms`. */
export const VmList = z.object({ vms: z.array(Vm) }).meta({ id: "VmList" });
/** The answer of `GET /v1/vms`. */
export type VmList = z.infer<typeof VmList>;

/** The path of the routes of one VM. */
export const VmPath = z.object({
  uuid: UuidInput.meta({ param: { name: "uuid", in: "path" }, description: "the VM's UUID" }),
});

/** The answer of `DELETE /v1/vms/{uuid}`. */
export const VmRemoved = z.object({ uuid: Uuid, removed: z.literal(true) })
  .meta({ id: "VmRemoved" });
/** The answer of `DELETE /v1/vms/{uuid}`. */
export type VmRemoved = z.infer<typeof VmRemoved>;

/** A region's latest measurement. */
export const Measurement = z.object({
  region: z.string(),
  digest: z.string().meta({ description: 'measured digest, hex; "" when not measured' }),
  reference: z.string().nullable().meta({ description: "the reference digest, hex" }),
  status: z.string().meta({
    description: "ok, differs, missing (no measurement or no reference) or error; a client " +
      "reads any other value as error",
  }),
  time: Time,
  detail: z.string().optional().meta({ description: "why it is not ok" }),
}).meta({ id: "Measurement" });
/** A region's latest measurement. */
export type Measurement = z.infer<typeof Measurement>;

/** The answer of `GET /v1/vms/{uuid}/measurements`. */
export const Measurements = z.object({ vm_uuid: Uuid, measurements: z.array(Measurement) })
  .meta({ id: "Measurements" });
/** The answer of `GET /v1/vms/{uuid}/measurements`. */
export type Measurements = z.infer<typeof Measurements>;

/** The query of `GET /v1/vms/{uuid}/quote`. */
export const QuoteQuery = z.strictObject({
  nonce: z.string().regex(/^(?:[0-9a-fA-F]{2}){1,64}$/, {
    error: "1 to 64 bytes in hex, fresh from the verifier",
  }).meta({ description: "1 to 64 bytes, hex, fresh from the verifier" }),
  registers: z.string().regex(/^\d{1,2}(,\d{1,2})*$/, {
    error: "distinct register numbers 0 to 23, comma-separated",
  }).transform((s) => s.split(",").map(Number)).refine(
    (regs) => regs.every((r) => r <= 23) && new Set(regs).size === regs.length,
    "distinct register numbers 0 to 23, comma-separated",
  ).optional().meta({ description: "registers to quote, e.g. 0,1,8 (default: all 24)" }),
  alg: z.enum(["sha256", "sm3"]).default("sha256").meta({ description: "register bank" }),
});
/** The query of `GET /v1/vms/{uuid}/quote`. */
export type QuoteQuery = z.input<typeof QuoteQuery>;

/** A public JWK of the server's EAR key (EC P-256). */
export const EarJwk = z.object({
  kty: z.literal("EC"),
  crv: z.literal("P-256"),
  x: z.string(),
  y: z.string(),
  kid: z.string().meta({ description: "the key's SHA-256 JWK thumbprint (RFC 7638)" }),
  alg: z.literal("ES256"),
  use: z.literal("sig").optional(),
}).meta({ id: "EarJwk" });

/** The server's EAR beside a quote, and what verifies it. */
export const QuoteEar = z.object({
  token: z.string().meta({
    description: "EAT Attestation Result (draft-ietf-rats-ear), a JWT signed ES256",
  }),
  status: z.enum(["none", "affirming", "warning", "contraindicated"]).meta({
    description: "the EAR's ear.status, repeated for convenience (trust the signed one)",
  }),
  jwks: z.object({ keys: z.array(EarJwk).length(1) }).meta({
    description: "the EAR key, as a JWK set",
  }),
  endorsement: z.string().meta({
    description: "the AK's signature (base64url, r || s) over VASPSG01 || VASPEK01 || the " +
      "key's 32-byte thumbprint; verify with the AK certificate (docs/quote-format.md)",
  }),
}).meta({ id: "QuoteEar", description: "the server's attestation result" });
/** The server's EAR beside a quote. */
export type QuoteEar = z.infer<typeof QuoteEar>;

/** The answer of `GET /v1/vms/{uuid}/quote`. */
export const QuoteAnswer = z.object({
  vm_uuid: Uuid,
  instance_id: z.string().meta({ description: "the vASP instance, 32 hex digits" }),
  alg: z.enum(["sha256", "sm3"]),
  nonce: z.string().meta({ description: "the nonce, hex" }),
  quote: z.string().meta({ description: "the quote, base64 (docs/quote-format.md)" }),
  certificates: z.array(z.string()).meta({
    description: "PEM, the signer first: instance, AK, EK; not the manufacturer CA",
  }),
  event_log: z.array(z.object({
    reg: z.number().int(),
    sha256: z.string(),
    sm3: z.string(),
    description: z.string(),
  })),
  ear: QuoteEar.optional().meta({
    description: "the server's own appraisal of this evidence, absent when it issues none",
  }),
}).meta({ id: "Quote", description: "a quote for offline verification" });
/** The answer of `GET /v1/vms/{uuid}/quote`. */
export type QuoteAnswer = z.infer<typeof QuoteAnswer>;

const BOOT_REFERENCE_NAME = /^(firmware|kernel|initrd|cmdline|nvram|disk:[A-Za-z0-9_.-]{1,64})$/;

/** One boot reference: the digest a component of the VM's boot must have. */
export const BootReference = z.strictObject({
  name: z.string().regex(BOOT_REFERENCE_NAME, {
    error: "firmware, kernel, initrd, cmdline, nvram or disk:<target>",
  }).meta({
    description: "the component: firmware, kernel, initrd, cmdline, nvram, disk:<target>",
  }),
  path: z.string().max(4096).default("").meta({
    description: 'the file it is measured from; "" for the command line',
  }),
  digest: z.string().regex(/^sha256:[0-9a-f]{64}$/, {
    error: "expected sha256:<64 lower-case hex digits>",
  }).meta({ description: "sha256:<hex> of the component's content" }),
}).meta({ id: "BootReference", description: "a boot reference" });
/** One boot reference. */
export type BootReference = z.infer<typeof BootReference>;

/** The body of `PUT /v1/vms/{uuid}/boot-references`: measured from a domain XML, or declared. */
export const BootReferencesRequest = z.strictObject({
  domain_xml: z.string().min(1).optional().meta({
    description: "a domain XML of the VM: what it boots is measured on this host",
  }),
  references: z.array(BootReference).max(256).optional().meta({
    description: "the references, declared (every reference of the VM is replaced)",
  }),
}).refine((b) => (b.domain_xml === undefined) !== (b.references === undefined), {
  error: "give domain_xml or references, one of them",
  path: ["references"],
}).meta({ id: "BootReferencesRequest" });
/** The body of `PUT /v1/vms/{uuid}/boot-references`. */
export type BootReferencesRequest = z.input<typeof BootReferencesRequest>;

/** A VM's boot references, as answered. */
export const BootReferences = z.object({
  vm_uuid: Uuid,
  references: z.array(z.object({ name: z.string(), path: z.string(), digest: z.string() })),
  unmeasured: z.array(z.string()).optional().meta({
    description: "components of the domain XML that could not be measured (`name path: why`)",
  }),
}).meta({ id: "BootReferences" });
/** A VM's boot references, as answered. */
export type BootReferences = z.infer<typeof BootReferences>;
