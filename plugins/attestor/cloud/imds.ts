/**
 * Shared plumbing of the cloud attestors: config, short-timeout HTTP to a link-local metadata
 * service, and a host-level result cached once fetched (a failure is retried after a minute,
 * never on every request).
 *
 * @module
 */
import { z } from "zod";
import type { Attestor, Clock, Labels, ParseResult } from "../../types.ts";
import { parseWith } from "../../sdk/config.ts";

/** Config of every cloud attestor (off by default). */
export const cloudConfigSchema = z.object({
  enabled: z.boolean().default(false),
  /** Metadata service base URL (tests and proxies override it). */
  endpoint: z.url().default("http://169.254.169.254"),
  /** Per-request timeout (ms): off-cloud the address does not answer at all. */
  timeoutMs: z.number().int().min(1).max(10_000).default(300),
}).strict();
/** Parsed cloud attestor config. */
export type CloudConfig = z.infer<typeof cloudConfigSchema>;

/** The shared config parser. */
export function parseCloudConfig(raw: unknown): ParseResult<CloudConfig> {
  return parseWith(cloudConfigSchema, raw);
}

/** A GET/PUT with the configured timeout, chained to the caller's signal. */
export async function imdsRequest(
  config: CloudConfig,
  path: string,
  signal: AbortSignal,
  init: { method?: string; headers?: Record<string, string> } = {},
): Promise<string | undefined> {
  const res = await fetch(new URL(path, config.endpoint), {
    method: init.method ?? "GET",
    headers: init.headers ?? {},
    signal: AbortSignal.any([signal, AbortSignal.timeout(config.timeoutMs)]),
  });
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  const text = await res.text();
  if (!res.ok) throw new Error(`Cannot ${init.method ?? "GET"} ${path}: HTTP ${res.status}`);
  return text;
}

/** An attestor whose labels describe the host: fetched once, then served from memory. */
export function hostAttestor(
  name: string,
  clock: Clock,
  fetchLabels: (signal: AbortSignal) => Promise<Labels>,
): Attestor {
  let labels: Labels | undefined;
  let failedAt = -Infinity;
  let lastError: unknown;
  let pending: Promise<Labels> | undefined;
  return {
    name,
    collect(_task, signal) {
      if (labels) return Promise.resolve(labels);
      if (clock.now() - failedAt < 60_000) return Promise.reject(lastError);
      pending ??= fetchLabels(signal).then((l) => (labels = l), (e) => {
        failedAt = clock.now();
        lastError = e;
        throw e;
      }).finally(() => (pending = undefined));
      return pending;
    },
    dispose() {},
  };
}
