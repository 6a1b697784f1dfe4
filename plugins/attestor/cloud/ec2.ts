/**
 * The `ec2` attestor (AWS): instance metadata over IMDSv2 (session token first). Labels:
 * `ec2:security-groups`, `ec2:instance:{id,type}`, `ec2:ami:id`, `ec2:kernel:id`,
 * `ec2:network:{hostname,local-hostname,public-hostname,local-ipv4,public-ipv4,local-ipv6,public-ipv6,mac}`,
 * `ec2:placement:{availability-zone,availability-zone-id,group-name,host-id,partition-number,region}`,
 * `ec2:services:{domain,partition}`. Off by default.
 *
 * @module
 */
import { definePlugin, type Labels, type PluginContext } from "../../types.ts";
import { LabelBuilder } from "../_lib/labels.ts";
import { type CloudConfig, hostAttestor, imdsRequest, parseCloudConfig } from "./imds.ts";

const KEYS: Record<string, string> = {
  "security-groups": "security-groups",
  "instance:id": "instance-id",
  "instance:type": "instance-type",
  "ami:id": "ami-id",
  "kernel:id": "kernel-id",
  ...Object.fromEntries(
    [
      "hostname",
      "local-hostname",
      "public-hostname",
      "local-ipv4",
      "public-ipv4",
      "local-ipv6",
      "public-ipv6",
      "mac",
    ]
      .map((k) => [`network:${k}`, k]),
  ),
  ...Object.fromEntries(
    [
      "availability-zone",
      "availability-zone-id",
      "group-name",
      "host-id",
      "partition-number",
      "region",
    ]
      .map((k) => [`placement:${k}`, `placement/${k}`]),
  ),
  "services:domain": "services/domain",
  "services:partition": "services/partition",
};

/** Fetches the EC2 labels. */
export async function ec2Labels(config: CloudConfig, signal: AbortSignal): Promise<Labels> {
  const token = await imdsRequest(config, "/latest/api/token", signal, {
    method: "PUT",
    headers: { "X-aws-ec2-metadata-token-ttl-seconds": "21600" },
  });
  if (!token) throw new Error("Cannot get an IMDSv2 token: 404");
  const b = new LabelBuilder("ec2");
  await Promise.all(
    Object.entries(KEYS).map(async ([label, path]) => {
      const v = await imdsRequest(config, `/latest/meta-data/${path}`, signal, {
        headers: { "X-aws-ec2-metadata-token": token },
      });
      if (v !== undefined) b.add(label, ...v.split("\n").map((s) => s.trim()));
    }),
  );
  return b.build();
}

/** The plugin: `agent.metadataCollectors.ec2`. */
export const ec2Attestor = definePlugin({
  kind: "attestor",
  name: "ec2",
  description: "AWS EC2 instance, placement and network (IMDSv2); off by default",
  parseConfig: parseCloudConfig,
  create: (config: CloudConfig, ctx: PluginContext) =>
    hostAttestor("ec2", ctx.clock, (signal) => ec2Labels(config, signal)),
});
