/**
 * libvirt's domain events, followed through libvirt's own client: a `virsh event --all
 * --loop` child whose lines name the domain and the event. Define and undefine reach no
 * libvirt hook, so this is how the server learns of them. The child is restarted when it dies
 * (libvirtd restarting, not running yet), with a growing delay; a host without libvirt only
 * costs a retry now and then.
 *
 * @module
 */
import type { Logger } from "../engine/mod.ts";

/** A domain life-cycle event as `virsh event` prints it. */
export interface DomainEvent {
  /** The domain's name. */
  readonly name: string;
  /** The event, e.g. `Defined`, `Undefined`, `Started`, `Stopped`. */
  readonly event: string;
  /** Its detail, e.g. `Added`, `Updated`, `Removed`, `Destroyed`. */
  readonly detail: string;
}

/**
 * Reads one line of `virsh event --all --loop` output.
 *
 * @param line e.g. `event 'lifecycle' for domain 'web-1': Undefined Removed`
 * @returns the life-cycle event, or `null` for any other line
 * @example
 * ```ts
 * import { parseDomainEvent } from "./libvirt_events.ts";
 * const e = parseDomainEvent("event 'lifecycle' for domain 'web-1': Defined Added");
 * if (e?.name !== "web-1" || e.event !== "Defined" || e.detail !== "Added") throw new Error();
 * ```
 */
export function parseDomainEvent(line: string): DomainEvent | null {
  const m = /^event 'lifecycle' for domain '(.*)': (\S+) (\S+)$/.exec(line.trim());
  return m ? { name: m[1]!, event: m[2]!, detail: m[3]! } : null;
}

/** Options of {@link followDomainEvents}. */
export interface DomainEventOptions {
  /** The libvirt connection URI (default `qemu:///system`). */
  readonly uri?: string;
  /** The `virsh` program (default: `virsh` on PATH). */
  readonly virsh?: string;
  /** Where the watcher says it lost or regained libvirt. */
  readonly log: Logger;
  /** The longest wait between restarts, in ms (default 30 000). */
  readonly maxBackoffMs?: number;
}

/** A running follower; `stop()` ends it. */
export interface DomainEventFollower {
  /** Ends the child and stops restarting it. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Follows libvirt's domain life-cycle events, calling `onEvent` for each, one at a time in
 * order (the next waits for the previous to settle; a failure is logged, not fatal).
 *
 * @param onEvent what to do with an event
 * @param options URI, virsh, logger
 * @returns the follower
 */
export function followDomainEvents(
  onEvent: (event: DomainEvent) => Promise<void>,
  options: DomainEventOptions,
): DomainEventFollower {
  const uri = options.uri ?? "qemu:///system";
  const maxBackoff = options.maxBackoffMs ?? 30_000;
  let child: Deno.ChildProcess | undefined;
  let stopped = false;
  let wake: (() => void) | undefined;
  let queue = Promise.resolve();
  const run = async () => {
    let backoff = 500;
    let warned = false;
    while (!stopped) {
      const started = Date.now();
      let why: string;
      try {
        child = new Deno.Command(options.virsh ?? "virsh", {
          args: ["-q", "-c", uri, "event", "--all", "--loop"],
          stdin: "null",
          stdout: "piped",
          stderr: "null",
        }).spawn();
        let rest = "";
        for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
          rest += chunk;
          const lines = rest.split("\n");
          rest = lines.pop()!;
          for (const event of lines.map(parseDomainEvent)) {
            if (!event) continue;
            queue = queue.then(() => onEvent(event)).catch((error) =>
              options.log.log("error", "cannot handle a libvirt domain event", {
                vm: event.name,
                event: `${event.event} ${event.detail}`,
                error: error instanceof Error ? error.message : String(error),
              })
            );
          }
        }
        why = `virsh exited with ${(await child.status).code}`;
      } catch (error) {
        why = error instanceof Error ? error.message : String(error);
      }
      child = undefined;
      if (stopped) break;
      if (!warned) {
        options.log.log("warn", "not following libvirt domain events; retrying", { uri, why });
        warned = true;
      }
      // A child that ran a while lost libvirt (it restarted): start again quickly.
      backoff = Date.now() - started > maxBackoff ? 500 : Math.min(backoff * 2, maxBackoff);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, backoff);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };
  const done = run();
  let stopping: Promise<void> | undefined;
  return {
    stop: () =>
      stopping ??= (async () => {
        stopped = true;
        wake?.();
        try {
          child?.kill("SIGTERM");
        } catch {
          // already gone
        }
        await done;
        await queue;
      })(),
  };
}
