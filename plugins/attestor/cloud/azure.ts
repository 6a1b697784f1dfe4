/**
 * The `azure` attestor: Azure Instance Metadata Service (`Metadata: true`). Labels:
 * `azure:{name,ostype,priority,provider,sku}`, `azure:resourcegroup:name`,
 * `azure:subscription:id`, `azure:placement:{location,groupid,zone}`,
 * `azure:vm:{size,id,publisher,version,offer}`, `azure:vm:scaleset:name`, `azure:tag:<k>`,
 * `azure:network:{mac,private-ipv4,public-ipv4,private-ipv6,public-ipv6}`. Off by default.
 *
 * @module
 */
import { definePlugin, type Labels, type PluginContext } from "../../types.ts";
import { LabelBuilder } from "../_lib/labels.ts";
import { type CloudConfig, hostAttestor, imdsRequest, parseCloudConfig } from "./imds.ts";

type Ip = { privateIpAddress?: string; publicIpAddress?: string };

/** IMDS `/metadata/instance` (the parts we read). */
export interface AzureInstance {
  compute?: Record<string, unknown> & { tagsList?: { name: string; value: string }[] };
  network?: {
    interface?: { macAddress?: string; ipv4?: { ipAddress?: Ip[] }; ipv6?: { ipAddress?: Ip[] } }[];
  };
}

/** IMDS `/metadata/loadbalancer`. */
export interface AzureLoadBalancer {
  loadbalancer?: { publicIpAddresses?: { frontendIpAddress?: string }[] };
}

/** Labels from the two documents; pure. */
export function azureLabels(i: AzureInstance, lb: AzureLoadBalancer): Labels {
  const c = i.compute ?? {};
  const s = (k: string) => (typeof c[k] === "string" ? c[k] as string : undefined);
  const b = new LabelBuilder("azure");
  b.add("name", s("name")).add("ostype", s("osType")).add("priority", s("priority"))
    .add("provider", s("provider")).add("sku", s("sku"))
    .add("resourcegroup:name", s("resourceGroupName")).add("subscription:id", s("subscriptionId"))
    .add("placement:location", s("location")).add("placement:groupid", s("placementGroupId"))
    .add("placement:zone", s("zone"))
    .add("vm:size", s("vmSize")).add("vm:id", s("vmId")).add("vm:publisher", s("publisher"))
    .add("vm:version", s("version")).add("vm:offer", s("offer"))
    .add("vm:scaleset:name", s("vmScaleSetName"));
  for (const t of c.tagsList ?? []) b.add(`tag:${t.name}`, t.value);
  for (const n of i.network?.interface ?? []) {
    b.add("network:mac", n.macAddress);
    for (const ip of n.ipv4?.ipAddress ?? []) {
      b.add("network:private-ipv4", ip.privateIpAddress).add(
        "network:public-ipv4",
        ip.publicIpAddress,
      );
    }
    for (const ip of n.ipv6?.ipAddress ?? []) {
      b.add("network:private-ipv6", ip.privateIpAddress).add(
        "network:public-ipv6",
        ip.publicIpAddress,
      );
    }
  }
  for (const ip of lb.loadbalancer?.publicIpAddresses ?? []) {
    b.add("network:public-ipv4", ip.frontendIpAddress);
  }
  return b.build();
}

/** Fetches the Azure labels. */
export async function fetchAzureLabels(config: CloudConfig, signal: AbortSignal): Promise<Labels> {
  const headers = { Metadata: "true" };
  const [i, lb] = await Promise.all([
    imdsRequest(config, "/metadata/instance?api-version=2021-02-01", signal, { headers }),
    imdsRequest(config, "/metadata/loadbalancer?api-version=2020-10-01", signal, { headers }).catch(
      () => undefined,
    ),
  ]);
  if (i === undefined) throw new Error("Cannot read Azure instance metadata: 404");
  return azureLabels(JSON.parse(i), lb ? JSON.parse(lb) : {});
}

/** The plugin: `agent.metadataCollectors.azure`. */
export const azureAttestor = definePlugin({
  kind: "attestor",
  name: "azure",
  description: "Azure VM, placement, tags and network (IMDS); off by default",
  parseConfig: parseCloudConfig,
  create: (config: CloudConfig, ctx: PluginContext) =>
    hostAttestor("azure", ctx.clock, (signal) => fetchAzureLabels(config, signal)),
});
