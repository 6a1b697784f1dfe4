/**
 * HTTPS to the kubelet's read API (`GET /pods`), with the Go agent's credential rules:
 * `kubeletCA` and `credentials` are inline PEM/text, or — when they start with `/` — a
 * comma-separated list of files read and concatenated. Credentials that look like a JWT are sent
 * as a bearer token; otherwise the first certificate and key found are a client certificate.
 * Without credentials, the pod's service-account token is used when present.
 *
 * Uses `node:https` because Deno's fetch cannot skip verification per client
 * (`skipKubeletVerification`).
 *
 * @module
 */
import https from "node:https";
import type { Pod } from "./pod_labels.ts";

/** In-cluster service-account token (a DaemonSet's default credential). */
export const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/** Resolved TLS and auth material. */
export interface KubeletAuth {
  ca?: string;
  token?: string;
  cert?: string;
  key?: string;
}

/** Reads an inline-or-files value (`/a.pem,/b.pem`). */
export async function readInlineOrFiles(value: string | undefined): Promise<string | undefined> {
  if (value === undefined || value === "") return undefined;
  if (!value.startsWith("/")) return value;
  const parts = await Promise.all(
    value.split(",").map((p) => p.trim()).filter(Boolean).map(async (p) => {
      try {
        return await Deno.readTextFile(p);
      } catch (e) {
        throw new Error(`Cannot read kubelet credential file "${p}": ${(e as Error).message}`);
      }
    }),
  );
  return parts.join("\n");
}

const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** Splits credentials into a bearer token or a client certificate + key. */
export function parseCredentials(
  text: string | undefined,
): Pick<KubeletAuth, "token" | "cert" | "key"> {
  if (!text) return {};
  const t = text.trim();
  if (JWT.test(t)) return { token: t };
  const cert = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(t)?.[0];
  const key = /-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/.exec(t)
    ?.[0];
  if (cert && key) return { cert, key };
  throw new Error("Cannot use kubelet credentials: neither a JWT nor a PEM certificate and key");
}

/** Options of {@linkcode fetchPods}. */
export interface FetchPodsOptions {
  host: string;
  port: number;
  auth: KubeletAuth;
  skipVerification: boolean;
  signal: AbortSignal;
}

/** `GET https://host:port/pods` → the PodList's items. */
export function fetchPods(o: FetchPodsOptions): Promise<Pod[]> {
  const where = `https://${o.host.includes(":") ? `[${o.host}]` : o.host}:${o.port}/pods`;
  return new Promise((resolve, reject) => {
    if (o.signal.aborted) return reject(o.signal.reason);
    const req = https.request({
      host: o.host,
      port: o.port,
      path: "/pods",
      method: "GET",
      agent: false,
      headers: {
        accept: "application/json",
        ...(o.auth.token ? { authorization: `Bearer ${o.auth.token}` } : {}),
      },
      ...(o.auth.ca ? { ca: o.auth.ca } : {}),
      ...(o.auth.cert ? { cert: o.auth.cert, key: o.auth.key } : {}),
      rejectUnauthorized: !o.skipVerification,
    }, (res) => {
      const chunks: Uint8Array[] = [];
      res.on("data", (c: Uint8Array) => chunks.push(c));
      res.on("error", (e: Error) => reject(new Error(`Cannot GET ${where}: ${e.message}`)));
      res.on("end", () => {
        o.signal.removeEventListener("abort", onAbort);
        const text = new TextDecoder().decode(concat(chunks));
        if (res.statusCode !== 200) {
          return reject(
            new Error(`Cannot GET ${where}: HTTP ${res.statusCode} ${text.slice(0, 200).trim()}`),
          );
        }
        try {
          const list = JSON.parse(text) as { items?: Pod[] };
          resolve(Array.isArray(list.items) ? list.items : []);
        } catch (e) {
          reject(new Error(`Cannot parse ${where} answer: ${(e as Error).message}`));
        }
      });
    });
    const onAbort = () => {
      req.destroy();
      reject(o.signal.reason);
    };
    o.signal.addEventListener("abort", onAbort, { once: true });
    req.on("error", (e: Error) => {
      o.signal.removeEventListener("abort", onAbort);
      reject(new Error(`Cannot GET ${where}: ${e.message}`));
    });
    req.end();
  });
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
