/**
 * The `http` policy source: an OPA-style bundle (tar.gz with `policies/`, `services/`, optional
 * `policy.wasm` and `data.json`, `.manifest` with the revision, `.signatures.json`) or one plain
 * YAML file, polled with ETag / If-None-Match, jitter and exponential backoff. Bearer token and a
 * custom CA are supported; with a verification key, unsigned and tampered bundles are refused.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { z } from "zod";
import { durationMs, parseWith } from "../../sdk/config.ts";
import { definePlugin, type PluginContext } from "../../types.ts";
import { pathString, pollFields, readSecretFile, readTokenFile, withTimeout } from "../_config.ts";
import { readLayout } from "../_layout.ts";
import { Poller, Serial } from "../_poller.ts";
import {
  decodeUtf8,
  gunzip,
  isGzip,
  limitsSchema,
  problemOf,
  readBody,
  RefusedContentError,
  sha256Hex,
} from "../_safety.ts";
import { SIGNATURES_FILE, type VerificationOptions, verifyBundle } from "../_signature.ts";
import { readTar } from "../_tar.ts";
import type { PolicyDelivery, PolicySourceInstance, SourceCheck, SourceProblem } from "../types.ts";

// A token file others can read is warned about (once).
const tokenLog = getLogger(["camblet", "plugin", "policySource", "http"]);

const verificationSchema = z.object({
  /** PEM public key (or HMAC secret) inline. */
  key: z.string().min(1).optional(),
  /** The same, from a file. */
  keyFile: pathString.optional(),
  algorithm: z.enum([
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "HS256",
    "HS384",
    "HS512",
  ]).default("RS256"),
  keyId: z.string().min(1).optional(),
  scope: z.string().optional(),
  exclude: z.array(z.string()).default([]),
}).strict().superRefine((v, ctx) => {
  if (!v.key === !v.keyFile) ctx.addIssue({ code: "custom", message: "give key or keyFile" });
});

const configSchema = z.object({
  url: z.string().regex(/^https?:\/\/\S+$/, "must be an http or https URL"),
  /** `auto` (gzip magic → bundle, else YAML), `bundle` or `yaml`. */
  format: z.enum(["auto", "bundle", "yaml"]).default("auto"),
  /** What a plain YAML file holds. */
  yamlKind: z.enum(["policies", "services"]).default("policies"),
  ...pollFields,
  timeout: durationMs.default(30_000),
  token: z.string().min(1).optional(),
  tokenFile: pathString.optional(),
  /** PEM CA certificates to trust (instead of the system roots). */
  caFile: pathString.optional(),
  headers: z.record(z.string(), z.string()).default({}),
  verification: verificationSchema.optional(),
  limits: limitsSchema,
}).strict().superRefine((c, ctx) => {
  if (c.token && c.tokenFile) {
    ctx.addIssue({ code: "custom", path: ["tokenFile"], message: "give token or tokenFile" });
  }
});

/** Parsed `http` source config. */
export type HttpSourceConfig = z.output<typeof configSchema>;

/** Parses an `http` source config (pure). */
export function parseHttpSourceConfig(raw: unknown) {
  return parseWith(configSchema, raw);
}

function yamlName(url: string): string {
  const last = new URL(url).pathname.split("/").filter(Boolean).at(-1);
  return last && /\.(ya?ml|json)$/i.test(last) ? last : "policies.yaml";
}

/** A running `http` source. */
export class HttpSource implements PolicySourceInstance {
  readonly type = "http";
  readonly location: string;
  readonly #c: HttpSourceConfig;
  readonly #client: Deno.HttpClient | undefined;
  readonly #verification: VerificationOptions | undefined;
  readonly #serial = new Serial();
  #etag: string | undefined;
  #digest: string | undefined;
  #revision: string | undefined;
  #poller: Poller | undefined;
  #ac = new AbortController();

  constructor(
    config: HttpSourceConfig,
    client: Deno.HttpClient | undefined,
    verification: VerificationOptions | undefined,
  ) {
    this.#c = config;
    this.#client = client;
    this.#verification = verification;
    const u = new URL(config.url);
    u.username = "";
    u.password = "";
    // Query values are often credentials (`?token=`, pre-signed `sig=`): never shown.
    for (const [, value] of u.searchParams) {
      if (value.length >= 3) this.#secrets.add(value).add(encodeURIComponent(value));
    }
    const raw = u.search.slice(1);
    for (const part of raw.split("&")) {
      const v = part.slice(part.indexOf("=") + 1);
      if (part.includes("=") && v.length >= 3) this.#secrets.add(v);
    }
    if (raw) {
      u.search = raw.split("&").map((part) =>
        part.includes("=") ? `${part.slice(0, part.indexOf("="))}=REDACTED` : part
      ).join("&");
    }
    if (config.token) this.#secrets.add(config.token);
    this.location = u.href;
  }

  readonly #secrets = new Set<string>();

  /** `text` with the URL's query values and the token replaced (error texts may quote them). */
  #scrub(text: string): string {
    for (const v of this.#secrets) text = text.replaceAll(v, "REDACTED");
    return text;
  }

  check(signal?: AbortSignal): Promise<SourceCheck> {
    return this.#serial.run(async () => {
      const t = withTimeout(
        signal ? AbortSignal.any([signal, this.#ac.signal]) : this.#ac.signal,
        this.#c.timeout,
      );
      try {
        return await this.#check(t.signal);
      } catch (e) {
        if (t.timedOut()) {
          return {
            kind: "failure",
            problems: [{ message: `GET ${this.location}: no answer within ${this.#c.timeout} ms` }],
          };
        }
        const p = problemOf(e);
        return { kind: "failure", problems: [{ ...p, message: this.#scrub(p.message) }] };
      } finally {
        t.clear();
      }
    });
  }

  async #check(signal: AbortSignal): Promise<SourceCheck> {
    const c = this.#c;
    const headers = new Headers(c.headers);
    const token = c.token ?? (c.tokenFile ? await readTokenFile(c.tokenFile, tokenLog) : "");
    if (token) headers.set("authorization", `Bearer ${token}`);
    if (this.#etag && this.#revision) headers.set("if-none-match", this.#etag);
    let response: Response;
    try {
      response = await fetch(c.url, {
        headers,
        signal,
        ...(this.#client ? { client: this.#client } : {}),
      });
    } catch (e) {
      if (signal.aborted) throw e;
      const cause = (e as Error).cause as Error | undefined;
      throw new Error(
        `GET ${this.location}: ${(e as Error).message}${cause ? `: ${cause.message}` : ""}`,
      );
    }
    if (response.status === 304 && this.#revision) {
      await response.body?.cancel();
      return { kind: "unchanged", revision: this.#revision };
    }
    if (!response.ok) {
      const text = (await response.text().catch(() => "")).slice(0, 200).trim();
      throw new Error(
        `GET ${this.location}: ${response.status} ${response.statusText}${text ? `: ${text}` : ""}`,
      );
    }
    const body = await readBody(response, c.limits.maxDownloadBytes);
    const etag = response.headers.get("etag") ?? undefined;
    const digest = await sha256Hex(body);
    if (digest === this.#digest && this.#revision) {
      this.#etag = etag;
      return { kind: "unchanged", revision: this.#revision };
    }
    const bundle = c.format === "bundle" || (c.format === "auto" && isGzip(body));
    const delivery = bundle
      ? await this.#bundle(body, etag, digest)
      : this.#yaml(body, etag, digest);
    this.#etag = etag;
    this.#digest = digest;
    this.#revision = delivery.revision;
    return { kind: "delivery", delivery };
  }

  async #bundle(body: Uint8Array, etag: string | undefined, digest: string) {
    const c = this.#c;
    const entries = readTar(await gunzip(body, c.limits.maxTotalBytes), c.limits);
    const warnings: SourceProblem[] = [];
    const signatures = entries.find((e) => e.path === SIGNATURES_FILE);
    if (this.#verification) {
      if (!signatures) {
        throw new RefusedContentError(
          `the bundle is not signed (no ${SIGNATURES_FILE}) and a verification key is configured`,
        );
      }
      await verifyBundle(signatures.data, entries, this.#verification);
    } else if (signatures) {
      warnings.push({
        file: SIGNATURES_FILE,
        message: "the bundle is signed but no verification key is configured; not checked",
      });
    }
    const layout = readLayout(entries, c.limits.maxTotalBytes);
    const delivery: PolicyDelivery = {
      revision: layout.revision ?? etag ?? `sha256:${digest.slice(0, 16)}`,
      files: layout.files,
      warnings: [...warnings, ...layout.warnings],
    };
    if (layout.opa) delivery.opa = layout.opa;
    if (layout.audit) delivery.audit = layout.audit;
    return delivery;
  }

  #yaml(body: Uint8Array, etag: string | undefined, digest: string): PolicyDelivery {
    if (this.#verification) {
      throw new RefusedContentError(
        "a verification key is configured, but the answer is not a (signed) bundle",
      );
    }
    const path = yamlName(this.#c.url);
    return {
      revision: etag ?? `sha256:${digest.slice(0, 16)}`,
      files: [{ kind: this.#c.yamlKind, path, text: decodeUtf8(path, body) }],
      warnings: [],
    };
  }

  watch(onCheck: (r: SourceCheck) => void): void {
    const c = this.#c;
    this.#poller = new Poller(() => this.check(), onCheck, {
      intervalMs: c.pollInterval,
      jitter: c.jitter,
      retryMinMs: c.retryMin,
    });
    this.#poller.start();
  }

  async dispose(): Promise<void> {
    this.#ac.abort();
    await this.#poller?.stop();
    await this.#serial.idle();
    this.#client?.close();
  }
}

/** The plugin. */
export const httpPolicySource = definePlugin({
  kind: "policySource",
  name: "http",
  description: "an OPA-style bundle (or one YAML file) over HTTP(S), polled with ETag",
  parseConfig: parseHttpSourceConfig,
  async create(config: HttpSourceConfig, _ctx: PluginContext): Promise<HttpSource> {
    const v = config.verification;
    const verification: VerificationOptions | undefined = v
      ? {
        key: v.key ?? await readSecretFile(v.keyFile!, "verification key"),
        algorithm: v.algorithm,
        exclude: v.exclude,
        ...(v.keyId !== undefined ? { keyId: v.keyId } : {}),
        ...(v.scope !== undefined ? { scope: v.scope } : {}),
      }
      : undefined;
    const client = config.caFile
      ? Deno.createHttpClient({ caCerts: [await readSecretFile(config.caFile, "CA")] })
      : undefined;
    return new HttpSource(config, client, verification);
  },
});
