/**
 * Services → the kernel's `load_sd_info` payload (protocol doc §3.3). Pure: hostnames are looked
 * up in `resolutions`, which the caller fills (see resolve.ts) and may refresh later, then
 * recompile with the same sources.
 *
 * @module
 */
import { KERNEL_LIMITS, type LoadSdInfo } from "../../driver/payloads.ts";
import type { Problem } from "../errors.ts";
import { ipKey } from "./address.ts";
import { compareSources, type ServiceSource } from "./source.ts";

/** Hostname → addresses, kept apart from the sources so they can be re-resolved. */
export interface Resolutions {
  /** Keys are normalised hostnames (see {@linkcode hostnameKey}). */
  addresses: ReadonlyMap<string, readonly string[]>;
  /** Why a hostname did not resolve, for messages. */
  errors?: ReadonlyMap<string, string>;
}

/** The lookup key of a hostname: lower-case, without a trailing dot. */
export function hostnameKey(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

/**
 * The hostnames (not IP literals) the services name, normalised, sorted and unique.
 *
 * @example
 * ```ts
 * import { serviceHostnames } from "./services.ts";
 * serviceHostnames([{ file: "s.yaml", item: 0, service: {
 *   addresses: [{ address: "Web.Local", port: 80 }, { address: "10.0.0.1", port: 80 }],
 *   labels: [],
 * } }]); // ["web.local"]
 * ```
 */
export function serviceHostnames(sources: readonly ServiceSource[]): string[] {
  const names = new Set<string>();
  for (const s of sources) {
    for (const a of s.service.addresses) {
      if (ipKey(a.address) === undefined) names.add(hostnameKey(a.address));
    }
  }
  return [...names].sort();
}

/**
 * Compiles services into the service table: keys `ip:port` (IPv4 dotted, IPv6 fully expanded),
 * entries for the same key merged, labels deduplicated and sorted; at most 127 labels per key.
 * Returns a problem (with file, item, field) for every hostname without addresses.
 */
export function compileServices(
  sources: readonly ServiceSource[],
  resolutions: Resolutions,
): { payload: LoadSdInfo; problems: Problem[] } {
  const problems: Problem[] = [];
  const table = new Map<
    string,
    { labels: Set<string>; from: ServiceSource; over?: ServiceSource }
  >();
  for (const src of [...sources].sort(compareSources)) {
    src.service.addresses.forEach((a, i) => {
      const at: Omit<Problem, "message"> = {
        file: src.file,
        item: src.item,
        ...(a.line === undefined ? {} : { line: a.line }),
        field: `addresses[${i}].address`,
      };
      let ips: readonly string[];
      const literal = ipKey(a.address);
      if (literal !== undefined) ips = [literal];
      else {
        const name = hostnameKey(a.address);
        ips = resolutions.addresses.get(name) ?? [];
        if (!ips.length) {
          const why = resolutions.errors?.get(name);
          problems.push({
            ...at,
            message: `cannot resolve hostname "${a.address}"${why ? `: ${why}` : ""}`,
          });
          return;
        }
      }
      for (const ip of ips) {
        const key = ipKey(ip);
        if (key === undefined) {
          problems.push({
            ...at,
            message: `"${a.address}" resolved to "${ip}", not an IP address`,
          });
          continue;
        }
        const k = `${key}:${a.port}`;
        let entry = table.get(k);
        if (!entry) table.set(k, entry = { labels: new Set(), from: src });
        for (const l of src.service.labels) entry.labels.add(l);
        if (entry.labels.size > KERNEL_LIMITS.maxServiceLabels) entry.over ??= src;
      }
    });
  }
  for (const [k, { labels, from, over }] of table) {
    if (!over) continue;
    const merged = over === from ? "" : ` (merged with ${from.file} item ${from.item})`;
    problems.push({
      file: over.file,
      item: over.item,
      ...(over.line === undefined ? {} : { line: over.line }),
      field: "labels",
      message: `"${k}" has ${labels.size} distinct labels${merged}; the kernel allows at most ` +
        `${KERNEL_LIMITS.maxServiceLabels} per address`,
    });
  }
  const payload: LoadSdInfo = {};
  for (const k of [...table.keys()].sort()) {
    payload[k] = { labels: [...table.get(k)!.labels].sort() };
  }
  return { payload, problems };
}
