/**
 * `camblet-agent(8)`, generated from the CLI's own help (see command_tree.ts): the root's
 * description and options, every command with its options and help text, and the root's Files,
 * Environment, Exit status and Examples sections.
 *
 * @module
 */
import type { Command } from "commander";
import { type CommandInfo, commandTree } from "./command_tree.ts";
import { VERSION } from "../version.ts";

/** Escapes text for roff: backslashes, hyphens, a leading control character, non-ASCII. */
function esc(text: string): string {
  return text.replaceAll("\\", "\\e").replaceAll("-", "\\-").replace(/^([.'])/gm, "\\&$1")
    .replace(
      /[^\p{ASCII}]/gu,
      (c) => `\\[u${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}]`,
    );
}

/** An "after" help text split into `Heading:` sections with their lines unindented. */
function sections(after: string): { heading: string; lines: string[] }[] {
  const out: { heading: string; lines: string[] }[] = [];
  for (const line of after.split("\n")) {
    const h = /^(\S[^:]*):\s*(.*)$/.exec(line);
    if (h && !line.startsWith(" ")) {
      out.push({ heading: h[1]!, lines: h[2] ? [h[2]] : [] });
    } else if (out.length > 0) {
      out.at(-1)!.lines.push(line.replace(/^ {2}/, ""));
    }
  }
  for (const s of out) {
    while (s.lines.at(-1) === "") s.lines.pop();
  }
  return out;
}

// Prose sections are filled paragraphs; tables and examples keep their layout.
function body(heading: string, lines: string[]): string[] {
  if (heading === "Description") {
    return lines.join("\n").split(/\n\s*\n/).map((p) => `.PP\n${esc(p.replace(/\n\s*/g, " "))}`);
  }
  return [".PP", ".nf", ".RS 4", ...lines.map(esc), ".RE", ".fi"];
}

function options(cmd: CommandInfo): string[] {
  return cmd.options.flatMap((o) => [".TP", `.B ${esc(o.term)}`, esc(o.description)]);
}

/** Options for {@linkcode renderManPage}. */
export interface ManPageOptions {
  /** The date in the header (default: today, or `SOURCE_DATE_EPOCH` for reproducible builds). */
  date?: Date;
}

/**
 * The man page source (roff, `man` macros) for `program`.
 *
 * @example
 * ```ts
 * import { buildProgram } from "./program.ts";
 * import { renderManPage } from "./manpage.ts";
 * renderManPage(buildProgram()).startsWith(".TH CAMBLET\\-AGENT 8"); // true
 * ```
 */
export function renderManPage(program: Command, { date }: ManPageOptions = {}): string {
  const epoch = Deno.env.get("SOURCE_DATE_EPOCH");
  const when = date ?? (epoch ? new Date(Number(epoch) * 1000) : new Date());
  const root = commandTree(program);
  const rootSections = sections(root.after);
  const out: string[] = [
    `.TH ${esc(root.name.toUpperCase())} 8 "${when.toISOString().slice(0, 10)}" ` +
    `"${esc(root.name)} ${VERSION}" "System Administration"`,
    ".SH NAME",
    `${esc(root.name)} \\- ${esc(root.description.replace(/\s+/g, " "))}`,
    ".SH SYNOPSIS",
    `.B ${esc(root.name)}`,
    esc(root.usage.slice(root.name.length + 1)),
  ];
  const description = rootSections.find((s) => s.heading === "Description");
  if (description) out.push(".SH DESCRIPTION", ...body("Description", description.lines));
  out.push(".SH OPTIONS", ...options(root), ".SH COMMANDS");
  const walk = (cmd: CommandInfo) => {
    const aka = cmd.aliases.length > 0 ? ` (alias: ${cmd.aliases.join(", ")})` : "";
    out.push(`.SS "${esc(cmd.usage)}"`, `.PP\n${esc(cmd.description + aka)}`);
    if (cmd.options.length > 0) out.push(".PP\nOptions:", ".RS 4", ...options(cmd), ".RE");
    for (const s of sections(cmd.after)) {
      out.push(`.PP\n\\fB${esc(s.heading)}:\\fR`, ...body(s.heading, s.lines));
    }
    cmd.commands.forEach(walk);
  };
  root.commands.forEach(walk);
  for (const s of rootSections.filter((s) => s.heading !== "Description")) {
    out.push(`.SH ${esc(s.heading.toUpperCase())}`, ...body(s.heading, s.lines));
  }
  out.push(
    ".SH SEE ALSO",
    "\\fBsystemctl\\fR(1), \\fBjournalctl\\fR(1); the unit \\fIcamblet\\-agent.service\\fR;",
    "/usr/share/doc/camblet\\-agent/",
  );
  return out.join("\n") + "\n";
}

/** Registers `manpage`. */
export function registerManPage(program: Command): void {
  program.command("manpage")
    .description("print the camblet-agent(8) man page (roff), generated from this help")
    .addHelpText(
      "after",
      `
Examples:
  camblet-agent manpage | man -l -
  camblet-agent manpage > /usr/share/man/man8/camblet-agent.8
`,
    )
    .action(() => {
      console.log(renderManPage(program).trimEnd());
    });
}
