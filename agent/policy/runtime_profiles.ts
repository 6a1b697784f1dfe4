/**
 * The built-in runtime profiles a policy's `runtime.profiles` names: reusable rule sets, applied
 * in order before the policy's own rules (which override them).
 *
 * @module
 */

/** A capability a runtime rule set can deny as a whole. */
export const CAPABILITIES = [
  "ptrace",
  "syslog",
  "mount",
  "modules",
  "bpf",
  "rawSockets",
  "setuidRoot",
] as const;
/** One of {@linkcode CAPABILITIES}. */
export type Capability = (typeof CAPABILITIES)[number];

/** A profile's rules: the same fields as a policy's `runtime:` section, minus mode/profiles. */
export interface RuntimeProfile {
  description: string;
  exec?: { allow?: string[]; deny?: string[] };
  files?: { denyRead?: string[]; denyWrite?: string[] };
  capabilities?: Partial<Record<Capability, "deny" | "allow">>;
}

const BASELINE: RuntimeProfile = {
  description: "no kernel log, no kernel module or firmware load, no bpf(), no mount, " +
    "no ptrace of other processes",
  capabilities: { syslog: "deny", modules: "deny", bpf: "deny", mount: "deny", ptrace: "deny" },
};

/** The built-in profiles, by name (null prototype: keyed by user input). */
export const BUILTIN_PROFILES: Readonly<Record<string, RuntimeProfile>> = Object.freeze(
  Object.assign(Object.create(null) as Record<string, RuntimeProfile>, {
    baseline: BASELINE,
    restricted: {
      description: "baseline, plus no raw or packet sockets, no setuid to root, no reading " +
        "password hashes, no writes below /etc, /usr, /boot or /lib (containers)",
      files: {
        denyRead: ["/etc/shadow", "/etc/gshadow"],
        denyWrite: ["/etc/", "/usr/", "/boot/", "/lib/"],
      },
      capabilities: { ...BASELINE.capabilities, rawSockets: "deny", setuidRoot: "deny" },
    },
  }),
);

/** Names of the built-in profiles, sorted. */
export function profileNames(): string[] {
  return Object.keys(BUILTIN_PROFILES).sort();
}
