/**
 * `camblet-agent augment <pid>`: runs the configured attestors once for a live process and prints
 * its labels, the way the kernel would get them.
 *
 * @module
 */
import type { Command } from "commander";
import { createAttestation } from "../attestation/builtin.ts";
import type { AugmentResult } from "../attestation/runner.ts";
import { taskContextFromProc } from "../../plugins/attestor/_lib/task_from_proc.ts";
import { outputFormat, resolveConfig, usageError } from "./options.ts";

const HELP = `
Description:
  Runs the enabled metadata collectors (agent.metadataCollectors in the config) for the process
  <pid> and prints its labels as sorted "name=value" lines: what the kernel matches policy
  selectors against. Collector warnings (late, failed) go to stderr. The Camblet Go agent's
  "camblet agent augment".

Examples:
  camblet-agent augment $$
  camblet-agent augment 4242 --output json
  camblet-agent --config ./config.yaml augment "$(pidof nginx | cut -d' ' -f1)"
`;

/** Parses a pid argument or throws a usage error. */
export function parsePid(cmd: Command, value: string): number {
  const pid = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(pid) || pid < 1) {
    throw usageError(cmd, `<pid> must be a positive integer, got "${value}"`);
  }
  return pid;
}

/** Collects the labels of `pid` with the configured attestors. */
export async function attestPid(cmd: Command, pid: number): Promise<AugmentResult> {
  const { config } = await resolveConfig(cmd);
  const task = taskContextFromProc(pid);
  if (!task) throw new Error(`Cannot augment pid ${pid}: no such process`);
  const attestation = await createAttestation(config, { sweepIntervalMs: 0 });
  try {
    return await attestation.augment(task);
  } finally {
    await attestation.dispose();
  }
}

/** Registers `augment`. */
export function registerAugment(program: Command): void {
  program.command("augment")
    .description("print the labels of a running process (as the kernel gets them)")
    .argument("<pid>", "process id")
    .option("-o, --output <format>", "text (name=value lines) or json", "text")
    .addHelpText("after", HELP)
    .action(async (pidArg: string, opts: { output?: string }, cmd: Command) => {
      const format = outputFormat(cmd, opts.output, ["text", "json"] as const);
      const pid = parsePid(cmd, pidArg);
      const r = await attestPid(cmd, pid);
      for (const w of r.warnings) console.error(`warning: ${w}`);
      if (format === "json") {
        const labels = Object.fromEntries(
          Object.entries(r.labels).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0),
        );
        console.log(JSON.stringify({ pid, labels, warnings: r.warnings }, null, 2));
      } else if (r.strings.length) {
        console.log(r.strings.join("\n"));
      }
    });
}
