/**
 * The `gcp` attestor: Compute Engine metadata server (`Metadata-Flavor: Google`). Labels (as
 * metadatax names them): `gcp:instance:{id,name,cpu-platform}`, `gcp:instance:tag`,
 * `gcp:instance:image:{project,name}`, `gcp:instance:machine:{project,type}`,
 * `gcp:instance:placement:{project,zone,region}`, `gcp:instance:attribute:<k>` (no `ssh-keys`,
 * no multi-line values), `gcp:instance:network:{mac,private-ipv4,public-ipv4,…}`,
 * `gcp:instance:scheduling:{automatic-restart,onHostMaintenance,preemptible}`,
 * `gcp:instance:serviceaccount:<name>:{alias,email,scope}`, `gcp:project:id`, `gcp:project:id:numeric`, `gcp:project:attribute:<k>`. Off by default.
 *
 * @module
 */
import { definePlugin, type Labels, type PluginContext } from "../../types.ts";
import { LabelBuilder } from "../_lib/labels.ts";
import { type CloudConfig, hostAttestor, imdsRequest, parseCloudConfig } from "./imds.ts";

/** GCE `instance/?recursive=true` (the parts we read). */
export interface GceInstance {
  id?: number | string;
  name?: string;
  cpuPlatform?: string;
  image?: string;
  machineType?: string;
  zone?: string;
  tags?: string[];
  attributes?: Record<string, string>;
  scheduling?: { automaticRestart?: string; onHostMaintenance?: string; preemptible?: string };
  networkInterfaces?: { mac?: string; ip?: string; accessConfigs?: { externalIp?: string }[] }[];
  serviceAccounts?: Record<string, { aliases?: string[]; email?: string; scopes?: string[] }>;
}

/** GCE `project/?recursive=true`. */
export interface GceProject {
  projectId?: string;
  numericProjectId?: number | string;
  attributes?: Record<string, string>;
}

function singleLine(attrs: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(attrs ?? {}).filter(([k, v]) =>
      k !== "ssh-keys" && (v.match(/\n/g)?.length ?? 0) <= 1
    ),
  );
}

/** Labels from the two documents; pure. */
export function gcpLabels(i: GceInstance, p: GceProject): Labels {
  const b = new LabelBuilder("gcp");
  b.add("instance:id", i.id).add("instance:name", i.name).add(
    "instance:cpu-platform",
    i.cpuPlatform,
  );
  b.addMap("instance:attribute", singleLine(i.attributes)).add("instance:tag", ...i.tags ?? []);
  const img = (i.image ?? "").split("/");
  if (img.length === 5) b.add("instance:image:project", img[1]).add("instance:image:name", img[4]);
  const mt = (i.machineType ?? "").split("/");
  if (mt.length === 4) b.add("instance:machine:project", mt[1]).add("instance:machine:type", mt[3]);
  const z = (i.zone ?? "").split("/");
  if (z.length === 4) {
    b.add("instance:placement:project", z[1]).add("instance:placement:zone", z[3])
      .add("instance:placement:region", z[3]!.slice(0, Math.max(0, z[3]!.lastIndexOf("-"))));
  }
  const s = i.scheduling ?? {};
  b.add("instance:scheduling:automatic-restart", s.automaticRestart?.toLowerCase())
    .add("instance:scheduling:onHostMaintenance", s.onHostMaintenance?.toLowerCase())
    .add("instance:scheduling:preemptible", s.preemptible?.toLowerCase());
  for (const n of i.networkInterfaces ?? []) {
    const v6 = (n.ip ?? "").includes(":");
    b.add("instance:network:mac", n.mac).add(`instance:network:private-ipv${v6 ? 6 : 4}`, n.ip);
    for (const ac of n.accessConfigs ?? []) {
      b.add(`instance:network:public-ipv${v6 ? 6 : 4}`, ac.externalIp);
    }
  }
  for (const [name, sa] of Object.entries(i.serviceAccounts ?? {})) {
    const at = `instance:serviceaccount:${name}`;
    b.add(`${at}:alias`, ...sa.aliases ?? []).add(`${at}:email`, sa.email)
      .add(`${at}:scope`, ...sa.scopes ?? []);
  }
  b.add("project:id", p.projectId).add("project:id:numeric", p.numericProjectId)
    .addMap("project:attribute", singleLine(p.attributes));
  return b.build();
}

/** Fetches the GCP labels. */
export async function fetchGcpLabels(config: CloudConfig, signal: AbortSignal): Promise<Labels> {
  const headers = { "Metadata-Flavor": "Google" };
  const [i, p] = await Promise.all([
    imdsRequest(config, "/computeMetadata/v1/instance/?recursive=true", signal, { headers }),
    imdsRequest(config, "/computeMetadata/v1/project/?recursive=true", signal, { headers }),
  ]);
  if (i === undefined) throw new Error("Cannot read GCE instance metadata: 404");
  return gcpLabels(parseExactIds(i), p ? parseExactIds(p) : {});
}

/** JSON.parse that keeps the 64-bit instance and project ids exact (they exceed 2^53). */
function parseExactIds<T>(text: string): T {
  return JSON.parse(
    text,
    (key, value, context?: { source?: string }) =>
      (key === "id" || key === "numericProjectId") && typeof value === "number"
        ? context?.source ?? String(value)
        : value,
  );
}

/** The plugin: `agent.metadataCollectors.gcp`. */
export const gcpAttestor = definePlugin({
  kind: "attestor",
  name: "gcp",
  description:
    "Google Compute Engine instance, placement and project (metadata server); off by default",
  parseConfig: parseCloudConfig,
  create: (config: CloudConfig, ctx: PluginContext) =>
    hostAttestor("gcp", ctx.clock, (signal) => fetchGcpLabels(config, signal)),
});
