/**
 * Service files → validated, normalised {@linkcode ServiceSource}s (pure: text in, data out).
 *
 * @module
 */
import type { Problem } from "../errors.ts";
import { parseItems } from "./parse.ts";
import { serviceSchema } from "./schema.ts";
import type { ServiceAddress, ServiceSource } from "./source.ts";

/**
 * Parses one service file. Returns every problem found; `services` must be ignored when there are
 * any. Label values that are numbers keep their written form (`1.50` → `1.50`).
 *
 * @example
 * ```ts
 * import { parseServiceFile } from "./parse_service.ts";
 * const { services } = parseServiceFile(
 *   "web.yaml",
 *   "- addresses: [{address: 127.0.0.1, port: 8000}]\n  labels: {app:label: web}\n",
 * );
 * services[0]?.service.labels; // ["app:label=web"]
 * ```
 */
export function parseServiceFile(
  file: string,
  text: string,
): { services: ServiceSource[]; problems: Problem[] } {
  const parsed = parseItems(file, text, serviceSchema, { noun: "service" });
  const services: ServiceSource[] = [];
  for (const { item, line, data } of parsed.items) {
    const addresses = data.addresses.map((a, i): ServiceAddress => {
      const l = parsed.source?.lineOf([item, "addresses", i]);
      const out: ServiceAddress = { address: a.address, port: a.port };
      if (l !== undefined) out.line = l;
      return out;
    });
    const labels = Object.entries(data.labels).map(([k, v]) =>
      `${k}=${
        typeof v === "string" ? v : parsed.source?.literalOf([item, "labels", k]) ?? String(v)
      }`
    );
    const service = { addresses, labels };
    services.push(line === undefined ? { file, item, service } : { file, item, line, service });
  }
  return { services, problems: parsed.problems };
}
