/**
 * Messages between the main thread ({@linkcode KernelLink}) and the kernel worker. Plain data:
 * everything here crosses `postMessage`.
 *
 * @module
 */
import type { CsrSignData, LogMessage } from "./codec.ts";
import type { Level } from "./dispatcher.ts";
import type { TaskContext } from "./payloads.ts";
import type { StatsSnapshot } from "./stats.ts";
import type { WriterStats } from "./transport.ts";

/** Worker name of the kernel worker. */
export const KERNEL_WORKER_NAME = "camblet-kernel";

/** Start options the main thread sends once. */
export interface StartOptions {
  device: string;
  watchdogMs?: number;
  augmentBudgetMs?: number;
  maxLineBytes?: number;
  /** Passed to the worker entry's setup function (e.g. what its refusal builder needs). */
  setup?: unknown;
}

/** A handler call's outcome. */
export type CallResult =
  | { t: "result"; rid: number; ok: true; value: unknown }
  | { t: "result"; rid: number; ok: false; error: string };

/** A handler call the kernel worker asks the main thread for. */
export type CallRequest =
  | { t: "call"; rid: number; method: "augment"; task: TaskContext }
  | {
    t: "call";
    rid: number;
    method: "csrSign";
    task: TaskContext;
    data: CsrSignData;
    id?: string;
  };

/** Main → kernel worker. `results`: those settled in one turn, in one message (a burst's hops). */
export type ToWorker =
  | { t: "start"; options: StartOptions }
  | CallResult
  | { t: "results"; results: CallResult[] }
  | { t: "push"; pid: number; line: string; what: string; key?: string }
  | { t: "stats"; sid: number }
  | { t: "close" };

/** Kernel worker → main. `calls`: those started in one turn (a read's requests), in one message. */
export type FromWorker =
  | { t: "opened" }
  | { t: "open_failed"; message: string; code: string }
  | CallRequest
  | { t: "calls"; calls: CallRequest[] }
  | { t: "abort"; rid: number }
  | { t: "log"; message: LogMessage }
  | { t: "event"; level: Level; message: string; props: Record<string, unknown> }
  | { t: "pushed"; pid: number; ok: true }
  | {
    t: "pushed";
    pid: number;
    ok: false;
    error: string;
    tooLarge?: { bytes: number; limit: number };
  }
  | { t: "stats"; sid: number; dispatch: StatsSnapshot; writer: WriterStats }
  | { t: "ended"; reason: string; message?: string }
  | { t: "closed" };
