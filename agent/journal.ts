/**
 * journald's stream protocol: when systemd connects stderr to the journal it sets
 * `JOURNAL_STREAM=<dev>:<inode>` of that stream, and a line starting with `<N>` is logged at syslog
 * priority N. The log sink prefixes each record so `journalctl -p warning` shows the agent's warnings.
 *
 * @module
 */
import type { LogLevel } from "@logtape/logtape";

const PRIORITY: Record<LogLevel, number> = {
  trace: 7,
  debug: 7,
  info: 6,
  warning: 4,
  error: 3,
  fatal: 2,
};

/**
 * The syslog priority of a LogTape level (debug 7, info 6, warning 4, error 3, fatal 2).
 *
 * @example
 * ```ts
 * import { journalPriority } from "./journal.ts";
 * journalPriority("warning"); // 4
 * ```
 */
export function journalPriority(level: LogLevel): number {
  return PRIORITY[level];
}

/**
 * Whether stderr is the stream systemd named in `JOURNAL_STREAM` (compared by device and inode,
 * so a child whose stderr was redirected elsewhere does not print `<N>` into a file).
 *
 * @example
 * ```ts
 * import { stderrIsJournal } from "./journal.ts";
 * stderrIsJournal(undefined); // false
 * ```
 */
export function stderrIsJournal(journalStream = Deno.env.get("JOURNAL_STREAM")): boolean {
  const m = /^(\d+):(\d+)$/.exec(journalStream ?? "");
  if (!m) return false;
  try {
    const st = Deno.statSync("/proc/self/fd/2");
    return st.dev === Number(m[1]) && st.ino === Number(m[2]);
  } catch {
    return false;
  }
}

/**
 * The prefix for a record on stderr: `<N>` when stderr is the journal, else empty.
 *
 * @example
 * ```ts
 * import { journalPrefixer } from "./journal.ts";
 * journalPrefixer(false)("error"); // ""
 * journalPrefixer(true)("error"); // "<3>"
 * ```
 */
export function journalPrefixer(toJournal = stderrIsJournal()): (level: LogLevel) => string {
  return toJournal ? (level) => `<${journalPriority(level)}>` : () => "";
}
