/**
 * Hostname resolution for service addresses, kept outside the (pure) compiler: `/etc/hosts`
 * first, then DNS A and AAAA records. `localhost` is always 127.0.0.1 and ::1.
 *
 * @module
 */
import { ipKey } from "./address.ts";
import { hostnameKey, type Resolutions } from "./services.ts";
import { errorMessage } from "../errors.ts";

/** Looks up one hostname; resolves to its addresses (empty when none) or rejects saying why. */
export type HostResolver = (hostname: string) => Promise<string[]>;

/** Options for {@linkcode systemResolver}. */
export interface SystemResolverOptions {
  /** Hosts file (default `/etc/hosts`); a missing file is treated as empty. */
  hostsFile?: string;
  /** Per-query DNS timeout (default 5 s). */
  timeoutMs?: number;
  /** DNS lookup (default `Deno.resolveDns`); tests inject one. */
  resolveDns?: (
    name: string,
    type: "A" | "AAAA",
    opts: { signal: AbortSignal },
  ) => Promise<string[]>;
}

/**
 * Parses a hosts file into hostname → addresses (in file order, duplicates dropped).
 *
 * @example
 * ```ts
 * import { parseHosts } from "./resolve.ts";
 * parseHosts("10.0.0.5 db db.local # primary\n").get("db"); // ["10.0.0.5"]
 * ```
 */
export function parseHosts(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const raw of text.split("\n")) {
    const [ip, ...names] = raw.replace(/#.*/, "").trim().split(/\s+/);
    if (!ip || ipKey(ip) === undefined) continue;
    for (const n of names) {
      const key = hostnameKey(n);
      const list = out.get(key) ?? [];
      if (!list.includes(ip)) list.push(ip);
      out.set(key, list);
    }
  }
  return out;
}

/** The hosts file, then DNS (A and AAAA in parallel); "localhost" is answered without either. */
export function systemResolver(options: SystemResolverOptions = {}): HostResolver {
  const hostsFile = options.hostsFile ?? "/etc/hosts";
  const timeoutMs = options.timeoutMs ?? 5000;
  const dns = options.resolveDns ??
    ((name: string, type: "A" | "AAAA", opts: { signal: AbortSignal }) =>
      Deno.resolveDns(name, type, opts));
  let hosts: Promise<Map<string, string[]>> | undefined;
  const readHosts = async () => {
    try {
      return parseHosts(await Deno.readTextFile(hostsFile));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return new Map<string, string[]>();
      throw new Error(`Cannot read hosts file "${hostsFile}": ${(e as Error).message}`);
    }
  };
  const query = async (name: string, type: "A" | "AAAA"): Promise<string[]> => {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    try {
      return await dns(name, type, { signal: ctl.signal });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      if (ctl.signal.aborted) throw new Error(`DNS ${type} query timed out after ${timeoutMs} ms`);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  };
  return async function lookupHost(hostname: string): Promise<string[]> {
    const name = hostnameKey(hostname);
    if (name === "localhost") return ["127.0.0.1", "::1"];
    const fromHosts = (await (hosts ??= readHosts())).get(name);
    if (fromHosts?.length) return [...fromHosts];
    const results = await Promise.allSettled([query(name, "A"), query(name, "AAAA")]);
    const ips = results.flatMap((r) => r.status === "fulfilled" ? r.value : []);
    const failed = results.find((r) => r.status === "rejected");
    if (!ips.length && failed) throw failed.reason;
    return ips;
  };
}

/**
 * Resolves every name with `resolver` (concurrently) into {@linkcode Resolutions}; failures are
 * recorded with their reason instead of thrown, so the compiler can report them per address.
 */
export async function resolveHostnames(
  names: Iterable<string>,
  resolver: HostResolver = systemResolver(),
): Promise<Resolutions> {
  const addresses = new Map<string, string[]>();
  const errors = new Map<string, string>();
  const unique = [...new Set([...names].map(hostnameKey))];
  await Promise.all(unique.map(async (name) => {
    try {
      const ips = await resolver(name);
      if (ips.length) addresses.set(name, ips);
      else errors.set(name, "no A or AAAA records");
    } catch (e) {
      errors.set(name, errorMessage(e));
    }
  }));
  return { addresses, errors };
}
