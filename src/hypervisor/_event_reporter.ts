/**
 * Sends the gate's event reports one after another, off the QMP event stream: a slow or dead
 * decision server must never hold back an event on its way to the client.
 *
 * @module
 */
import type { EventAnswer, EventReport } from "../wire/mod.ts";
import { errorMessage } from "../engine/error.ts";

/** What the reporter needs of the decision server. */
export interface EventSink {
  /** Sends one report. */
  report(event: EventReport): Promise<EventAnswer>;
}

/** Reports kept when the server lags; older ones are dropped (and logged) past this. */
const MAX_QUEUED = 1024;
/** Event keys remembered for de-duplication: each client connection sees every event. */
const MAX_SEEN = 256;

/** An ordered, bounded, fire-and-forget queue of event reports. */
export class EventReporter {
  readonly #sink: EventSink;
  readonly #log: (line: string) => void;
  readonly #queue: EventReport[] = [];
  readonly #seen = new Set<string>();
  #running: Promise<void> | undefined;

  /**
   * @param sink where reports go
   * @param log where failures are written
   */
  constructor(sink: EventSink, log: (line: string) => void) {
    this.#sink = sink;
    this.#log = log;
  }

  /**
   * Queues a report; returns at once.
   *
   * @param report the event
   * @param key when given, a report whose key was already queued is dropped (the same QEMU
   *   event read on several connections)
   */
  enqueue(report: EventReport, key?: string): void {
    if (key !== undefined) {
      if (this.#seen.has(key)) return;
      this.#seen.add(key);
      if (this.#seen.size > MAX_SEEN) this.#seen.delete(this.#seen.values().next().value!);
    }
    if (this.#queue.length >= MAX_QUEUED) {
      const dropped = this.#queue.shift()!;
      this.#log(`qmp-gate: event queue full, dropped report of ${dropped.operation}`);
    }
    this.#queue.push(report);
    this.#running ??= this.#drain();
  }

  /**
   * Waits until every queued report has been sent or has failed.
   *
   * @returns when the queue is empty
   */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #drain(): Promise<void> {
    try {
      for (let report = this.#queue.shift(); report; report = this.#queue.shift()) {
        try {
          await this.#sink.report(report);
        } catch (error) {
          this.#log(
            `qmp-gate: could not report ${report.operation} (${report.outcome}): ${
              errorMessage(error)
            }`,
          );
        }
      }
    } finally {
      this.#running = undefined;
    }
  }
}
