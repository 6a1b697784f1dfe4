/**
 * `camblet-agent explain`: which policy (and egress entry) the kernel would pick for a connection,
 * and why, using the pure matcher (agent/policy/match.ts) on the compiled payloads.
 *
 * @module
 */
import { type Command, Option } from "commander";
import { formatProblem, type Problem, ValidationError } from "../errors.ts";
import type { kernelIp } from "../policy/match_input.ts";
import { addPolicyOptions, outputFormat, resolveConfig, usageError } from "./options.ts";

const HELP = `
Description:
  Predicts what camblet-driver does with one TCP connection: loads the configuration, policies
  and services exactly as the agent would, builds the input the kernel's policy sees (the
  process's labels plus the labels the kernel adds: direction, source:ip, source:port,
  destination:ip, destination:port) and applies the kernel's matching rules. It prints the
  policy and egress entry the kernel would pick, the SPIFFE ID after [label] substitution, the
  mTLS, passthrough, TTL, DNS names and allowed peer IDs, every other matching policy and why it
  lost, and the policies that came closest to matching.

  Outbound connections are intercepted only when the destination is in the service table
  (looked up by IP, then IP:port); give --destination-ip to have it looked up.

Labels:
  --label k=v           one label; repeat it for more
  --labels-file <file>  one "k=v" per line (# comments allowed; the output of
                        "camblet-agent augment <pid>" works), or the kernel's augment answer
                        {"labels":{"k=v":true}}, or a JSON array of "k=v"; "-" reads stdin

Kernel behaviour shown as it is:
  - inbound source:port is printed byte-swapped by the kernel; give the real port, the
    label shows what the kernel evaluates
  - IPv6 addresses are printed fully expanded (0000:...:0001), IPv4 dotted
  - a label left out because its fact was not given (e.g. no --source-ip) is reported

OPA:
  --opa <file> evaluates an opa-compiled issuance policy (policy.wasm, or a bundle tar.gz holding
  one and its data.json) for the SPIFFE ID the kernel would ask for, with the input the agent
  gives it: spiffe_id, dns_names, ttl_seconds, task (uid, gid, pid and command from the
  process:* labels), labels and the matched policy. A denial means a refusal certificate.

Exit status:
  0 the prediction was printed (intercepted or not), 1 the configuration, policies or
  services are invalid, 2 usage error

Examples:
  camblet-agent explain --label process:name=curl --direction output --port 8000 \\
      --destination-ip 127.0.0.1
  camblet-agent explain --labels-file labels.txt --direction input --destination-port 8000 \\
      --policies-path ./policies --services-path ./services
  camblet-agent augment 4242 | camblet-agent explain --labels-file - --direction input --port 443
  camblet-agent explain --label process:uid=501 --direction input --port 8000 --output json
  camblet-agent explain --label process:name=python3 --label process:uid=1000 --direction input \\
      --port 8000 --opa bundle.tar.gz
`;

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

interface ExplainOptions {
  label?: string[];
  labelsFile?: string;
  direction?: string;
  port?: string;
  destinationPort?: string;
  sourcePort?: string;
  destinationIp?: string;
  sourceIp?: string;
  output?: string;
  opa?: string;
  opaData?: string;
  opaEntrypoint?: string;
}

function labelProblem(label: string): string | undefined {
  const i = label.indexOf("=");
  if (i < 0) return `"${label}" is not a label: expected name=value`;
  if (i === 0) return `"${label}" has no name before "="`;
  if (/\s/.test(label.slice(0, i))) return `"${label}": a label name has no spaces`;
  return undefined;
}

/** Reads labels from a file (or stdin for `-`) in any of the formats `--help` lists. */
export async function readLabelsFile(path: string): Promise<string[]> {
  let text: string;
  try {
    text = path === "-"
      ? await new Response(Deno.stdin.readable).text()
      : await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`Cannot read labels file "${path}": ${(e as Error).message}`, { cause: e });
  }
  const file = path === "-" ? "(stdin)" : path;
  const problems: Problem[] = [];
  let labels: string[] = [];
  const trimmed = text.trimStart();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new ValidationError("Cannot read labels file", [{
        file,
        message: (e as Error).message,
      }]);
    }
    const obj = doc as { labels?: unknown };
    if (Array.isArray(doc)) {
      doc.forEach((v, i) => {
        if (typeof v === "string") labels.push(v);
        else {problems.push({
            file,
            field: `[${i}]`,
            message: `expected a "k=v" string, got ${JSON.stringify(v)}`,
          });}
      });
    } else if (obj.labels && typeof obj.labels === "object" && !Array.isArray(obj.labels)) {
      labels = Object.keys(obj.labels);
    } else {
      problems.push({ file, message: 'expected {"labels":{"k=v":true}} or a JSON array of "k=v"' });
    }
    for (const l of labels) {
      const p = labelProblem(l);
      if (p) problems.push({ file, message: p });
    }
  } else {
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) return;
      const p = labelProblem(line);
      if (p) problems.push({ file, line: i + 1, message: p });
      else labels.push(line);
    });
  }
  if (problems.length) throw new ValidationError("Cannot read labels file", problems);
  return labels;
}

function port(cmd: Command, flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n > 65535) {
    throw usageError(cmd, `${flag} must be a port from 0 to 65535, got "${value}"`);
  }
  return n;
}

function ip(
  cmd: Command,
  flag: string,
  value: string | undefined,
  parse: typeof kernelIp,
): string | undefined {
  if (value === undefined) return undefined;
  try {
    parse(value);
  } catch {
    throw usageError(cmd, `${flag} must be an IPv4 or IPv6 address, got "${value}"`);
  }
  return value;
}

/** Runs `explain` with the options of `cmd`. */
export async function explain(opts: ExplainOptions, cmd: Command): Promise<void> {
  // The matcher, the policy loader and OPA load only when explain runs (not with the daemon).
  const [{ matchConnection }, { kernelIp }, { loadPayloads }, render, { opaDecision, opaText }] =
    await Promise.all([
      import("../policy/match.ts"),
      import("../policy/match_input.ts"),
      import("./load_payloads.ts"),
      import("./explain_render.ts"),
      import("./explain_opa.ts"),
    ]);
  const { explainJson, explainText } = render;
  const output = outputFormat(cmd, opts.output, ["text", "json"] as const);
  if (opts.direction === undefined) {
    throw usageError(cmd, "--direction is required: input (accept) or output (connect)");
  }
  if (opts.direction !== "input" && opts.direction !== "output") {
    throw usageError(cmd, `--direction must be input or output, got "${opts.direction}"`);
  }
  const direction: "input" | "output" = opts.direction;
  for (const l of opts.label ?? []) {
    const p = labelProblem(l);
    if (p) throw usageError(cmd, `--label ${p}`);
  }
  const dport = port(cmd, "--destination-port", opts.destinationPort);
  const pport = port(cmd, "--port", opts.port);
  if (dport !== undefined && pport !== undefined && dport !== pport) {
    throw usageError(cmd, `--port ${pport} and --destination-port ${dport} disagree`);
  }
  const conn = {
    labels: [...(opts.label ?? [])],
    direction,
    ...optional("sourceIp", ip(cmd, "--source-ip", opts.sourceIp, kernelIp)),
    ...optional("sourcePort", port(cmd, "--source-port", opts.sourcePort)),
    ...optional("destinationIp", ip(cmd, "--destination-ip", opts.destinationIp, kernelIp)),
    ...optional("destinationPort", dport ?? pport),
  };
  if (opts.labelsFile !== undefined) conn.labels.push(...await readLabelsFile(opts.labelsFile));

  const loaded = await resolveConfig(cmd);
  const { payloads, provenance, warnings } = await loadPayloads(loaded);
  for (const w of warnings) console.error(`warning: ${formatProblem(w)}`);
  const result = matchConnection(payloads, conn, { trace: "all" });
  const context = {
    conn,
    result,
    provenance,
    defaultTtl: loaded.config.agent.defaultCertTTL,
    policyCount: payloads.load_policies.policies.length,
  };
  const opa = opts.opa === undefined ? undefined : await opaDecision({
    file: opts.opa,
    ...(opts.opaData !== undefined ? { dataFile: opts.opaData } : {}),
    ...(opts.opaEntrypoint !== undefined ? { entrypoint: opts.opaEntrypoint } : {}),
    result,
    labels: conn.labels,
    payloads,
    trustDomain: loaded.config.agent.trustDomain,
    defaultTtl: loaded.config.agent.defaultCertTTL,
  });
  console.log(
    output === "json"
      ? JSON.stringify({ ...explainJson(context), ...(opa ? { opa } : {}) }, null, 2)
      : explainText(context) + (opa ? `\n\n${opaText(opa)}` : ""),
  );
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** Registers `explain`. */
export function registerExplain(program: Command): void {
  addPolicyOptions(
    program.command("explain")
      .description("show which policy the kernel would apply to a connection, and why")
      .addOption(new Option("--label <k=v>", "a process label; repeatable").argParser(collect))
      .option("--labels-file <file>", 'labels: "k=v" lines, {"labels":{…}} or ["k=v"]; - = stdin')
      .addOption(
        new Option("--direction <dir>", "input (accept) or output (connect); required"),
      )
      .option("--port <n>", "destination port (same as --destination-port)")
      .option("--destination-port <n>", "destination port")
      .option("--source-port <n>", "source port (the real one; the kernel byte-swaps inbound)")
      .option("--destination-ip <ip>", "destination IP; outbound: looked up in the service table")
      .option("--source-ip <ip>", "source IP")
      .option("--output <format>", "text or json (default: text)")
      .option("--opa <file>", "also show the OPA issuance decision (policy.wasm or a bundle)")
      .option("--opa-data <file>", "the OPA data document for --opa (JSON; default: the bundle's)")
      .option(
        "--opa-entrypoint <rule>",
        "the rule to evaluate (default: camblet/issuance/decision)",
      ),
  ).addHelpText("after", HELP)
    .action((opts: ExplainOptions, cmd: Command) => explain(opts, cmd));
}
