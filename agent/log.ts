/**
 * Logging. Libraries and plugins take a scoped logger from {@linkcode logger}; only `main.ts`
 * configures sinks ({@linkcode configureLogging}). Secrets are redacted by the sink.
 *
 * @module
 */
import { configure, getLogger, type Logger, type LogLevel, type LogRecord } from "@logtape/logtape";
import { journalPrefixer } from "./journal.ts";

/** A scoped logger under `camblet`, e.g. `logger("plugin", "ca", "vault")`. */
export function logger(...category: string[]): Logger {
  return getLogger(["camblet", ...category]);
}

const SECRET_KEY = /token|secret|password|passwd|private|key$|^key|credential|authorization/i;

/** Replaces values of secret-looking properties; exported for tests. */
export function redact(props: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(props)) {
    out[k] = SECRET_KEY.test(k) && v !== undefined && v !== null && typeof v !== "boolean"
      ? "[REDACTED]"
      : v;
  }
  return out;
}

function fmtValue(v: unknown): string {
  if (typeof v === "string") return /[\s"=]/.test(v) || v === "" ? JSON.stringify(v) : v;
  if (v instanceof Error) return JSON.stringify(v.message);
  return JSON.stringify(v) ?? String(v);
}

/** logfmt line: `2026-11-22T05:00:00.000Z INFO camblet.daemon msg="…" key=value`. */
export function formatRecord(record: LogRecord): string {
  const msg = record.message.map((m) => typeof m === "string" ? m : fmtValue(m)).join("");
  const props = Object.entries(redact(record.properties))
    .map(([k, v]) => `${k}=${fmtValue(v)}`).join(" ");
  return `${new Date(record.timestamp).toISOString()} ${record.level.toUpperCase()} ${
    record.category.join(".")
  } ${JSON.stringify(msg)}${props ? " " + props : ""}\n`;
}

/** Maps the Go agent's `-v` verbosity (0 = info, 1+ = debug) or `quiet` to a level. */
export function levelFor(verbosity: number): LogLevel {
  if (verbosity < 0) return "warning";
  return verbosity >= 1 ? "debug" : "info";
}

/** Sends records to stderr. Called once, by `main.ts`. */
export async function configureLogging(level: LogLevel): Promise<void> {
  const enc = new TextEncoder();
  const prefix = journalPrefixer(); // "<N>" priorities when stderr is journald's stream
  await configure({
    reset: true,
    sinks: {
      stderr: (r: LogRecord) =>
        Deno.stderr.writeSync(enc.encode(prefix(r.level) + formatRecord(r))),
    },
    loggers: [
      { category: ["camblet"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}
