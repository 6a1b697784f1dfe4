/**
 * The `spire` CA's config and its one pure parser (shared by `run` and `validate`). The Workload
 * API socket follows the SPIFFE convention: `SPIFFE_ENDPOINT_SOCKET` when set.
 *
 * @module
 */
import { z } from "zod";
import { durationMs, zodProblems } from "../../sdk/config.ts";
import type { ConfigProblem, ParseResult } from "../../types.ts";

const HOUR = 3_600_000;

/** SPIRE's default agent socket. */
export const DEFAULT_WORKLOAD_SOCKET = "unix:///tmp/spire-agent/public/api.sock";

const schema = z.object({
  /** The SPIRE agent's Workload API socket. */
  workloadSocket: z.string().regex(/^(unix:\/\/)?\//, "must be an absolute path or unix:///path")
    .optional(),
  /** The SPIRE server's gRPC address (`host:port`, default port 8081). */
  serverAddress: z.string({ error: "required: the SPIRE server's host:port" }).min(1),
  /** The server's SPIFFE ID (default `spiffe://<trust domain>/spire/server`). */
  serverId: z.string().startsWith("spiffe://").optional(),
  /** Which of the workload's SVIDs to use when it has several (default: the first). */
  svidId: z.string().startsWith("spiffe://").optional(),
  /** Lifetime asked for the downstream CA; the server may shorten it. */
  caTtl: durationMs.default(24 * HOUR),
  maxTtl: durationMs.default(24 * HOUR),
  backdate: durationMs.default(120_000),
  checkInterval: durationMs.default(30_000),
  /** Calls to the SPIRE server. */
  requestTimeout: durationMs.default(10_000),
  /** How long start-up waits for the first X509-SVID (a new entry reaches the agent at its next sync). */
  startTimeout: durationMs.default(30_000),
  /** Driving camblet-driver: the CA chain and anchors must be RSA. */
  kernelDriver: z.boolean().default(true),
}).strict();

/** Parsed `spire` config; durations in milliseconds. */
export interface SpireConfig {
  workloadSocket: string;
  serverHost: string;
  serverPort: number;
  serverId?: string;
  svidId?: string;
  caTtlMs: number;
  maxTtlMs: number;
  backdateMs: number;
  checkIntervalMs: number;
  requestTimeoutMs: number;
  startTimeoutMs: number;
  kernelDriver: boolean;
}

function hostPort(s: string): { host: string; port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(s);
  if (!m) return undefined;
  const port = m[2] === undefined ? 8081 : Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
}

/**
 * Parses `plugins.ca.spire`; `SPIFFE_ENDPOINT_SOCKET` in `env` is the default socket. Pure;
 * reports every problem at once.
 *
 * @example
 * ```ts
 * import { parseSpireConfig } from "./config.ts";
 * const r = parseSpireConfig({ serverAddress: "spire-server:8081" }, {});
 * r.ok && r.value.workloadSocket; // "unix:///tmp/spire-agent/public/api.sock"
 * ```
 */
export function parseSpireConfig(
  raw: unknown,
  env: Record<string, string | undefined> = {},
): ParseResult<SpireConfig> {
  const r = schema.safeParse(raw ?? {});
  if (!r.success) return { ok: false, problems: zodProblems(r.error) };
  const v = r.data;
  const problems: ConfigProblem[] = [];
  const hp = hostPort(v.serverAddress);
  if (!hp) {
    problems.push({
      field: "serverAddress",
      message: `Cannot parse "${v.serverAddress}" as host:port`,
    });
  }
  if (v.backdate > HOUR) problems.push({ field: "backdate", message: "must be at most 1h" });
  if (problems.length > 0 || !hp) return { ok: false, problems };
  const value: SpireConfig = {
    workloadSocket: v.workloadSocket ?? env.SPIFFE_ENDPOINT_SOCKET ?? DEFAULT_WORKLOAD_SOCKET,
    serverHost: hp.host,
    serverPort: hp.port,
    caTtlMs: v.caTtl,
    maxTtlMs: v.maxTtl,
    backdateMs: v.backdate,
    checkIntervalMs: v.checkInterval,
    requestTimeoutMs: v.requestTimeout,
    startTimeoutMs: v.startTimeout,
    kernelDriver: v.kernelDriver,
  };
  if (v.serverId !== undefined) value.serverId = v.serverId;
  if (v.svidId !== undefined) value.svidId = v.svidId;
  return { ok: true, value };
}
