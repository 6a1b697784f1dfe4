/**
 * The `docker` attestor: the container id from the task's cgroup path, then the Docker Engine
 * API's ContainerInspect over its Unix socket. Answers are cached per container id until the
 * container is gone (a 404 is cached briefly too, so host processes cost one lookup).
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
import { UnixHttpClient } from "../_lib/unix_http.ts";
import { envAllowed } from "../process/process.ts";
import { type ContainerInspect, dockerLabels } from "./docker_labels.ts";

const configSchema = z.object({
  enabled: z.boolean().default(false),
  socketPath: z.string().regex(/^(unix:\/\/)?\//, "must be an absolute path or unix:///path")
    .default("unix:///var/run/docker.sock"),
  /** Engine API version prefix; 1.41 is served by Docker 20.10 and later. */
  apiVersion: z.string().regex(/^\d+\.\d+$/).default("1.41"),
  /** Container environment variables to label (`NAME*` = prefix); none by default. */
  envAllowList: z.array(z.string().min(1)).default([]),
  /** How long an inspect answer is reused (ms). */
  cacheTtlMs: z.number().int().min(0).default(30_000),
}).strict();
/** Parsed `docker` config. */
export type DockerConfig = z.infer<typeof configSchema>;

interface Cached {
  labels: Labels;
  expiresAt: number;
}

/** The collector instance. */
export class DockerAttestor implements Attestor {
  readonly name = "docker";
  readonly #config: DockerConfig;
  readonly #ctx: Pick<PluginContext, "clock">;
  readonly #http: UnixHttpClient;
  readonly #cache = new Map<string, Cached>();

  constructor(config: DockerConfig, ctx: Pick<PluginContext, "clock">) {
    this.#config = config;
    this.#ctx = ctx;
    this.#http = new UnixHttpClient(config.socketPath);
  }

  /** Labels of the container `task` runs in; `{}` for host processes. */
  async collect(task: TaskContext, signal: AbortSignal): Promise<Labels> {
    const path = await cgroupPathOf(task);
    const id = path ? containerIdFromCgroup(path) : undefined;
    if (!id) return {};
    const now = this.#ctx.clock.now();
    const hit = this.#cache.get(id);
    if (hit && hit.expiresAt > now) return hit.labels;
    const c = await this.#http.getJson<ContainerInspect>(
      `/v${this.#config.apiVersion}/containers/${id}/json`,
      signal,
    );
    const labels = c ? dockerLabels(c, (n) => envAllowed(n, this.#config.envAllowList)) : {};
    this.#cache.set(id, {
      labels,
      expiresAt: now + (c ? this.#config.cacheTtlMs : Math.min(this.#config.cacheTtlMs, 5000)),
    });
    if (this.#cache.size > 4096) this.#cache.delete(this.#cache.keys().next().value!);
    return labels;
  }

  /** Closes the socket pool. */
  dispose(): void {
    this.#http.close();
  }
}

/** The plugin: `agent.metadataCollectors.docker`. */
export const dockerAttestor = definePlugin({
  kind: "attestor",
  name: "docker",
  description: "Docker container name, image, labels and network (Engine API over its socket)",
  parseConfig(raw: unknown) {
    return parseWith(configSchema, raw);
  },
  create: (config: DockerConfig, ctx: PluginContext) => new DockerAttestor(config, ctx),
});
