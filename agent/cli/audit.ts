/**
 * `camblet-agent audit`: the syscall audit (issue 14) outside the daemon. `audit test` judges
 * recorded events with rules offline, for rule authors; `audit capture` runs the capture on this
 * host (root) and prints violations as JSON lines, optionally recording every judged input.
 *
 * @module
 */
import { type Command, InvalidArgumentError } from "commander";
import {
  type AuditRules,
  AuditRulesError,
  FILTER_ENTRYPOINT,
  VIOLATIONS_ENTRYPOINT,
} from "../audit/rules.ts";
import { loadRulesFile } from "../audit/rules_file.ts";
import { loadRuleFiles, readRulePath } from "../audit/delivered_rules.ts";
import { AuditCapture, AuditEngine, type AuditRecord, jsonLinesSink } from "../audit/engine.ts";
import type { AuditInput } from "../audit/context.ts";
import { outputFormat } from "./options.ts";
import { formatRecord } from "./audit_format.ts";
import { FileSink } from "../audit/file_sink.ts";
import { WebhookSink } from "../audit/webhook_sink.ts";

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

/** Loads rules from a wasm, a bundle or a directory of Rego (compiled as the daemon does). */
export async function loadRulesArg(path: string, opa = "opa"): Promise<AuditRules> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    throw new AuditRulesError(`Cannot read audit rules "${path}": ${(e as Error).message}`);
  }
  if (!info.isDirectory) return await loadRulesFile(path);
  const files = await readRulePath(path);
  return (await loadRuleFiles(files, `"${path}"`, opa, "give --opa <binary>")).rules;
}

/** Checks the shape the rules rely on; the reason names the field. */
function checkInput(v: unknown): string | undefined {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return "not a JSON object";
  const o = v as Record<string, unknown>;
  if (typeof o.syscall !== "string") return 'field "syscall" must be a string';
  if (typeof o.ret !== "number") return 'field "ret" must be a number';
  const p = o.proc as Record<string, unknown> | undefined;
  if (!p || typeof p !== "object" || typeof p.name !== "string" || typeof p.pid !== "number") {
    return 'field "proc" must be an object with name and pid';
  }
  if (!Array.isArray(o.ancestors)) return 'field "ancestors" must be a list';
  return undefined;
}

export { formatRecord } from "./audit_format.ts";

/** Result of {@linkcode auditTest}. */
export interface AuditTestResult {
  records: AuditRecord[];
  events: number;
  /** `file:line: reason` of each line that is not an input. */
  errors: string[];
}

/** Judges every input line of `text` (named `file`) with `rules`. */
export function auditTest(rules: AuditRules, text: string, file: string): AuditTestResult {
  const records: AuditRecord[] = [];
  const engine = new AuditEngine(rules, [(r) => records.push(r)]);
  const errors: string[] = [];
  let events = 0;
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      errors.push(`${file}:${i + 1}: not JSON (${(e as Error).message})`);
      return;
    }
    const bad = checkInput(v);
    if (bad) {
      errors.push(`${file}:${i + 1}: ${bad}`);
      return;
    }
    events++;
    const before = engine.failed;
    engine.judge(v as AuditInput);
    if (engine.failed > before) errors.push(`${file}:${i + 1}: the rules failed to evaluate it`);
  });
  return { records, events, errors };
}

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
        const rules = await loadRulesArg(rulesPath, opts.opa);
        let text: string;
        try {
          text = await Deno.readTextFile(eventsPath);
        } catch (e) {
          throw new Error(`Cannot read events "${eventsPath}": ${(e as Error).message}`);
        }
        const res = auditTest(rules, text, eventsPath);
        for (const r of res.records) {
          console.log(format === "json" ? JSON.stringify(r) : formatRecord(r));
        }
        const byRule = new Map<string, number>();
        for (const r of res.records) byRule.set(r.rule, (byRule.get(r.rule) ?? 0) + 1);
        console.error(
          `${res.events} events, ${res.records.length} violations` +
            [...byRule].map(([k, n]) => `\n  ${n} ${k}`).join(""),
        );
        if (res.errors.length) {
          throw new Error(
            `Cannot judge ${res.errors.length} line(s):\n  ${res.errors.join("\n  ")}`,
          );
        }
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
        const { AuditPrograms } = await import("../../driver/bpf/audit.ts");
        const rules = await loadRulesArg(rulesPath, opts.opa);
        const enc = new TextEncoder();
        const record = opts.record
          ? await Deno.open(opts.record, { write: true, create: true, truncate: true })
          : undefined;
        const file = opts.logFile ? new FileSink(opts.logFile) : undefined;
        const hook = opts.webhook ? new WebhookSink(opts.webhook) : undefined;
        const engine = new AuditEngine(rules, [
          jsonLinesSink((l) => Deno.stdout.writeSync(enc.encode(l))),
          ...(file ? [file.sink] : []),
          ...(hook ? [hook.sink] : []),
        ]);
        const programs = AuditPrograms.load(Deno.pid);
        const capture = AuditCapture.start({
          programs,
          engine,
          ...(record
            ? { onInput: (i: AuditInput) => record.writeSync(enc.encode(JSON.stringify(i) + "\n")) }
            : {}),
        });
        console.error(`audit: prefilter ${JSON.stringify(rules.filter)}`);
        await new Promise<void>((resolve) => {
          const stop = () => resolve();
          Deno.addSignalListener("SIGINT", stop);
          Deno.addSignalListener("SIGTERM", stop);
          if (opts.duration) setTimeout(stop, opts.duration * 1000);
        });
        await capture.close();
        console.error(
          `audit: ${
            JSON.stringify({
              ...capture.stats(),
              dropped: capture.dropped,
              judged: engine.judged,
              failed: engine.failed,
            })
          }`,
        );
        programs.close();
        record?.close();
        file?.close();
        if (hook) {
          await hook.close();
          console.error(`audit: webhook delivered ${hook.delivered}, dropped ${hook.dropped}`);
        }
        Deno.exit(0);
      },
    );
}
