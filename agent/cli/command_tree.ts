/**
 * The CLI's commands, options and help texts as plain data, read from the commander program itself,
 * so the man page and the shell completions are generated from the same source as `--help`.
 *
 * @module
 */
import type { Command } from "commander";

/** One option as `--help` shows it. */
export interface OptionInfo {
  /** `-v, --verbosity <level>`. */
  term: string;
  long?: string;
  short?: string;
  description: string;
  /** Whether the option takes a value. */
  takesValue: boolean;
  /** Allowed values, when the option declares them. */
  choices: string[];
}

/** One command and what is below it. */
export interface CommandInfo {
  /** Words from the program down, e.g. `["camblet-agent", "ca", "create-root"]`. */
  path: string[];
  name: string;
  aliases: string[];
  /** `camblet-agent validate [options]`. */
  usage: string;
  description: string;
  options: OptionInfo[];
  commands: CommandInfo[];
  /** Text added after the generated help (`addHelpText("after")`): Description, Examples, … */
  after: string;
}

// Commander writes the "after" texts through help event listeners, one write each, after the
// generated help: capture a help run's writes and keep those after the generated part.
function afterText(cmd: Command): string {
  const writes: string[] = [];
  const saved = { ...cmd.configureOutput() }; // configureOutput() returns the live object
  cmd.configureOutput({ writeOut: (s) => writes.push(s), getOutHelpWidth: () => 100 });
  try {
    cmd.outputHelp();
  } finally {
    cmd.configureOutput(saved);
  }
  const generated = writes.findIndex((w) => w.startsWith("Usage:"));
  return writes.slice(generated + 1).join("").trim();
}

/**
 * The tree below `cmd` (hidden commands and options left out, as `--help` leaves them out).
 *
 * @example
 * ```ts
 * import { buildProgram } from "./program.ts";
 * import { commandTree } from "./command_tree.ts";
 * commandTree(buildProgram()).commands.some((c) => c.name === "validate"); // true
 * ```
 */
export function commandTree(cmd: Command, parents: string[] = []): CommandInfo {
  const help = cmd.createHelp();
  const path = [...parents, cmd.name()];
  const options = help.visibleOptions(cmd).map((o): OptionInfo => {
    const info: OptionInfo = {
      term: help.optionTerm(o),
      description: help.optionDescription(o),
      takesValue: o.required || o.optional,
      choices: o.argChoices ?? [],
    };
    if (o.long) info.long = o.long;
    if (o.short) info.short = o.short;
    return info;
  });
  return {
    path,
    name: cmd.name(),
    aliases: cmd.aliases(),
    usage: [...parents, cmd.name(), cmd.usage()].join(" "),
    description: cmd.description(),
    options,
    commands: help.visibleCommands(cmd).filter((c) => c.name() !== "help").map((c) =>
      commandTree(c, path)
    ),
    after: afterText(cmd),
  };
}
