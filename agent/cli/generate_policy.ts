/**
 * `camblet-agent generate-policy <pid> <workloadID>` (alias `gp`): a one-policy YAML list whose
 * selector is the live process' labels, with the Camblet Go agent's flags.
 *
 * @module
 */
import { type Command, Option } from "commander";
import { stringify } from "yaml";
import type { Labels } from "../../plugins/types.ts";
import { formatKernelTtl, parseDuration } from "../duration.ts";
import { spiffeIdProblem, spiffePathProblem } from "../../driver/spiffe.ts";
import { attestPid, parsePid } from "./augment.ts";
import { usageError } from "./options.ts";

/**
 * The Go agent's default `--label` set, except `k8s:container:image`, a label its collector never
 * produced: we select on `k8s:container:image:name` (the container's image reference) instead.
 */
export const DEFAULT_SELECTOR_LABELS = [
  "process:uid",
  "process:gid",
  "process:binary:path",
  "process:name",
  "k8s:pod:name",
  "k8s:pod:namespace",
  "k8s:pod:serviceaccount",
  "k8s:container:name",
  "k8s:container:image:name",
  "docker:name",
  "docker:image:name",
];

const HOSTNAME =
  /^(?=.{1,253}$)(\*\.)?([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\.?$/;

/** A generated policy (the YAML shape `validate` reads). */
export interface GeneratedPolicy {
  selectors: Record<string, string>[];
  certificate: { workloadID: string; dnsNames?: string[]; ttl: string };
  connection: { mtls: "STRICT" | "DISABLE"; allowedSPIFFEIDs?: string[] };
}

/** Options of {@linkcode buildPolicy}. */
export interface BuildPolicyOptions {
  labels: readonly string[];
  addLabels: readonly string[];
  dnsNames: readonly string[];
  ttlMs: number;
  allowedSpiffeIds: readonly string[];
  disableMtls: boolean;
}

/**
 * Picks the selector: every wanted label the process has (one value each: the first), plus
 * `--add-label` names, where a trailing `*` takes every label with that prefix. Pure.
 */
export function selectorFor(
  labels: Labels,
  wanted: readonly string[],
  added: readonly string[],
): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  const take = (name: string) => {
    const v = labels[name]?.[0];
    if (v !== undefined) out[name] = v;
  };
  for (const name of wanted) take(name);
  for (const name of added) {
    if (name.endsWith("*")) {
      for (const n of Object.keys(labels).sort()) if (n.startsWith(name.slice(0, -1))) take(n);
    } else take(name);
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0));
}

/** Builds the policy list; throws when no selector label was found. Pure. */
export function buildPolicy(
  labels: Labels,
  workloadID: string,
  o: BuildPolicyOptions,
): GeneratedPolicy[] {
  const selector = selectorFor(labels, o.labels, o.addLabels);
  if (Object.keys(selector).length === 0) {
    throw new Error(
      `Cannot generate a policy: could not find selectors (none of ${
        [...o.labels, ...o.addLabels].join(", ")
      } is a label of the process)`,
    );
  }
  return [{
    selectors: [selector],
    certificate: {
      workloadID,
      ...(o.dnsNames.length ? { dnsNames: [...o.dnsNames] } : {}),
      ttl: formatKernelTtl(o.ttlMs),
    },
    connection: {
      mtls: o.disableMtls ? "DISABLE" : "STRICT",
      ...(o.allowedSpiffeIds.length ? { allowedSPIFFEIDs: [...o.allowedSpiffeIds] } : {}),
    },
  }];
}

function list(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(",").map((s) => s.trim()).filter(Boolean)];
}

const HELP = `
Description:
  Collects the labels of the running process <pid> (as "augment" does) and prints a policy YAML
  list with one policy: its selector holds the chosen labels (one value each), its certificate
  gets <workloadID> (the SPIFFE ID path after spiffe://<trust domain>/). Save it under
  /etc/camblet/policies/ and check it with "camblet-agent validate". Fails with "could not find
  selectors" when the process has none of the chosen labels.

Examples:
  camblet-agent generate-policy 4242 web/frontend > /etc/camblet/policies/frontend.yaml
  camblet-agent gp "$(pidof -s nginx)" nginx --add-label 'docker:label:*' --cert-dns-name web.acme.corp
  camblet-agent gp 4242 db --label process:uid,process:binary:path --allowed-spiffe-id spiffe://acme.corp/web --cert-ttl 1h
`;

/** Registers `generate-policy` (alias `gp`). */
export function registerGeneratePolicy(program: Command): void {
  program.command("generate-policy")
    .alias("gp")
    .description("print a policy that selects a running process by its labels")
    .argument("<pid>", "process id")
    .argument("<workloadID>", "workload ID (SPIFFE path), e.g. web/frontend")
    .addOption(
      new Option("--label <name>", "labels to select on; repeatable or comma-separated")
        .argParser(list).default(undefined, DEFAULT_SELECTOR_LABELS.join(",")),
    )
    .addOption(
      new Option("--add-label <name>", "extra labels; trailing * = every label with that prefix")
        .argParser(list),
    )
    .addOption(
      new Option("--cert-dns-name <name>", "DNS SAN for the certificate; repeatable").argParser(
        list,
      ),
    )
    .option("--cert-ttl <duration>", "certificate TTL", "24h")
    .addOption(
      new Option("--allowed-spiffe-id <id>", "peer SPIFFE ID allowed to connect; repeatable")
        .argParser(list),
    )
    .option("--disable-mtls", "TLS without peer certificates (mtls: DISABLE) instead of STRICT")
    .addHelpText("after", HELP)
    .action(async (pidArg: string, workloadID: string, opts: {
      label?: string[];
      addLabel?: string[];
      certDnsName?: string[];
      certTtl: string;
      allowedSpiffeId?: string[];
      disableMtls?: boolean;
    }, cmd: Command) => {
      const pid = parsePid(cmd, pidArg);
      const idProblem = spiffePathProblem(workloadID, true);
      if (idProblem) throw usageError(cmd, `<workloadID> "${workloadID}": ${idProblem}`);
      let ttlMs: number;
      try {
        ttlMs = parseDuration(opts.certTtl);
      } catch (e) {
        throw usageError(cmd, `--cert-ttl: ${(e as Error).message}`);
      }
      if (ttlMs <= 0) throw usageError(cmd, `--cert-ttl must be positive, got "${opts.certTtl}"`);
      for (const d of opts.certDnsName ?? []) {
        if (!HOSTNAME.test(d)) {
          throw usageError(cmd, `--cert-dns-name "${d}" is not a valid DNS name`);
        }
      }
      for (const id of opts.allowedSpiffeId ?? []) {
        const p = spiffeIdProblem(id);
        if (p) throw usageError(cmd, `--allowed-spiffe-id "${id}": ${p}`);
      }
      const r = await attestPid(cmd, pid);
      for (const w of r.warnings) console.error(`warning: ${w}`);
      const policy = buildPolicy(r.labels, workloadID, {
        labels: opts.label ?? DEFAULT_SELECTOR_LABELS,
        addLabels: opts.addLabel ?? [],
        dnsNames: opts.certDnsName ?? [],
        ttlMs,
        allowedSpiffeIds: opts.allowedSpiffeId ?? [],
        disableMtls: opts.disableMtls ?? false,
      });
      Deno.stdout.writeSync(new TextEncoder().encode(stringify(policy, { lineWidth: 0 })));
    });
}
