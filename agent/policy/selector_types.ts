/**
 * Labels whose values have a type: the ports and addresses the kernel adds to every connection
 * and the ids of the process attestor. A policy selector on one of them must be a value the label
 * can take, written as the kernel (or the attestor) prints it, or it can never match.
 *
 * Only policy selectors are checked: egress selectors match service labels, which are free-form.
 *
 * @module
 */
import { ipKey } from "./address.ts";

/** What a typed label's values are. */
type LabelType = "direction" | "port" | "uid" | "pid" | "ip";

const TYPES = new Map<string, LabelType>([
  ["direction", "direction"],
  ["destination:port", "port"],
  ["source:port", "port"],
  ["destination:ip", "ip"],
  ["source:ip", "ip"],
  ["process:pid", "pid"],
  ...[
    "process:uid",
    "process:uid:real",
    "process:uid:effective",
    "process:gid",
    "process:gid:real",
    "process:gid:effective",
    "process:gid:additional",
  ].map((n) => [n, "uid"] as [string, LabelType]),
]);

const DECIMAL = /^(0|[1-9][0-9]*)$/;

function integer(
  value: string,
  what: string,
  min: number,
  max: number,
): { value: string } | { problem: string } {
  if (!DECIMAL.test(value)) {
    return { problem: `${what} ${JSON.stringify(value)} is not a whole number (${min}..${max})` };
  }
  const n = Number(value);
  if (n < min || n > max) return { problem: `${what} ${value} is outside ${min}..${max}` };
  return { value };
}

/**
 * Checks one selector value of label `name` (as written: the YAML literal for numbers). Returns
 * the value to compile, which for addresses is the kernel's printed form (IPv6 fully expanded),
 * or why it can never match. Labels without a type accept anything.
 *
 * @example
 * ```ts
 * import { checkSelectorValue } from "./selector_types.ts";
 * checkSelectorValue("destination:port", "80000"); // { problem: "port 80000 is outside 1..65535" }
 * checkSelectorValue("destination:ip", "::1"); // { value: "0000:0000:0000:0000:0000:0000:0000:0001" }
 * ```
 */
export function checkSelectorValue(
  name: string,
  value: string,
): { value: string } | { problem: string } {
  switch (TYPES.get(name)) {
    case undefined:
      return { value };
    case "direction":
      return value === "input" || value === "output"
        ? { value }
        : { problem: `direction ${JSON.stringify(value)} is neither input nor output` };
    case "port":
      return integer(value, "port", 1, 65535);
    case "uid":
      // 4294967295 is (uid_t)-1, "no id"; the kernel never gives it to a task.
      return integer(value, name.startsWith("process:gid") ? "gid" : "uid", 0, 4294967294);
    case "pid":
      return integer(value, "pid", 1, 4194304); // PID_MAX_LIMIT
    case "ip": {
      const key = ipKey(value);
      if (key !== undefined) return { value: key };
      const hint = value.includes("/")
        ? "; selectors match one address exactly, not a CIDR range"
        : value.includes("%")
        ? "; the kernel prints no zone"
        : "";
      return { problem: `${JSON.stringify(value)} is not an IPv4 or IPv6 address${hint}` };
    }
  }
}
