/**
 * `camblet-agent` / `run` / `agent`: the daemon.
 *
 * @module
 */
import type { Command } from "commander";
import { logger } from "../log.ts";
import { addAgentOptions, resolveConfig } from "./options.ts";
import { loadPayloads } from "./load_payloads.ts";

const HELP = `
Description:
  Runs the agent: opens the camblet-driver device, pushes the trust domain, services and
  policies, then answers the kernel's requests (process labels, certificate signing) and reloads
  policies and services when their files change or on SIGHUP.

Examples:
  camblet-agent run
  camblet-agent --ca vault --trust-domain acme.corp
  camblet-agent agent --policies-path /etc/camblet/policies --services-path /etc/camblet/services
`;

/** Starts the daemon with the options of `cmd`. */
export async function runDaemon(cmd: Command): Promise<void> {
  const log = logger("daemon");
  const loaded = await resolveConfig(cmd);
  const { config, file } = loaded;
  log.info("Configuration loaded", {
    file: file ?? "(defaults)",
    trustDomain: config.agent.trustDomain,
  });
  const { payloads } = await loadPayloads(loaded);
  log.info("Policies and services valid", {
    policies: payloads.load_policies.policies.length,
    services: Object.keys(payloads.load_sd_info).length,
  });
  // The kernel link arrives with the daemon; until then `run` stops after validation.
  console.log(
    `camblet-agent: configuration valid (${payloads.load_policies.policies.length} policies, ${
      Object.keys(payloads.load_sd_info).length
    } service addresses); the kernel link is not built yet, so the agent stops here.`,
  );
}

/** Registers `run` and its Camblet alias `agent`, and makes the daemon the default action. */
export function registerRun(program: Command): void {
  addAgentOptions(program).action((_opts, cmd: Command) => runDaemon(cmd));
  for (const name of ["run", "agent"]) {
    addAgentOptions(
      program.command(name).description(
        name === "run"
          ? "run the agent daemon (the default)"
          : "run the agent daemon (Camblet name)",
      ),
    ).addHelpText("after", HELP).action((_opts, cmd: Command) => runDaemon(cmd));
  }
}
