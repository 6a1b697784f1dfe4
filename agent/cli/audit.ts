/**
 * `camblet-agent audit`: the syscall audit (issue 14) outside the daemon. `audit test` judges
 * recorded events with rules offline, for rule authors; `audit capture` runs the capture on this
 * host (root) and prints violations as JSON lines, optionally recording every judged input.
 *
 * @module
 */
import { type Command, InvalidArgumentError } from "commander";
import { FILTER_ENTRYPOINT, VIOLATIONS_ENTRYPOINT } from "../audit/rules.ts";
import { outputFormat } from "./options.ts";

export { formatRecord } from "./audit_format.ts";
// The rule engine, capture and sinks (./audit_actions.ts) load only when an audit subcommand runs.

const HELP = `
Description:
  Syscall audit: Rego rules (package camblet.audit: "violations" and the "filter" each rule
  declares, see policies/rego/audit/) judge system calls with their process context.
  <rules> is a policy.wasm, a bundle (tar.gz) from opa build -t wasm -e ${VIOLATIONS_ENTRYPOINT}
  -e ${FILTER_ENTRYPOINT}, or a directory of .rego files (compiled with --opa, default: opa
  on PATH).

  audit test <rules> <events.jsonl>: one rule input per line (as "audit capture --record"
  writes them); prints each violation (text, or JSON lines with --output json). Exits 1 when a
  line is not an input (naming file and line) or the rules cannot be used.

  audit capture <rules>: loads the capture programs (root), sets the in-kernel prefilter from
  the rules and prints violations as JSON lines until Ctrl-C or --duration; the kernel counters
  (seen, filtered, sent, lost) go to stderr at the end.

Examples:
  camblet-agent audit capture policies/rego/audit --record /tmp/events.jsonl --duration 30
  camblet-agent audit test policies/rego/audit /tmp/events.jsonl
`;

function seconds(v: string): number {
  const n = Number(v);
  if (!(n > 0)) throw new InvalidArgumentError(`must be a positive number of seconds, got "${v}"`);
  return n;
}

/** Registers `audit`. */
export function registerAudit(program: Command): void {
  const audit = program.command("audit")
    .description("syscall audit judged by Rego rules: test rules offline, or capture on this host")
    .addHelpText("after", HELP);
  audit.command("test <rules> <events>")
    .description("judge recorded events (JSON lines) with rules, offline")
    .option("--opa <binary>", "opa binary for a directory of .rego", "opa")
    .option("-o, --output <format>", "text or json", "text")
    .action(
      async (
        rulesPath: string,
        eventsPath: string,
        opts: { opa: string; output?: string },
        cmd: Command,
      ) => {
        const format = outputFormat(cmd, opts.output, ["text", "json"] as const);
        await (await import("./audit_actions.ts")).runAuditTest(
          rulesPath,
          eventsPath,
          opts.opa,
          format,
        );
      },
    );
  audit.command("capture <rules>")
    .description("capture syscalls on this host (root) and print violations as JSON lines")
    .option("--opa <binary>", "opa binary for a directory of .rego", "opa")
    .option("--record <file>", "also write every judged input (for audit test)")
    .option(
      "--log-file <file>",
      "also append violations to this file (0600, rotated at 16 MiB, 5 kept)",
    )
    .option("--webhook <url>", "also POST violations (JSON lines; bounded queue, retried)")
    .option("--duration <seconds>", "stop after this long", seconds)
    .action(
      async (
        rulesPath: string,
        opts: {
          opa: string;
          record?: string;
          logFile?: string;
          webhook?: string;
          duration?: number;
        },
      ) => {
        await (await import("./audit_actions.ts")).runAuditCapture(rulesPath, opts);
      },
    );
}
