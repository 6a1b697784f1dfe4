/**
 * The `camblet-agent` command tree: one parse, a table of subcommand modules.
 *
 * @module
 */
import { Command, InvalidArgumentError } from "commander";
import { VERSION } from "../version.ts";
import { registerRun } from "./run.ts";
import { registerVersion } from "./version.ts";
import { registerValidate } from "./validate.ts";
import { registerSchema } from "./schema.ts";
import { registerExplain } from "./explain.ts";
import { registerCa } from "./ca.ts";
import { registerAugment } from "./augment.ts";
import { registerGeneratePolicy } from "./generate_policy.ts";
import { registerStatus } from "./status.ts";
import { registerTrace } from "./trace.ts";
import { registerSources } from "./sources.ts";

/** Subcommand registrars, in the order `--help` lists them. */
const SUBCOMMANDS: ((program: Command) => void)[] = [
  registerRun,
  registerStatus,
  registerTrace,
  registerSources,
  registerValidate,
  registerExplain,
  registerAugment,
  registerGeneratePolicy,
  registerSchema,
  registerCa,
  registerVersion,
];

const ROOT_HELP = `
Description:
  camblet-agent is the user-space half of Camblet: the camblet-driver kernel module gives every
  TCP connection of a host mutual TLS with a SPIFFE identity, and this agent tells the kernel who
  each process is (labels), signs workload certificates and pushes policies and services.

  With no command, the agent runs as a daemon (the same as "run" or "agent").

Files:
  /etc/camblet/config.yaml   configuration (agent.* keys, as the Camblet Go agent)
  /etc/camblet/policies/     policy YAML (*.yaml, *.yml, *.json)
  /etc/camblet/services/     service YAML
  /etc/camblet/ca.pem        self-signed CA (created on first start)

Environment:
  CONFIG, VERBOSITY          as --config and -v
  AGENT_<KEY>                any agent.* key, e.g. AGENT_TRUSTDOMAIN=acme.corp

Exit status:
  0 success, 1 failure, 2 usage error

Examples:
  camblet-agent --ca vault                        run the daemon with the Vault CA
  camblet-agent validate --policies-path ./policies
  camblet-agent explain --label process:name=curl --direction output --port 8000
  camblet-agent schema policy > policy.schema.json
`;

/** Builds the program. Errors surface as exceptions (`exitOverride`) for `main.ts` to map. */
export function buildProgram(): Command {
  const program = new Command("camblet-agent")
    .description("Camblet agent: workload identity and mTLS policy for camblet-driver")
    .version(VERSION, "--version", "print the version and exit")
    .option(
      "--config <file>",
      "config file (default: ./config.yaml, then /etc/camblet/config.yaml)",
    )
    .option(
      "-v, --verbosity <level>",
      "log verbosity: 0 = info, 1 or more = debug",
      (v: string) => {
        const n = Number(v);
        if (!Number.isInteger(n)) {
          throw new InvalidArgumentError(`verbosity must be an integer, got "${v}"`);
        }
        return n;
      },
    )
    .exitOverride()
    .showHelpAfterError()
    .configureHelp({ sortSubcommands: false })
    .addHelpText("after", ROOT_HELP);
  for (const register of SUBCOMMANDS) register(program);
  // The root carries the daemon's flags too, so listing "global options" would repeat them.
  for (const sub of program.commands) {
    sub.addHelpText(
      "after",
      "\nGlobal options: --config <file>, -v/--verbosity <level> (see camblet-agent --help)",
    );
  }
  return program;
}
