/**
 * Shell completion scripts for bash, zsh and fish, generated from the CLI's own command tree
 * (command_tree.ts): commands, aliases, each command's options and their declared choices.
 *
 * @module
 */
import { type Command as Command, InvalidArgumentError } from "commander";
import { type CommandInfo, commandTree, type OptionInfo } from "./command_tree.ts";

/** The shells with a generator. */
export const SHELLS = ["bash", "zsh", "fish"] as const;
/** One of {@linkcode SHELLS}. */
export type Shell = typeof SHELLS[number];

// Every command by each of its words (name and aliases), with its path below the root.
function byWord(root: CommandInfo): Map<string, CommandInfo> {
  const m = new Map<string, CommandInfo>();
  const walk = (c: CommandInfo) => {
    const key = c.path.slice(1, -1).join(" ");
    for (const w of [c.name, ...c.aliases]) m.set(key ? `${key} ${w}` : w, c);
    c.commands.forEach(walk);
  };
  root.commands.forEach(walk);
  return m;
}

const flags = (o: OptionInfo) => [o.short, o.long].filter((f): f is string => f !== undefined);
const words = (c: CommandInfo) => c.commands.flatMap((s) => [s.name, ...s.aliases]);
const sq = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

function bash(root: CommandInfo): string {
  const fn = "_" + root.name.replaceAll("-", "_");
  const cases: string[] = [];
  const add = (key: string, c: CommandInfo) => {
    const choices = c.options.filter((o) => o.choices.length > 0).map((o) =>
      `      ${flags(o).join("|")}) COMPREPLY=($(compgen -W ${
        sq(o.choices.join(" "))
      } -- "$cur")); return ;;`
    );
    const valued = c.options.filter((o) => o.takesValue && o.choices.length === 0).flatMap(flags);
    cases.push(
      `    ${sq(key)})`,
      `      case "$prev" in`,
      ...choices,
      ...(valued.length > 0
        ? [`      ${valued.join("|")}) COMPREPLY=($(compgen -f -- "$cur")); return ;;`]
        : []),
      `      esac`,
      `      COMPREPLY=($(compgen -W ${
        sq([...c.options.flatMap(flags), ...words(c)].join(" "))
      } -- "$cur")) ;;`,
    );
  };
  add("", root);
  for (const [key, c] of byWord(root)) add(key, c);
  return `# bash completion for ${root.name}; generated from its --help by "${root.name} completion bash"
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" cmd="" i w
  # The command path: the words before the cursor that name commands (options are skipped).
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in -*) continue ;; esac
    case "\${cmd:+$cmd }$w" in
${[...byWord(root).keys()].map((k) => `      ${sq(k)}) cmd="\${cmd:+$cmd }$w" ;;`).join("\n")}
    esac
  done
  case "$cmd" in
${cases.join("\n")}
  esac
}
complete -F ${fn} ${root.name}
`;
}

// Inside single quotes; brackets would end an _arguments description early.
const zq = (s: string) => s.replaceAll("'", `'\\''`).replaceAll("[", "\\[").replaceAll("]", "\\]");

function zshSpecs(c: CommandInfo): string[] {
  return c.options.map((o) => {
    const names = flags(o);
    const action = o.choices.length > 0 ? `(${o.choices.join(" ")})` : "_files";
    const desc = `[${zq(o.description)}]${o.takesValue ? `:value:${action}` : ""}`;
    return names.length > 1
      ? `'(${names.join(" ")})'{${names.join(",")}}'${desc}'`
      : `'${names[0]}${desc}'`;
  });
}

function zsh(root: CommandInfo): string {
  const fn = "_" + root.name.replaceAll("-", "_");
  const funcs: string[] = [];
  const emit = (c: CommandInfo, name: string) => {
    const subs = c.commands.flatMap((s) =>
      [s.name, ...s.aliases].map((w) => `    '${w}:${zq(s.description)}'`)
    );
    const dispatch = c.commands.flatMap((s) =>
      [s.name, ...s.aliases].map((w) => `      ${w}) ${name}_${s.name.replaceAll("-", "_")} ;;`)
    );
    const specs = zshSpecs(c).map((s) => `    ${s} \\`);
    funcs.push(
      `${name}() {`,
      ...(subs.length > 0
        ? [
          `  local -a commands`,
          `  commands=(`,
          ...subs,
          `  )`,
          `  local curcontext="$curcontext" state line`,
          `  _arguments -C \\`,
          ...specs,
          `    '1:command:->command' '*::argument:->argument'`,
          `  case $state in`,
          `    command) _describe -t commands command commands ;;`,
          `    argument) case $words[1] in`,
          ...dispatch,
          `    esac ;;`,
          `  esac`,
        ]
        : [`  _arguments \\`, ...specs, `    '*:file:_files'`]),
      `}`,
    );
    for (const s of c.commands) emit(s, `${name}_${s.name.replaceAll("-", "_")}`);
  };
  emit(root, fn);
  return `#compdef ${root.name}
# zsh completion for ${root.name}; generated from its --help by "${root.name} completion zsh"
${funcs.join("\n")}
${fn} "$@"
`;
}

function fish(root: CommandInfo): string {
  const lines = [
    `# fish completion for ${root.name}; generated from its --help by "${root.name} completion fish"`,
    `complete -c ${root.name} -f`,
  ];
  const fq = (s: string) => `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
  const opt = (o: OptionInfo, cond: string) => {
    const parts = [`complete -c ${root.name}`, cond];
    if (o.short) parts.push(`-s ${o.short.slice(1)}`);
    if (o.long) parts.push(`-l ${o.long.slice(2)}`);
    if (o.takesValue) {
      parts.push(o.choices.length > 0 ? `-x -a ${fq(o.choices.join(" "))}` : "-r -F");
    }
    parts.push(`-d ${fq(o.description)}`);
    return parts.filter((p) => p !== "").join(" ");
  };
  const walk = (c: CommandInfo) => {
    const below = c.path.slice(1);
    const seen = below.map((w) => `__fish_seen_subcommand_from ${w}`).join("; and ");
    const childWords = words(c);
    const notYet = childWords.length > 0
      ? `not __fish_seen_subcommand_from ${childWords.join(" ")}`
      : "";
    const here = [seen, notYet].filter((s) => s !== "").join("; and ");
    for (const s of c.commands) {
      for (const w of [s.name, ...s.aliases]) {
        lines.push(
          `complete -c ${root.name} -n ${fq(here || "true")} -a ${w} -d ${fq(s.description)}`,
        );
      }
    }
    for (const o of c.options) lines.push(opt(o, seen ? `-n ${fq(seen)}` : ""));
    c.commands.forEach(walk);
  };
  walk(root);
  return lines.join("\n") + "\n";
}

/**
 * The completion script for `shell`.
 *
 * @example
 * ```ts
 * import { buildProgram } from "./program.ts";
 * import { completionScript } from "./completion.ts";
 * completionScript(buildProgram(), "fish").includes("-a validate"); // true
 * ```
 */
export function completionScript(program: Command, shell: Shell): string {
  const root = commandTree(program);
  switch (shell) {
    case "bash":
      return bash(root);
    case "zsh":
      return zsh(root);
    case "fish":
      return fish(root);
  }
}

/** Registers `completion <shell>`. */
export function registerCompletion(program: Command): void {
  program.command("completion")
    .description("print the shell completion script (bash, zsh or fish)")
    .argument("<shell>", SHELLS.join(", "), (v: string) => {
      if (!(SHELLS as readonly string[]).includes(v)) {
        throw new InvalidArgumentError(
          `Cannot complete for shell "${v}": use ${SHELLS.join(", ")}`,
        );
      }
      return v;
    })
    .addHelpText(
      "after",
      `
Description:
  Prints a completion script generated from this program's own commands and options. The
  packages install them (bash-completion, zsh site-functions, fish vendor_completions.d).

Examples:
  source <(camblet-agent completion bash)
  camblet-agent completion zsh > "\${fpath[1]}/_camblet-agent"
  camblet-agent completion fish > ~/.config/fish/completions/camblet-agent.fish
`,
    )
    .action((shell: Shell) => {
      console.log(completionScript(program, shell).trimEnd());
    });
}
