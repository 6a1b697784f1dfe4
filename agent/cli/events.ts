/**
 * `camblet-agent events`: the live stream of the runtime guard — every denial, and every
 * would-deny of an audit-mode policy — and of the syscall audit's rule violations, from the
 * running agent's control socket (`/v1/events`).
 *
 * @module
 */
import { type Command, InvalidArgumentError } from "commander";
import { EVENT_KINDS, type GuardEventRecord, type StreamRecord } from "../guard/events.ts";
import { formatRecord } from "./audit_format.ts";
import { outputFormat } from "./options.ts";
import { controlSocketPath } from "./status.ts";
import { streamLines } from "./stream_lines.ts";

const HELP = `
Description:
  Streams what the runtime guard (BPF LSM, the policies' runtime: sections) denies, or would
  deny in audit mode, as it happens: the process (pid, tid, uid, program), the hook and its
  argument (the executable or file, the mount type, the ptrace target, …), the policy and rule
  that decided, and the workload's labels and SPIFFE ID. Filters combine (all must match).
  Stops on Ctrl-C. Lost events (a full kernel ring buffer) are counted in "camblet-agent
  status" and in the metric camblet_runtime_guard_lost_events_total.

  With the syscall audit on (agent.audit.enabled), its rule violations come on the same
  stream (kind "audit"): rule, severity, output, the syscall, the process and its ancestors,
  container, labels and SPIFFE ID. --kind picks one; --rule and --label filter both;
  --severity only audit records, --policy and --outcome only guard records.

Examples:
  camblet-agent events
  camblet-agent events --label docker:label:app=web --output json
  camblet-agent events --policy web.yaml --outcome denied
  camblet-agent events --kind audit --severity critical
`;

function positive(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) {
    throw new InvalidArgumentError(`must be a positive integer, got "${v}"`);
  }
  return n;
}

/** One line of `--output text`. */
export function formatEvent(e: StreamRecord): string {
  if (e.kind === "audit") return `AUDIT ${formatRecord(e)}`;
  return formatGuardEvent(e);
}

function formatGuardEvent(e: GuardEventRecord): string {
  const what = e.path ?? (e.arg ? `arg=${e.arg}` : "");
  const policy = e.policy ? `${e.policy.source ?? e.policy.file}#${e.policy.item}` : "-";
  return [
    e.time,
    e.outcome.toUpperCase(),
    e.hook,
    what ? JSON.stringify(what) : "",
    `${e.program}[${e.pid}]`,
    `uid=${e.uid}`,
    `rule=${e.rule}`,
    `policy=${policy}`,
    e.spiffeId ?? "",
  ].filter((s) => s !== "").join(" ");
}

interface EventsOptions {
  pid?: number;
  policy?: string;
  label?: string;
  outcome?: string;
  kind?: string;
  rule?: string;
  severity?: string;
  output?: string;
}

/** Registers `events`. */
export function registerEvents(program: Command): void {
  program.command("events")
    .description("stream the runtime guard's denials and the syscall audit's violations")
    .option("--kind <kind>", `only ${EVENT_KINDS.join(" or ")} records`, (v: string) => {
      if (!(EVENT_KINDS as readonly string[]).includes(v)) {
        throw new InvalidArgumentError(`must be ${EVENT_KINDS.join(" or ")}, got "${v}"`);
      }
      return v;
    })
    .option("--rule <name>", "only rules whose name contains this")
    .option("--severity <severity>", "only audit violations of this severity")
    .option("--pid <pid>", "only this process", positive)
    .option("--policy <file>", "only policies whose file or source name contains this")
    .option("--label <k=v>", "only workloads carrying this label")
    .option("--outcome <outcome>", "denied, audited or bound")
    .option(
      "--control-socket <path>",
      "the agent's control socket (default: /run/camblet/agent.sock)",
    )
    .option("-o, --output <format>", "text or json", "text")
    .addHelpText("after", HELP)
    .action(async (opts: EventsOptions, cmd: Command) => {
      const format = outputFormat(cmd, opts.output, ["text", "json"] as const);
      const q = new URLSearchParams();
      if (opts.pid !== undefined) q.set("pid", String(opts.pid));
      for (const k of ["kind", "policy", "label", "outcome", "rule", "severity"] as const) {
        if (opts[k]) q.set(k, opts[k]!);
      }
      await streamLines(await controlSocketPath(cmd), `/v1/events?${q}`, {
        cannot: "Cannot stream events",
        ended: "the agent ended the event stream (it is stopping)",
      }, (line) => console.log(format === "json" ? line : formatEvent(JSON.parse(line))));
    });
}
