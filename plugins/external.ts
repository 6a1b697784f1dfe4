/**
 * External plugins: any executable, declared in `plugins.external`, run as a child process that
 * speaks the JSON-RPC protocol of `plugins/sdk/protocol.ts`. Its sha256 is checked before every
 * start. {@linkcode externalPlugin} turns an entry into an ordinary plugin definition, so the loader
 * treats it like a built-in.
 *
 * @module
 */
import { z } from "zod";
import { durationMs, parseWith } from "./sdk/config.ts";
import { encodePem, fromBase64 } from "./sdk/pem.ts";
import {
  type AttestorCollectResult,
  type CaSignResult,
  type CaTrustBundleResult,
  DEFAULT_MAX_MESSAGE_BYTES,
  ERROR,
  type HealthResult,
  METHOD,
} from "./sdk/protocol.ts";
import {
  type Attestor,
  definePlugin,
  type Labels,
  type ParseResult,
  type PluginContext,
  type PluginDefinition,
  type TaskContext,
} from "./types.ts";
import {
  type CertificateAuthority,
  CsrRejectedError,
  type SignedCertificate,
  type SignRequest,
} from "./ca/types.ts";
import { PluginCallError, PluginProcess, type ProcessSpec } from "./_plugin_process.ts";

/** Kinds an external plugin can implement. */
export const EXTERNAL_KINDS = ["ca", "attestor"] as const;
/** A kind an external plugin can implement. */
export type ExternalKind = typeof EXTERNAL_KINDS[number];

const SIZE_UNITS: Record<string, number> = { "": 1, B: 1, KiB: 1024, MiB: 1024 * 1024 };
const MIN_MESSAGE_BYTES = 4 * 1024;
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** A byte size: a whole number of bytes, or a string such as `"1MiB"`, `"512KiB"`. */
const messageSize = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const m = typeof v === "number" ? [String(v), String(v), ""] : /^(\d+)\s*(B|KiB|MiB)?$/.exec(v);
  const bytes = m && Number.isSafeInteger(Number(m[1]))
    ? Number(m[1]) * SIZE_UNITS[m[2] ?? ""]!
    : NaN;
  if (!(bytes >= MIN_MESSAGE_BYTES && bytes <= MAX_MESSAGE_BYTES)) {
    ctx.addIssue({
      code: "custom",
      message: `Cannot use message size ${
        JSON.stringify(v)
      }: it must be bytes (a whole number, or with B, KiB or MiB) from 4KiB to 64MiB`,
    });
    return z.NEVER;
  }
  return bytes;
});

const entrySchema = z.object({
  kind: z.enum(EXTERNAL_KINDS, { error: `must be one of ${EXTERNAL_KINDS.join(", ")}` }),
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, "must match [a-z0-9][a-z0-9_-]*"),
  /** The executable; its bytes are what `sha256` covers. */
  path: z.string().min(1),
  args: z.array(z.string()).default([]),
  sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, "must be 64 hex digits").optional(),
  env: z.record(z.string(), z.string()).default({}),
  cwd: z.string().optional(),
  /** Handed to the plugin's `plugin.configure` as is. */
  config: z.unknown().optional(),
  callTimeout: durationMs.default(2000),
  startTimeout: durationMs.default(10_000),
  restartBackoff: durationMs.default(200),
  restartBackoffMax: durationMs.default(30_000),
  /** Longest message (stdout line) the plugin may write; past it, it is killed and restarted. */
  maxMessageSize: messageSize.default(DEFAULT_MAX_MESSAGE_BYTES),
}).strict();

/** A parsed `plugins.external[]` entry. */
export interface ExternalPluginConfig {
  kind: ExternalKind;
  name: string;
  path: string;
  args: string[];
  sha256?: string;
  env: Record<string, string>;
  cwd?: string;
  config: unknown;
  callTimeoutMs: number;
  startTimeoutMs: number;
  restartInitialMs: number;
  restartMaxMs: number;
  /** `maxMessageSize` in bytes (default 1 MiB). */
  maxMessageBytes: number;
}

/**
 * Parses one `plugins.external[]` entry. Pure; every problem at once.
 *
 * @example
 * ```ts
 * import { parseExternalEntry } from "./external.ts";
 * parseExternalEntry({ kind: "ca", name: "my-ca", path: "/usr/libexec/my-ca" }).ok; // true
 * ```
 */
export function parseExternalEntry(raw: unknown): ParseResult<ExternalPluginConfig> {
  const r = parseWith(entrySchema, raw);
  if (!r.ok) return r;
  const v = r.value;
  const out: ExternalPluginConfig = {
    kind: v.kind,
    name: v.name,
    path: v.path,
    args: v.args,
    env: v.env,
    config: v.config ?? {},
    callTimeoutMs: v.callTimeout,
    startTimeoutMs: v.startTimeout,
    restartInitialMs: v.restartBackoff,
    restartMaxMs: v.restartBackoffMax,
    maxMessageBytes: v.maxMessageSize,
  };
  if (v.sha256 !== undefined) out.sha256 = v.sha256.toLowerCase();
  if (v.cwd !== undefined) out.cwd = v.cwd;
  return { ok: true, value: out };
}

function spec(config: ExternalPluginConfig, ctx: PluginContext): ProcessSpec {
  const s: ProcessSpec = {
    kind: config.kind,
    name: config.name,
    command: config.path,
    args: config.args,
    env: config.env,
    config: config.config,
    trustDomain: ctx.trustDomain,
    agentVersion: ctx.agentVersion ?? "unknown",
    callTimeoutMs: config.callTimeoutMs,
    startTimeoutMs: config.startTimeoutMs,
    restartInitialMs: config.restartInitialMs,
    restartMaxMs: config.restartMaxMs,
    maxConsecutiveTimeouts: 3,
    maxMessageBytes: config.maxMessageBytes,
  };
  if (config.sha256 !== undefined) s.sha256 = config.sha256;
  if (config.cwd !== undefined) s.cwd = config.cwd;
  return s;
}

/**
 * `plugin.health` of a process, never rejecting: a process that is not `ready` (restarting after
 * a crash, given up) fails the call at once with the reason, and that reason is the answer.
 */
async function processHealth(process: PluginProcess, signal?: AbortSignal): Promise<HealthResult> {
  let r: unknown;
  try {
    r = await process.call(METHOD.health, {}, signal ? { signal } : {});
  } catch (e) {
    return { ok: false, message: e instanceof Error ? e.message : String(e) };
  }
  const { ok, message } = (r ?? {}) as { ok?: unknown; message?: unknown };
  if (typeof ok !== "boolean") {
    return { ok: false, message: `plugin.health answered ${JSON.stringify(r)}, not {ok: boolean}` };
  }
  return typeof message === "string" && message !== "" ? { ok, message } : { ok };
}

function der(b64: unknown, what: string): Uint8Array {
  if (typeof b64 !== "string") throw new TypeError(`Cannot read ${what}: not a base64 string`);
  return fromBase64(b64);
}

/** A CA served by an external process. */
export class ExternalCa implements CertificateAuthority {
  readonly name: string;
  readonly maxTtlMs: number;
  #process: PluginProcess;

  constructor(name: string, process: PluginProcess) {
    const max = process.configured.maxTtlSeconds;
    if (typeof max !== "number" || !(max > 0)) {
      throw new TypeError("Cannot use CA plugin: plugin.configure did not report maxTtlSeconds");
    }
    this.name = name;
    this.maxTtlMs = max * 1000;
    this.#process = process;
  }

  /** `ca.sign`; a `csrRejected` answer becomes {@linkcode CsrRejectedError}. */
  async sign(request: SignRequest, signal: AbortSignal): Promise<SignedCertificate> {
    let r: CaSignResult;
    try {
      r = await this.#process.call(METHOD.caSign, {
        csr: encodePem("CERTIFICATE REQUEST", request.csr),
        spiffeId: request.spiffeId,
        dnsNames: [...request.dnsNames],
        ttlSeconds: Math.ceil(request.ttlMs / 1000),
      }, { signal }) as CaSignResult;
    } catch (e) {
      if (e instanceof PluginCallError && e.code === ERROR.csrRejected) {
        throw new CsrRejectedError(e.message);
      }
      throw e;
    }
    return {
      certificate: der(r?.certificate, "ca.sign certificate"),
      chain: (r.chain ?? []).map((c, i) => der(c, `ca.sign chain[${i}]`)),
      trustAnchors: (r.trustAnchors ?? []).map((c, i) => der(c, `ca.sign trustAnchors[${i}]`)),
    };
  }

  /** `ca.trustBundle`. */
  async trustBundle(): Promise<Uint8Array[]> {
    const r = await this.#process.call(METHOD.caTrustBundle, {}) as CaTrustBundleResult;
    return (r?.trustAnchors ?? []).map((c, i) => der(c, `ca.trustBundle trustAnchors[${i}]`));
  }

  /** `plugin.health` within `callTimeout` (and `signal`); not ok while the process is not ready. */
  health(signal?: AbortSignal): Promise<HealthResult> {
    return processHealth(this.#process, signal);
  }

  /** The process state (`ready`, `restarting`, …). */
  get state(): string {
    return this.#process.state;
  }

  dispose(): Promise<void> {
    return this.#process.dispose();
  }
}

/** An attestor served by an external process. */
export class ExternalAttestor implements Attestor {
  readonly name: string;
  #process: PluginProcess;

  constructor(name: string, process: PluginProcess) {
    this.name = name;
    this.#process = process;
  }

  async collect(task: TaskContext, signal: AbortSignal): Promise<Labels> {
    const r = await this.#process.call(METHOD.attestorCollect, { task }, {
      signal,
    }) as AttestorCollectResult;
    const out: Labels = {};
    for (const [k, v] of Object.entries(r?.labels ?? {})) {
      // Own property even for a name like `__proto__` (plain assignment would set the prototype).
      const values = Array.isArray(v)
        ? v.filter((x): x is string => typeof x === "string")
        : undefined;
      if (values) {
        Object.defineProperty(out, k, {
          value: values,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
    }
    return out;
  }

  /** `plugin.health` within `callTimeout` (and `signal`); not ok while the process is not ready. */
  health(signal?: AbortSignal): Promise<HealthResult> {
    return processHealth(this.#process, signal);
  }

  dispose(): Promise<void> {
    return this.#process.dispose();
  }
}

type Instance<K extends ExternalKind> = K extends "ca" ? ExternalCa : ExternalAttestor;

/**
 * The plugin definition for an external entry of `kind` called `name`; its parser takes the whole
 * entry. Creating it checks the checksum, starts the process, handshakes and configures.
 */
export function externalPlugin<K extends ExternalKind>(
  kind: K,
  name: string,
): PluginDefinition<K, ExternalPluginConfig, Instance<K>> {
  return definePlugin({
    kind,
    name,
    description: `external ${kind} plugin`,
    parseConfig: parseExternalEntry,
    create: async (config, ctx) => {
      const process = await PluginProcess.start(spec(config, ctx), ctx.log);
      try {
        return (kind === "ca"
          ? new ExternalCa(name, process)
          : new ExternalAttestor(name, process)) as Instance<K>;
      } catch (e) {
        await process.dispose();
        throw e;
      }
    },
  });
}
