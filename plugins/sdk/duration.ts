/**
 * Go-style durations (`24h`, `1h30m`, `3600s`, `1.5h`) as used by Camblet config, policies and
 * plugin configs. It lives in the SDK so plugins and the agent share it without importing agent code.
 *
 * @module
 */

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)/y;

/**
 * Parses a Go duration string into milliseconds. `d` (days) is accepted as an extension.
 * Throws `SyntaxError` naming the value when it cannot be read.
 *
 * @example
 * ```ts
 * import { parseDuration } from "./duration.ts";
 * parseDuration("1h30m"); // 5400000
 * ```
 */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === "0") return 0;
  if (s === "") throw new SyntaxError(`Cannot parse duration "${text}": empty`);
  let ms = 0;
  PART.lastIndex = 0;
  let pos = 0;
  while (pos < s.length) {
    PART.lastIndex = pos;
    const m = PART.exec(s);
    if (!m) {
      throw new SyntaxError(
        `Cannot parse duration "${text}": expected a number with a unit (h, m, s, ms), e.g. "24h" or "3600s"`,
      );
    }
    ms += Number(m[1]) * UNIT_MS[m[2]!]!;
    pos = PART.lastIndex;
  }
  return ms;
}

/**
 * Formats milliseconds the way the kernel reads a TTL: whole seconds with an `s` suffix
 * (protobuf Duration JSON). Rounds up so a TTL never shrinks to zero.
 *
 * @example
 * ```ts
 * import { formatKernelTtl } from "./duration.ts";
 * formatKernelTtl(3_600_000); // "3600s"
 * ```
 */
export function formatKernelTtl(ms: number): string {
  return `${Math.ceil(ms / 1000)}s`;
}

/** Formats milliseconds for humans: `1h30m`, `90s`, `250ms`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  let s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h ? h + "h" : ""}${m ? m + "m" : ""}${s || (!h && !m) ? s + "s" : ""}`;
}
