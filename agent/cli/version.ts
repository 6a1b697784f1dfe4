/**
 * `camblet-agent version`.
 *
 * @module
 */
import type { Command } from "commander";
import { VERSION } from "../version.ts";
import { versionReport } from "../build_info.ts";

/** Registers `version`. */
export function registerVersion(program: Command): void {
  program.command("version")
    .description("print the agent's version and build")
    .option("--short", "print only the version number")
    .addHelpText("after", "\nExamples:\n  camblet-agent version\n  camblet-agent version --short\n")
    .action((opts: { short?: boolean }) => {
      console.log(opts.short ? VERSION : versionReport());
    });
}
