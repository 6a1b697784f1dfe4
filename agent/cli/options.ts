/**
 * The agent flags shared by `run`, `validate`, `explain` and friends, and their mapping onto
 * config paths. Flags carry no commander defaults, so env and the config file can fill them; the
 * defaults shown in help come from the config schema.
 *
 * @module
 */
import { type Command, Option } from "commander";
import { loadConfig, type LoadedConfig } from "../config/load.ts";
import { UsageError } from "../errors.ts";

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(",").map((s) => s.trim()).filter(Boolean)];
}

/** Commander option key → config path. */
const FLAG_PATHS: Record<string, string> = {
  kernelModuleDevice: "agent.kernelModuleDevice",
  driver: "agent.driver",
  failClosed: "agent.proxy.failClosed",
  guardFailClosed: "agent.guard.failClosed",
  policiesPath: "agent.policiesPath",
  servicesPath: "agent.servicesPath",
  trustDomain: "agent.trustDomain",
  defaultCertTtl: "agent.defaultCertTTL",
  caPemPath: "agent.caPEMPath",
  ca: "agent.ca",
  controlSocket: "agent.controlSocket",
  metricsAddress: "agent.metricsAddress",
};

/** Config path → `--flag-name`, for messages. */
const FLAG_NAMES: Record<string, string> = Object.fromEntries(
  Object.entries(FLAG_PATHS).map(([key, path]) => [
    path,
    "--" + key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase()),
  ]),
);

/** Every agent flag, in help order; `policy` marks those that loading policies and services reads. */
const AGENT_OPTIONS: { option: () => Option; policy: boolean }[] = [
  {
    policy: false,
    option: () =>
      new Option("--kernel-module-device <path>", "camblet-driver device (default: /dev/camblet)"),
  },
  {
    policy: false,
    option: () =>
      new Option(
        "--driver <kind>",
        "data plane: kernel (camblet-driver), proxy (eBPF + mTLS proxy, no module) or auto " +
          "(kernel when its device exists) (default: auto)",
      ).choices(["auto", "kernel", "proxy"]),
  },
  {
    policy: false,
    option: () =>
      new Option(
        "--fail-closed",
        "proxy data plane: refuse protected connections while no agent serves (default: off)",
      ),
  },
  {
    policy: false,
    option: () =>
      new Option(
        "--guard-fail-closed",
        "runtime guard: keep the last rules enforced (pinned) while no agent runs (default: off)",
      ),
  },
  {
    policy: true,
    option: () =>
      new Option(
        "--policies-path <path>",
        "policy file or directory; repeatable or comma-separated (default: /etc/camblet/policies)",
      ).argParser(collect),
  },
  {
    policy: true,
    option: () =>
      new Option(
        "--services-path <path>",
        "service file or directory; repeatable or comma-separated (default: /etc/camblet/services)",
      ).argParser(collect),
  },
  {
    policy: true,
    option: () => new Option("--trust-domain <name>", "SPIFFE trust domain (default: camblet)"),
  },
  {
    policy: true,
    option: () =>
      new Option(
        "--default-cert-ttl <duration>",
        "certificate TTL when a policy has none (default: 24h)",
      ),
  },
  {
    policy: false,
    option: () =>
      new Option("--ca-pem-path <path>", "self-signed CA file (default: /etc/camblet/ca.pem)"),
  },
  {
    policy: false,
    option: () =>
      new Option(
        "--ca <plugin>",
        "CA plugin: self-signed, vault, spire or external (default: self-signed)",
      ),
  },
  {
    policy: false,
    option: () =>
      new Option(
        "--control-socket <path>",
        "local control socket (default: /run/camblet/agent.sock)",
      ),
  },
  {
    policy: false,
    option: () =>
      new Option(
        "--metrics-address <host:port>",
        "also serve /metrics on TCP, unauthenticated (default: off; ':9090' alone is loopback)",
      ),
  },
];

/** Adds the Go agent's flags (same names and defaults) plus ours to `cmd`: the daemon's set. */
export function addAgentOptions(cmd: Command): Command {
  for (const { option } of AGENT_OPTIONS) cmd.addOption(option());
  return cmd;
}

/**
 * Adds only the flags that loading policies and services reads (paths, trust domain, default
 * TTL), plus `extra` by long name (e.g. `--control-socket`): for commands that never start the
 * daemon, so their help lists no daemon-only flags. The others still come from config and env.
 */
export function addPolicyOptions(cmd: Command, extra: readonly string[] = []): Command {
  for (const { option, policy } of AGENT_OPTIONS) {
    const o = option();
    if (policy || extra.includes(o.long ?? "")) cmd.addOption(o);
  }
  return cmd;
}

/** Maps the agent flags the user set onto config paths. */
export function flagValues(opts: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [flag, path] of Object.entries(FLAG_PATHS)) {
    if (opts[flag] !== undefined) out[path] = opts[flag];
  }
  return out;
}

/** Loads the config for a command: `--config`/`CONFIG`, `AGENT_*` env, and the command's flags. */
export function resolveConfig(cmd: Command): Promise<LoadedConfig> {
  const opts = cmd.optsWithGlobals() as Record<string, unknown>;
  const configPath = (opts["config"] as string | undefined) ?? Deno.env.get("CONFIG");
  return loadConfig({ configPath, flags: flagValues(opts), flagNames: FLAG_NAMES });
}

/** A usage error that carries the command's help, so `main.ts` can show it. */
export function usageError(cmd: Command, message: string): UsageError {
  const err = new UsageError(message);
  (err as UsageError & { help?: string }).help = cmd.helpInformation();
  return err;
}

/** Reads `--output` and refuses unknown formats. */
export function outputFormat<T extends string>(
  cmd: Command,
  value: unknown,
  allowed: readonly T[],
): T {
  const v = (value ?? allowed[0]) as T;
  if (!allowed.includes(v)) {
    throw usageError(cmd, `--output must be one of ${allowed.join(", ")}, got "${String(value)}"`);
  }
  return v;
}
