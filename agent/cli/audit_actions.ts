/**
 * What `camblet-agent audit test` and `audit capture` do (agent/cli/audit.ts registers them): kept
 * apart so that the rule engine loads only when one of them runs.
 *
 * @module
 */
import { type AuditRules, AuditRulesError } from "../audit/rules.ts";
import { loadRulesFile } from "../audit/rules_file.ts";
import { loadRuleFiles, readRulePath } from "../audit/delivered_rules.ts";
import { AuditCapture, AuditEngine, type AuditRecord, jsonLinesSink } from "../audit/engine.ts";
import type { AuditInput } from "../audit/context.ts";
import { formatRecord } from "./audit_format.ts";
import { FileSink } from "../audit/file_sink.ts";
import { WebhookSink } from "../audit/webhook_sink.ts";

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

/** `audit test`: judges the inputs in `eventsPath` and prints the violations. */
export async function runAuditTest(
  rulesPath: string,
  eventsPath: string,
  opa: string,
  format: "text" | "json",
): Promise<void> {
  const rules = await loadRulesArg(rulesPath, opa);
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
}

/** `audit capture`: captures on this host until a signal or the duration, then exits. */
export async function runAuditCapture(
  rulesPath: string,
  opts: { opa: string; record?: string; logFile?: string; webhook?: string; duration?: number },
): Promise<void> {
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
}
