/**
 * `camblet-agent validate`: loads the configuration, policies and services exactly as the daemon
 * would, prints every problem, and optionally the compiled kernel payloads.
 *
 * @module
 */
import type { Command } from "commander";
import { formatProblem, ValidationError } from "../errors.ts";
import { addPolicyOptions, outputFormat, resolveConfig } from "./options.ts";
import { type LoadedPayloads, loadPayloads } from "./load_payloads.ts";

const HELP = `
Description:
  Checks the configuration, the policy files and the service files the way the daemon loads
  them, without touching the kernel. Every problem is printed on its own line to stderr as
  "file:line: item N: field: reason" (item N counts from 0 in the file's YAML list). Nothing is
  half-loaded: one problem anywhere fails the whole set, as it would fail a daemon reload.

  Service hostnames are resolved (/etc/hosts, then DNS) as the daemon would.

  With --output json, the compiled kernel payloads are printed to stdout, decoded, as one object
  keyed by kernel command: {"load_config": {...}, "load_sd_info": {...},
  "load_policies": {"policies": [...]}}.

Exit status:
  0 valid (warnings, e.g. a missing default directory, go to stderr), 1 invalid, 2 usage error

Examples:
  camblet-agent validate
  camblet-agent validate --policies-path ./policies --services-path ./services
  camblet-agent validate --trust-domain acme.corp --output json | jq '.load_policies'
`;

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The one-line summary of a valid set. */
export function validationSummary(result: LoadedPayloads): string {
  const { payloads, files } = result;
  const policies = payloads.load_policies.policies;
  const egress = policies.reduce((n, p) => n + (p.egress?.length ?? 0), 0);
  const addresses = Object.keys(payloads.load_sd_info).length;
  return `valid: ${plural(policies.length, "policy", "policies")} ` +
    `(${plural(egress, "egress entry", "egress entries")}), ` +
    `${plural(addresses, "service address", "service addresses")} from ` +
    `${plural(files.policies.length, "policy file", "policy files")} and ` +
    `${plural(files.services.length, "service file", "service files")}; ` +
    `trust domain "${payloads.load_config.trust_domain}"`;
}

/** Registers `validate`. */
export function registerValidate(program: Command): void {
  addPolicyOptions(
    program.command("validate")
      .description(
        "check config, policies and services; print every problem or the kernel payloads",
      ),
  )
    .option(
      "-o, --output <format>",
      "text (a summary) or json (the compiled kernel payloads)",
      "text",
    )
    .addHelpText("after", HELP)
    .action(async (opts: { output?: string }, cmd: Command) => {
      const format = outputFormat(cmd, opts.output, ["text", "json"] as const);
      let result: LoadedPayloads;
      try {
        result = await loadPayloads(await resolveConfig(cmd));
      } catch (e) {
        if (!(e instanceof ValidationError)) throw e;
        for (const p of e.problems) console.error(formatProblem(p));
        throw new Error(`validation failed: ${e.message.split("\n")[0]}`);
      }
      for (const w of result.warnings) console.error(`warning: ${formatProblem(w)}`);
      console.log(
        format === "json" ? JSON.stringify(result.payloads, null, 2) : validationSummary(result),
      );
    });
}
