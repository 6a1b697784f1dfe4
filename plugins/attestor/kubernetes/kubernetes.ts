/**
 * The `kubernetes` attestor: pod UID and container id from the task's cgroup path, then the pod
 * from the kubelet's `/pods` (cached, see `pod_cache.ts`). Labels: see `pod_labels.ts`.
 *
 * @module
 */
import { z } from "zod";
import {
  type Attestor,
  definePlugin,
  type Labels,
  type PluginContext,
  type TaskContext,
} from "../../types.ts";
import { cgroupPathOf, containerIdFromCgroup, podUidFromCgroup } from "../_lib/cgroup.ts";
import { parseWith } from "../../sdk/config.ts";
import {
  fetchPods,
  type KubeletAuth,
  parseCredentials,
  readInlineOrFiles,
  SERVICE_ACCOUNT_TOKEN,
} from "./kubelet_client.ts";
import { PodCache } from "./pod_cache.ts";
import { findContainerStatus, podLabels } from "./pod_labels.ts";

const configSchema = z.object({
  enabled: z.boolean().default(false),
  kubeletHost: z.string().min(1).default("127.0.0.1"),
  kubeletPort: z.number().int().min(1).max(65535).default(10250),
  /** Inline PEM, or `/path[,/path…]`. */
  kubeletCA: z.string().optional(),
  skipKubeletVerification: z.boolean().default(false),
  /** Inline JWT or PEM cert+key, or `/path[,/path…]`. */
  credentials: z.string().optional(),
  /** Pod list age after which it is refreshed in the background (ms). */
  refreshMs: z.number().int().min(100).default(10_000),
  /** Minimum time between fetches triggered by an unknown pod (ms). */
  minRefreshMs: z.number().int().min(0).default(1000),
}).strict();
/** Parsed `kubernetes` config. */
export type KubernetesConfig = z.infer<typeof configSchema>;

async function resolveAuth(config: KubernetesConfig): Promise<KubeletAuth> {
  const ca = await readInlineOrFiles(config.kubeletCA);
  let creds = await readInlineOrFiles(config.credentials);
  if (creds === undefined) {
    try {
      creds = await Deno.readTextFile(SERVICE_ACCOUNT_TOKEN);
    } catch {
      // Not in a pod: anonymous (the kubelet will likely answer 401, reported per request).
    }
  }
  return { ...(ca ? { ca } : {}), ...parseCredentials(creds) };
}

/** The collector instance. */
export class KubernetesAttestor implements Attestor {
  readonly name = "kubernetes";
  readonly pods: PodCache;

  constructor(
    config: KubernetesConfig,
    auth: KubeletAuth,
    ctx: Pick<PluginContext, "clock" | "log">,
  ) {
    this.pods = new PodCache(
      (signal) =>
        fetchPods({
          host: config.kubeletHost,
          port: config.kubeletPort,
          auth,
          skipVerification: config.skipKubeletVerification,
          signal,
        }),
      {
        refreshMs: config.refreshMs,
        minRefreshMs: config.minRefreshMs,
        clock: ctx.clock,
        onError: (e) =>
          ctx.log.warn("Cannot refresh kubelet pods", { error: (e as Error).message }),
      },
    );
  }

  /** Labels of the pod and container `task` runs in; `{}` outside Kubernetes. */
  async collect(task: TaskContext, signal: AbortSignal): Promise<Labels> {
    const path = await cgroupPathOf(task);
    const uid = path ? podUidFromCgroup(path) : undefined;
    if (!uid) return {};
    const containerId = containerIdFromCgroup(path!);
    const pod = await this.pods.find(
      uid,
      signal,
      (p) => !containerId || findContainerStatus(p, containerId) !== undefined,
    );
    if (!pod) return {};
    return podLabels(pod, containerId ? findContainerStatus(pod, containerId) : undefined);
  }

  /** Stops a running fetch. */
  dispose(): void {
    this.pods.dispose();
  }
}

/** The plugin: `agent.metadataCollectors.kubernetes`. */
export const kubernetesAttestor = definePlugin({
  kind: "attestor",
  name: "kubernetes",
  description: "pod, namespace, service account, labels, container and image (kubelet /pods)",
  parseConfig(raw: unknown) {
    return parseWith(configSchema, raw);
  },
  async create(config: KubernetesConfig, ctx: PluginContext) {
    const a = new KubernetesAttestor(config, await resolveAuth(config), ctx);
    // Warm the pod list without blocking start-up.
    a.pods.refresh().catch(() => {});
    return a;
  },
});
