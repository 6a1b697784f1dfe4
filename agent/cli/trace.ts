/**
 * `camblet-agent trace`: streams the trace lines of matching processes: the kernel module's, or
 * on the proxy data plane each connection's outcome. With the module the agent adds the kernel
 * trace filter while the command runs and removes it when it ends.
 *
 * @module
 */
import { type Command, InvalidArgumentError } from "commander";
import { stringify } from "yaml";
import type { TraceLine } from "../control/trace_hub.ts";
import { outputFormat, usageError } from "./options.ts";
import { controlSocketPath } from "./status.ts";
import { streamLines } from "./stream_lines.ts";

const HELP = `
Description:
  Streams what the data plane does with the connections of matching processes. With the kernel
  module: policy matches, certificates, TLS handshakes, peer checks (the module's "log"
  messages). On the proxy data plane: one line per connection when it is settled, with its
  outcome (mtls, tls, passthrough, plain, denied, handshake_failed, connect_failed, error),
  direction, addresses, SPIFFE IDs, policy and reason; the process is the dialling one
  outbound and the listening one inbound. Give at least one of --pid, --uid, --command-name;
  together they must all match. The kernel cannot filter uid 0 by itself, so --uid 0 needs
  --pid or --command-name as well. Stops on Ctrl-C.

Examples:
  camblet-agent trace --command-name curl
  camblet-agent trace --pid 4242 --output json
  camblet-agent trace --uid 1000 --command-name python3 -o yaml
`;

function nonNegative(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    throw new InvalidArgumentError(`must be a non-negative integer, got "${v}"`);
  }
  return n;
}

/** One line of `--output text`. */
export function formatTraceLine(l: TraceLine): string {
  const fields = Object.entries(l.fields).map(([k, v]) =>
    `${k}=${/[\s"]/.test(v) ? JSON.stringify(v) : v}`
  );
  return [
    l.time,
    `${l.task.command_name}[${l.task.pid}]`,
    `uid=${l.task.uid}`,
    l.level ?? "trace",
    JSON.stringify(l.message),
    ...fields,
  ].join(" ");
}

interface TraceOptions {
  pid?: number;
  uid?: number;
  commandName?: string;
  output?: string;
}

/** Registers `trace` (Camblet: `agent trace-connection`). */
export function registerTrace(program: Command): void {
  program.command("trace")
    .alias("trace-connection")
    .description("stream the data plane's trace lines for matching processes")
    .option("--pid <pid>", "process id", nonNegative)
    .option("--uid <uid>", "user id", nonNegative)
    .option("--command-name <name>", "process name (comm, at most 15 characters)")
    .option(
      "--control-socket <path>",
      "the agent's control socket (default: /run/camblet/agent.sock)",
    )
    .option("-o, --output <format>", "text, json or yaml", "text")
    .addHelpText("after", HELP)
    .action(async (opts: TraceOptions, cmd: Command) => {
      const format = outputFormat(cmd, opts.output, ["text", "json", "yaml"] as const);
      const q = new URLSearchParams();
      if (opts.pid !== undefined) q.set("pid", String(opts.pid));
      if (opts.uid !== undefined) q.set("uid", String(opts.uid));
      if (opts.commandName) q.set("command_name", opts.commandName);
      const kernelSide = (opts.pid ?? 0) > 0 || (opts.uid ?? 0) > 0 || !!opts.commandName;
      if (!kernelSide) {
        throw usageError(
          cmd,
          opts.uid === 0
            ? '--uid 0 cannot be traced alone: the kernel reads uid 0 as "any"; add --pid or --command-name'
            : "give at least one of --pid, --uid or --command-name",
        );
      }
      await streamLines(await controlSocketPath(cmd), `/v1/trace?${q}`, {
        cannot: "Cannot start the trace",
        ended: "the agent ended the trace (it is stopping)",
      }, (text) => {
        const line = JSON.parse(text) as TraceLine;
        if (format === "json") console.log(JSON.stringify(line));
        else if (format === "yaml") console.log("---\n" + stringify(line).trimEnd());
        else console.log(formatTraceLine(line));
      });
    });
}
