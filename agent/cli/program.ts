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
import { registerEvents } from "./events.ts";
import { registerAudit } from "./audit.ts";
import { registerExplainRuntime } from "./explain_runtime.ts";
import { registerSources } from "./sources.ts";
import { registerCompletion } from "./completion.ts";
import { registerManPage } from "./manpage.ts";
import { UsageError } from "../errors.ts";
import { closest } from "./suggest.ts";

/** Subcommand registrars, in the order `--help` lists them; a new command adds one line. */
const SUBCOMMANDS: ((program: Command) => void)[] = [
  registerRun,
  registerStatus,
  registerTrace,
  registerEvents,
  registerAudit,
  registerSources,
  registerValidate,
  registerExplain,
  registerExplainRuntime,
  registerAugment,
  registerGeneratePolicy,
  registerSchema,
  registerCa,
  registerVersion,
  registerCompletion,
  registerManPage,
];

const ROOT_HELP = `
Description:
  camblet-agent gives every TCP connection between workloads on a Linux host mutual TLS with a
  SPIFFE identity. With the camblet-driver kernel module (/dev/camblet) it tells the kernel who
  each process is (labels), signs workload certificates and pushes policies and services. Without
  the module it runs its own proxy data plane: eBPF programs steer the same connections into the
  agent, which attests the process and speaks mTLS for it (--driver auto picks, and logs which).

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
    .description(
      "Camblet agent: workload identity and mTLS policy, through camblet-driver or its own " +
        "eBPF-steered proxy data plane",
    )
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
  // Operands on the root are a mistyped command, not the daemon's (it takes none): say so, and
  // suggest the closest name instead of "too many arguments" and the whole help.
  program.allowExcessArguments(true).hook("preAction", (_root, action) => {
    if (action !== program || program.args.length === 0) return;
    const word = program.args[0]!;
    const names = program.commands.flatMap((c) => [c.name(), ...c.aliases()]);
    const near = closest(word, names);
    throw new UsageError(
      `unknown command '${word}'` + (near ? `, did you mean '${near}'?` : "") +
        " (see camblet-agent --help)",
    );
  });
  // The root carries the daemon's flags too, so listing "global options" would repeat them.
  for (const sub of program.commands) {
    sub.addHelpText(
      "after",
      "\nGlobal options: --config <file>, -v/--verbosity <level> (see camblet-agent --help)",
    );
  }
  return program;
}
