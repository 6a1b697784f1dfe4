/**
 * `camblet-agent explain runtime`: which runtime rules (the policies' `runtime:` sections) apply
 * to a process, given by pid (attested here, as the agent would) or by labels, and why: the
 * policy and selector that matched, how the kernel finds the workload (cgroup or task storage),
 * each rule with the profile or policy it came from, the canonical paths the kernel compares,
 * and the runtime policies that matched but lost.
 *
 * @module
 */
import { type Command, Option } from "commander";
import { addPolicyOptions } from "./options.ts";

const HELP = `
Description:
  Shows which runtime policy the runtime guard applies to a process and why. With --pid the
  process is attested here with the configured attestors (run it as root to see every label);
  with --label/--labels-file the labels are taken as given. Prints the winning policy, the
  selector map and labels that matched, the key the kernel uses (the cgroup for container and
  unit labels, else the process's task storage, inherited by its children), every rule with
  its origin (profile or the policy itself), the canonical paths the kernel compares (symlinks
  resolved: /bin/sh is /usr/bin/dash on Debian), and the other matching policies and why they
  lost.

Examples:
  camblet-agent explain runtime --pid 4242
  camblet-agent explain runtime --label docker:label:app=web --output json
`;

export interface ExplainRuntimeOptions {
  pid?: string;
  label?: string[];
  labelsFile?: string;
  output?: string;
}

/** Registers `explain runtime` under `explain`. */
export function registerExplainRuntime(program: Command): void {
  const explain = program.commands.find((c) => c.name() === "explain");
  if (!explain) throw new Error("Cannot register explain runtime: no explain command");
  addPolicyOptions(
    explain.command("runtime")
      .description("show which runtime guard rules apply to a process, and why")
      .option("--pid <pid>", "a running process (attested here)")
      .addOption(
        new Option("--label <k=v>", "a label; repeatable").argParser((v: string, p?: string[]) => [
          ...(p ?? []),
          v,
        ]),
      )
      .option("--labels-file <file>", 'labels: "k=v" lines, {"labels":{…}} or ["k=v"]; - = stdin')
      .option("--output <format>", "text or json (default: text)"),
  ).addHelpText("after", HELP)
    // Attestation, the policy loader and the guard's selection load only when this runs.
    .action(async (own: ExplainRuntimeOptions, cmd: Command) =>
      (await import("./explain_runtime_run.ts")).explainRuntime(own, cmd)
    );
}
