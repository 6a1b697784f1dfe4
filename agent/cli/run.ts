/**
 * `camblet-agent` / `run` / `agent`: the daemon.
 *
 * @module
 */
import type { Command } from "commander";
import { logger } from "../log.ts";
import { addAgentOptions, resolveConfig } from "./options.ts";
import { Daemon } from "../daemon/daemon.ts";
import { watchLaunchers } from "./launcher.ts";

const HELP = `
Description:
  Runs the agent. With the camblet-driver kernel module (/dev/camblet) it pushes the trust
  domain, services and policies to the kernel and answers its requests (process labels,
  certificate signing). Without it (--driver auto picks this, or --driver proxy) it protects the
  same connections itself: eBPF programs steer connections to services and to local ports that
  inbound policies protect into the agent, which speaks mTLS with the workloads' SPIFFE
  certificates. Policies and services reload when their files change or on SIGHUP.

  The proxy data plane fails open: when the agent stops, its BPF programs detach and traffic
  flows directly, unprotected. --fail-closed keeps them pinned in agent.proxy.pinDir so
  protected connections are refused until an agent serves again (remove the directory to lift).

Examples:
  camblet-agent run
  camblet-agent --driver proxy --fail-closed
  camblet-agent --ca vault --trust-domain acme.corp
  camblet-agent agent --policies-path /etc/camblet/policies --services-path /etc/camblet/services
`;

/** Starts the daemon with the options of `cmd` and runs it until it stops. */
export async function runDaemon(cmd: Command): Promise<void> {
  const log = logger("daemon");
  const loaded = await resolveConfig(cmd);
  log.info("Configuration loaded", {
    file: loaded.file ?? "(defaults)",
    trustDomain: loaded.config.agent.trustDomain,
    driver: loaded.config.agent.driver,
  });
  const daemon = await Daemon.start({ loaded, reloadConfig: () => resolveConfig(cmd) });
  // Under `npx … task start` a SIGTERM to npx never reaches us: stop when the launcher dies.
  const unwatch = watchLaunchers((l) => {
    log.warn("Launcher exited; stopping", { pid: l.pid, command: l.command });
    void daemon.stop(`launcher pid ${l.pid} exited`, 0);
  });
  const exit = await daemon.done.finally(unwatch);
  // SIGTERM/SIGINT end with 0; a lost kernel link is a failure (the Go agent exited 0 here).
  if (exit.code !== 0) throw new Error(`camblet-agent stopped: ${exit.reason}`);
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
