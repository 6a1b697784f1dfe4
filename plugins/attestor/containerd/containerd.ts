/**
 * The `containerd` attestor: the container id from the task's cgroup path, then containerd's
 * own API (`containerd.services.containers.v1.Containers/Get`, gRPC over its Unix socket) in each
 * configured namespace. Works for containers started by Kubernetes (CRI, namespace `k8s.io`),
 * Docker (`moby`), nerdctl and ctr (`default`, cgroup `/<namespace>/<id>`).
 *
 * Labels: `containerd:id`, `containerd:namespace`, `containerd:image:name`, `containerd:runtime`,
 * `containerd:snapshotter`, `containerd:label:<k>` (for Kubernetes containers these include
 * `io.kubernetes.pod.name`, `io.kubernetes.pod.namespace`, `io.kubernetes.container.name`).
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
import { cgroupPathOf, containerIdFromCgroup } from "../_lib/cgroup.ts";
import { parseWith } from "../../sdk/config.ts";
import { GRPC_NOT_FOUND, GrpcError, GrpcUnixClient } from "../../sdk/grpc.ts";
import { LabelBuilder } from "../_lib/labels.ts";
import { decodeFields, encodeMessage, msg, str, stringMap } from "../../sdk/proto.ts";

const configSchema = z.object({
  enabled: z.boolean().default(false),
  socketPath: z.string().regex(/^(unix:\/\/)?\//, "must be an absolute path or unix:///path")
    .default("/run/containerd/containerd.sock"),
  /** containerd namespaces to look in, in order. */
  namespaces: z.array(z.string().min(1)).min(1).default(["k8s.io", "moby", "default"]),
  /** How long an answer is reused (ms). */
  cacheTtlMs: z.number().int().min(0).default(30_000),
}).strict();
/** Parsed `containerd` config. */
export type ContainerdConfig = z.infer<typeof configSchema>;

/** containerd's Container message (the fields we read). */
export interface ContainerdContainer {
  id: string;
  labels: Record<string, string>;
  image: string;
  runtime: string;
  snapshotter: string;
}

/** Decodes `GetContainerResponse` (container = 1: id 1, labels 2, image 3, runtime 4{name 1}, snapshotter 6). */
export function decodeGetContainerResponse(bytes: Uint8Array): ContainerdContainer {
  const c = msg(decodeFields(bytes), 1);
  return {
    id: str(c, 1),
    labels: stringMap(c, 2),
    image: str(c, 3),
    runtime: str(msg(c, 4), 1),
    snapshotter: str(c, 6),
  };
}

/** `containerd:*` labels of a container. */
export function containerdLabels(c: ContainerdContainer, namespace: string): Labels {
  return new LabelBuilder("containerd")
    .add("id", c.id).add("namespace", namespace).add("image:name", c.image)
    .add("runtime", c.runtime).add("snapshotter", c.snapshotter)
    .addMap("label", c.labels).build();
}

/** Candidate (namespace, id) pairs for a cgroup path. */
export function candidates(path: string, namespaces: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  const segs = path.split("/").filter(Boolean);
  // ctr/nerdctl without systemd: /<namespace>/<id>
  if (segs.length === 2 && namespaces.includes(segs[0]!)) out.push([segs[0]!, segs[1]!]);
  const id = containerIdFromCgroup(path);
  if (id) {
    for (const ns of namespaces) {
      if (!out.some(([n, i]) => n === ns && i === id)) out.push([ns, id]);
    }
  }
  return out;
}

/** The collector instance. */
export class ContainerdAttestor implements Attestor {
  readonly name = "containerd";
  readonly #config: ContainerdConfig;
  readonly #ctx: Pick<PluginContext, "clock">;
  readonly #grpc: GrpcUnixClient;
  readonly #cache = new Map<string, { labels: Labels; expiresAt: number }>();

  constructor(config: ContainerdConfig, ctx: Pick<PluginContext, "clock">) {
    this.#config = config;
    this.#ctx = ctx;
    this.#grpc = new GrpcUnixClient(config.socketPath);
  }

  /** Labels of the containerd container `task` runs in; `{}` when none. */
  async collect(task: TaskContext, signal: AbortSignal): Promise<Labels> {
    const path = await cgroupPathOf(task);
    if (!path) return {};
    const now = this.#ctx.clock.now();
    const hit = this.#cache.get(path);
    if (hit && hit.expiresAt > now) return hit.labels;
    let labels: Labels = {};
    for (const [ns, id] of candidates(path, this.#config.namespaces)) {
      try {
        const res = await this.#grpc.unary(
          "/containerd.services.containers.v1.Containers/Get",
          encodeMessage({ 1: id }),
          signal,
          { "containerd-namespace": ns },
        );
        labels = containerdLabels(decodeGetContainerResponse(res), ns);
        break;
      } catch (e) {
        if (!(e instanceof GrpcError && e.code === GRPC_NOT_FOUND)) throw e;
      }
    }
    this.#cache.set(path, { labels, expiresAt: now + this.#config.cacheTtlMs });
    if (this.#cache.size > 4096) this.#cache.delete(this.#cache.keys().next().value!);
    return labels;
  }

  /** Closes the gRPC session. */
  dispose(): Promise<void> {
    return this.#grpc.close();
  }
}

/** The plugin: `agent.metadataCollectors.containerd` (new; the Go agent had none). */
export const containerdAttestor = definePlugin({
  kind: "attestor",
  name: "containerd",
  description:
    "containerd container id, namespace, image and labels (containerd API over its socket)",
  parseConfig(raw: unknown) {
    return parseWith(configSchema, raw);
  },
  create: (config: ContainerdConfig, ctx: PluginContext) => new ContainerdAttestor(config, ctx),
});
