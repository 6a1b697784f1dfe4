/**
 * The agent's configuration: the Camblet Go agent's `agent.*` keys (camblet-compat §1.3) plus our
 * own (`ca`, `controlSocket`, `metricsAddress`, `plugins`). One zod schema; strict everywhere so
 * unknown keys are reported.
 *
 * @module
 */
import { z } from "zod";
import { parseDuration } from "../duration.ts";
import { trustDomainProblem } from "../../driver/spiffe.ts";

/** Release builds of the Go agent used this directory; so do we. */
export const CONFIG_DIR = "/etc/camblet";

const duration = z.string().superRefine((s, ctx) => {
  try {
    parseDuration(s);
  } catch (e) {
    ctx.addIssue({ code: "custom", message: (e as Error).message });
  }
});

const trustDomain = z.string().superRefine((s, ctx) => {
  const p = trustDomainProblem(s);
  if (p) ctx.addIssue({ code: "custom", message: p });
});

/** A path list: YAML list, or a single string (comma-separated from env). */
const pathList = z.union([z.string().transform((s) => [s]), z.array(z.string())]);

const toggle = (enabled: boolean) => z.object({ enabled: z.boolean().default(enabled) }).strict();

const collectors = z.object({
  procfs: z.object({
    enabled: z.boolean().default(true),
    // The Go agent defaulted this to true and leaked every env var into labels; we don't.
    extractEnvs: z.boolean().default(false),
    envAllowList: z.array(z.string()).default([]),
  }).strict().prefault({}),
  linuxos: toggle(true).prefault({}),
  sysfsdmi: toggle(true).prefault({}),
  azure: toggle(false).prefault({}),
  ec2: toggle(false).prefault({}),
  gcp: toggle(false).prefault({}),
  kubernetes: z.object({
    enabled: z.boolean().default(false),
    kubeletHost: z.string().default("127.0.0.1"),
    kubeletPort: z.number().int().min(1).max(65535).default(10250),
    kubeletCA: z.string().optional(),
    skipKubeletVerification: z.boolean().default(false),
    credentials: z.string().optional(),
  }).strict().prefault({}),
  docker: z.object({
    enabled: z.boolean().default(false),
    socketPath: z.string().default("unix:///var/run/docker.sock"),
  }).strict().prefault({}),
  // Not in the Go agent: containerd's own API, and systemd units from the cgroup path.
  containerd: z.object({
    enabled: z.boolean().default(false),
    socketPath: z.string().default("/run/containerd/containerd.sock"),
    namespaces: z.array(z.string()).optional(),
  }).strict().prefault({}),
  systemd: toggle(true).prefault({}),
}).strict();

/** `agent.attestation`: how augment requests are answered (not in the Go agent). */
const attestation = z.object({
  /** Deadline for collectors per request; the kernel waits 1 s in all. */
  budget: duration.default("500ms"),
  /** Fail a request when a collector fails or is late, instead of answering with what is ready. */
  strict: z.boolean().default(false),
  /** How long a process' labels are reused (entries also go when the process exits). */
  cacheTTL: duration.default("1m"),
}).strict();

/** The data plane: the kernel module, or our eBPF-steered proxy where the module is absent. */
export const DRIVERS = ["auto", "kernel", "proxy"] as const;

const port = z.number().int().min(1).max(65535);

/** `agent.proxy`: the proxy data plane (not in the Go agent). */
const proxy = z.object({
  /** Loopback port steered outbound connections arrive on. */
  outboundPort: port.default(15001),
  /** Loopback port steered inbound connections arrive on. */
  inboundPort: port.default(15006),
  /**
   * Keep the steering pinned while no agent serves, so protected destinations are refused
   * rather than reached in plaintext. Lifted by removing `pinDir`.
   */
  failClosed: z.boolean().default(false),
  /** bpffs directory for the pinned links (fail-closed only). */
  pinDir: z.string().default("/sys/fs/bpf/camblet"),
  /** Workload keys the agent generates: rsa talks to camblet-driver peers (ECDHE-RSA only). */
  keyType: z.enum(["rsa", "ecdsa"]).default("rsa"),
  /** How often listening sockets are matched against inbound policies. */
  listenerScanInterval: duration.default("2s"),
  /** cgroup v2 directory the steering attaches to (default: the root). */
  cgroupPath: z.string().optional(),
}).strict();

/** `agent.guard`: the runtime guard's behaviour when the agent stops (not in the Go agent). */
const guard = z.object({
  /**
   * Keep the guard's programs pinned while no agent runs, so the last rules stay enforced
   * instead of lifting with the agent; the next agent takes them over. Lifted by removing
   * `pinDir`. Env override: `CAMBLET_GUARD_FAIL_CLOSED=1|0`.
   */
  failClosed: z.boolean().default(false),
  /**
   * bpffs directory of the pins, the guard's alone (a takeover empties it). Env override:
   * `CAMBLET_GUARD_PIN_DIR`.
   */
  pinDir: z.string().regex(/^\/(?!.*(^|\/)\.\.?(\/|$))/, {
    error: (iss) => `pinDir ${JSON.stringify(iss.input)} must be an absolute path without . or ..`,
  }).default("/sys/fs/bpf/camblet-guard"),
}).strict();

/** `agent.audit`: the syscall audit judged by Rego rules (not in the Go agent). Off by default. */
const audit = z.object({
  /** Load the capture programs and judge syscalls (root: CAP_BPF, CAP_PERFMON). */
  enabled: z.boolean().default(false),
  /**
   * The rules: a directory of `.rego` (compiled with `opa`), a `policy.wasm` or an opa bundle.
   * A policy source delivering an `audit/` directory takes precedence while it does.
   */
  rules: z.string().min(1).optional(),
  /** The opa binary Rego rules are compiled with (`opa build -t wasm`). */
  opa: z.string().min(1).default("opa"),
  sinks: z.object({
    /** Violations in the agent's log, at their severity's level. */
    log: toggle(true).prefault({}),
    /** JSON lines to a file (0600), rotated by size. */
    file: z.object({
      path: z.string().min(1),
      maxBytes: z.number().int().min(4096).default(16 << 20),
      keep: z.number().int().min(1).max(100).default(5),
    }).strict().optional(),
    /** JSON lines POSTed in batches; a bounded queue, never blocking the capture. */
    webhook: z.object({
      url: z.url({ protocol: /^https?$/ }),
      queueMax: z.number().int().min(1).max(1_000_000).default(10_000),
      attempts: z.number().int().min(1).max(20).default(5),
      timeout: duration.default("5s"),
    }).strict().optional(),
  }).strict().prefault({}),
}).strict();

/** `agent.*` keys. */
export const agentSchema = z.object({
  trustDomain: trustDomain.default("camblet"),
  defaultCertTTL: duration.default("24h"),
  /** Go agent's gRPC trace address; accepted for compatibility, unused (we serve on a Unix socket). */
  localAddress: z.string().optional(),
  kernelModuleDevice: z.string().default("/dev/camblet"),
  /** `auto`: the kernel module when its device exists, else the proxy data plane. */
  driver: z.enum(DRIVERS).default("auto"),
  proxy: proxy.prefault({}),
  caPEMPath: z.string().default(`${CONFIG_DIR}/ca.pem`),
  policiesPath: pathList.default([`${CONFIG_DIR}/policies`]),
  servicesPath: pathList.default([`${CONFIG_DIR}/services`]),
  /** How often service hostnames are looked up again (changes are pushed); `0s` = never. */
  serviceResolveInterval: duration.default("1m"),
  ca: z.string().regex(
    /^[a-z0-9][a-z0-9_-]*$/,
    "plugin name must be lower-case letters, digits, - or _",
  )
    .default("self-signed"),
  controlSocket: z.string().default("/run/camblet/agent.sock"),
  metricsAddress: z.string().optional(),
  metadataCollectors: collectors.prefault({}),
  attestation: attestation.prefault({}),
  audit: audit.prefault({}),
  guard: guard.prefault({}),
}).strict();

/** `plugins.*`: per-kind plugin configuration; each plugin's own parser validates its part. */
export const pluginsSchema = z.object({
  ca: z.record(z.string(), z.unknown()).optional(),
  policySource: z.array(z.record(z.string(), z.unknown())).optional(),
  attestor: z.record(z.string(), z.unknown()).optional(),
  external: z.array(z.record(z.string(), z.unknown())).optional(),
}).strict();

/** The whole config file. */
export const configSchema = z.object({
  agent: agentSchema.prefault({}),
  plugins: pluginsSchema.prefault({}),
}).strict();

/** Validated configuration with defaults applied. */
export type Config = z.infer<typeof configSchema>;
/** Validated `agent.*` section. */
export type AgentConfig = Config["agent"];
