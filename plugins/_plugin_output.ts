/**
 * Reading an external plugin's two output streams: stdout carries JSON-RPC answers (bounded in
 * size and depth; a plugin that floods it with other lines is killed), stderr is its log
 * (truncated lines, a rate limit, the rest counted).
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { LineTooLongError, readLines } from "./sdk/_lines.ts";
import type { RpcErrorObject } from "./sdk/protocol.ts";
import { LogBudget, timeSlices } from "./_pacing.ts";
import { jsonDeeperThan } from "../driver/json_depth.ts";

/** Longest stderr line logged; the rest of a longer line is dropped. */
const MAX_STDERR_LINE_BYTES = 16 * 1024;
/** Stderr lines logged per second at most; the others are counted and reported. */
const MAX_STDERR_LINES_PER_SECOND = 50;
/** Stdout lines that are not JSON-RPC logged per second at most. */
const MAX_BAD_STDOUT_LINES_PER_SECOND = 5;
/** More stdout lines than this in a second that are not JSON-RPC: the plugin is killed. */
const KILL_BAD_STDOUT_LINES_PER_SECOND = 100;
/** Deepest nesting of a message; protocol messages need a few levels, parsing deep ones is slow. */
const MAX_MESSAGE_DEPTH = 64;

/** One JSON-RPC answer as read from stdout (not yet matched to a call). */
export interface RpcAnswer {
  id?: unknown;
  result?: unknown;
  error?: RpcErrorObject;
}

/** What {@linkcode readRpcAnswers} needs from the process it reads. */
export interface StdoutReader {
  stream: ReadableStream<Uint8Array>;
  maxMessageBytes: number;
  signal: AbortSignal;
  log: Logger;
  onAnswer(msg: RpcAnswer): void;
  /** Kills the plugin for `reason`; reading stops after it. */
  kill(reason: string): void;
}

/** Reads JSON-RPC answers from a plugin's stdout until it closes or the plugin is killed. */
export async function readRpcAnswers(r: StdoutReader): Promise<void> {
  const limit = r.maxMessageBytes;
  const budget = new LogBudget(MAX_BAD_STDOUT_LINES_PER_SECOND, (dropped) => {
    r.log.warn("Plugin stdout lines that are not JSON-RPC not logged", { dropped });
  });
  try {
    const lines = readLines(r.stream, { maxLineBytes: limit, signal: r.signal });
    const yieldNow = timeSlices();
    for await (const line of lines) {
      await yieldNow();
      if (line.trim() === "") continue;
      if (jsonDeeperThan(line, MAX_MESSAGE_DEPTH)) {
        r.log.error("Plugin wrote a message nested too deep on stdout; killing it", {
          maxDepth: MAX_MESSAGE_DEPTH,
        });
        r.kill(`wrote a message nested deeper than ${MAX_MESSAGE_DEPTH} levels`);
        return;
      }
      let msg: RpcAnswer;
      try {
        msg = JSON.parse(line);
      } catch {
        const logIt = budget.take();
        if (budget.used > KILL_BAD_STDOUT_LINES_PER_SECOND) {
          budget.flush();
          r.log.error("Plugin floods stdout with lines that are not JSON-RPC; killing it", {
            linesPerSecond: budget.used,
          });
          r.kill(
            `wrote over ${KILL_BAD_STDOUT_LINES_PER_SECOND} lines a second that are not JSON-RPC`,
          );
          return;
        }
        if (!logIt) continue;
        r.log.warn("Plugin wrote a line that is not JSON-RPC on stdout", {
          line: line.length > 200 ? `${line.slice(0, 200)}…` : line,
          bytes: line.length,
        });
        continue;
      }
      if (typeof msg === "object" && msg !== null) r.onAnswer(msg);
    }
    budget.flush();
  } catch (e) {
    budget.flush();
    if (!(e instanceof LineTooLongError)) return; // stream closed
    r.log.error("Plugin wrote a message over the limit on stdout; killing it", {
      limitBytes: limit,
    });
    r.kill(`wrote a message over ${limit} bytes`);
  }
}

/** Logs a plugin's stderr, line by line, at a bounded rate, until it closes. */
export async function logStderr(
  stream: ReadableStream<Uint8Array>,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  const budget = new LogBudget(MAX_STDERR_LINES_PER_SECOND, (dropped) => {
    log.warn("Plugin stderr lines not logged", { dropped });
  });
  try {
    const lines = readLines(stream, {
      maxLineBytes: MAX_STDERR_LINE_BYTES,
      overflow: "truncate",
      signal,
    });
    const yieldNow = timeSlices();
    for await (const line of lines) {
      await yieldNow();
      if (line.trim() !== "" && budget.take()) log.info("{line}", { line, stream: "stderr" });
    }
  } catch { /* stream closed */ }
  budget.flush();
}
