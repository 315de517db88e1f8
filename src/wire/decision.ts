/**
 * The decision API's shapes: the event a hook sends to `POST /v1/decide`, the report it sends
 * to `POST /v1/events`, and their answers.
 *
 * @module
 */
import { z } from "zod";
import { ACTIONS } from "../engine/decision.ts";
import { EVENT_SOURCES } from "../engine/event.ts";
import { LIFECYCLE_STATES, OPERATIONS, OUTCOMES } from "../engine/lifecycle.ts";
import { UuidInput } from "./common.ts";

/** The longest VM name and phase an event may carry (as the engine's `parseEvent`). */
export const NAME_MAX = 256;

/** A VM as an event names it. */
export const VmRef = z.object({
  uuid: UuidInput,
  name: z.string().min(1).max(NAME_MAX).meta({ description: "libvirt domain name" }),
}).meta({ id: "VmRef", description: "the VM's libvirt/QEMU identity" });
/** A VM as an event names it. */
export type VmRef = z.input<typeof VmRef>;

const EVENT_FIELDS = {
  operation: z.enum(OPERATIONS).meta({ description: "life-cycle operation" }),
  vm: VmRef,
  source: z.enum(EVENT_SOURCES).meta({ description: "who sends it" }),
  phase: z.string().max(NAME_MAX).optional().meta({
    description: "the source's step (prepare, reset …) or an outcome phase",
  }),
  details: z.record(z.string(), z.unknown()).optional().meta({
    description: "operation-specific facts (QMP command and arguments …), as sent",
  }),
};

/**
 * The body of `POST /v1/decide` (and of `POST /v1/policies/evaluate`). The server checks it
 * with the engine's `parseEvent`, which accepts exactly what this schema accepts (a test
 * holds the two together).
 */
export const DecideRequest = z.strictObject(EVENT_FIELDS).meta({
  id: "Event",
  description: "a life-cycle event to decide",
});
/** The body of `POST /v1/decide`. */
export type DecideRequest = z.input<typeof DecideRequest>;

/** The body of `POST /v1/events`: something that happened, and how it ended. */
export const EventReport = z.strictObject({
  ...EVENT_FIELDS,
  outcome: z.enum(OUTCOMES).meta({ description: "how the operation ended" }),
}).meta({ id: "EventReport", description: "a life-cycle event that happened" });
/** The body of `POST /v1/events`. */
export type EventReport = z.input<typeof EventReport>;

/** A failed rule of a decision. */
export const Reason = z.object({
  policy: z.string().meta({ description: "policy id (vasp.lifecycle, vasp.default built in)" }),
  rule: z.string().meta({ description: "rule name" }),
  message: z.string().meta({ description: "why, for a human" }),
  effect: z.enum(["deny", "warn"]),
}).meta({ id: "Reason" });
/** A failed rule of a decision. */
export type Reason = z.infer<typeof Reason>;

const State = z.enum(LIFECYCLE_STATES);

/** The VM's state before, and the state an allowed operation leads to once done. */
export const Transition = z.object({
  from: State.nullable().meta({ description: "state before (null: unregistered)" }),
  to: State.nullable().meta({ description: "state after, once done (null: no move)" }),
}).meta({ id: "Transition" });
/** The VM's state before, and after. */
export type Transition = z.infer<typeof Transition>;

/** Actions a decision asks for, in escalating order. */
export const Actions = z.array(z.enum(ACTIONS)).meta({
  description: "asked actions; the hook, gate or monitor enforces pause and kill",
});

/** The answer of `POST /v1/decide`. */
export const DecisionAnswer = z.object({
  decision_id: z.string().meta({ description: "UUIDv7; the audit record carries it" }),
  allow: z.boolean(),
  reasons: z.array(Reason).meta({ description: "every failed rule, deny and warn" }),
  actions: Actions,
  policy_revision: z.string().meta({ description: "git commit or sha256:<hex> of the set" }),
  state: z.string().nullable().meta({
    description: `the VM's recorded state after (${
      LIFECYCLE_STATES.join(", ")
    }; null: unregistered)`,
  }),
  transition: Transition,
  vasp: z.record(z.string(), z.unknown()).optional().meta({
    description: "what the vASP side did: instance_id, counter, created, vboot, snapshot, " +
      "imported, destroyed",
  }),
}).meta({ id: "Decision", description: "a decision" });
/** The answer of `POST /v1/decide`. */
export type DecisionAnswer = z.infer<typeof DecisionAnswer>;

/** The answer of `POST /v1/events`. */
export const EventAnswer = z.object({
  event_id: z.string().meta({ description: "UUIDv7; the audit record carries it" }),
  state: z.string().meta({
    description: `the recorded state after the event (${LIFECYCLE_STATES.join(", ")}; ` +
      '"unknown": unregistered)',
  }),
  from: z.string().meta({ description: "the recorded state before" }),
  applied: z.boolean().meta({ description: "whether the recorded state followed the event" }),
  expected: z.boolean().meta({
    description: "false when the life cycle has no such step (the gate was bypassed)",
  }),
}).meta({ id: "EventAnswer", description: "an event recorded" });
/** The answer of `POST /v1/events`. */
export type EventAnswer = z.infer<typeof EventAnswer>;
