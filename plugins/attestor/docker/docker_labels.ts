/**
 * Docker Engine API `GET /containers/{id}/json` (ContainerInspect) → `docker:*` labels. Pure.
 *
 * @module
 */
import type { Labels } from "../../types.ts";
import { LabelBuilder } from "../_lib/labels.ts";

/** The parts of ContainerInspect we read (Engine API v1.24+). */
export interface ContainerInspect {
  Id: string;
  Name?: string;
  Path?: string;
  Args?: string[];
  /** Image id, `sha256:…`. */
  Image?: string;
  Config?: {
    Hostname?: string;
    Env?: string[] | null;
    Labels?: Record<string, string> | null;
    /** The image reference the container was created from (`nginx:1.27`). */
    Image?: string;
  };
  HostConfig?: {
    NetworkMode?: string;
    PortBindings?: Record<string, unknown> | null;
  };
}

/**
 * Labels: `docker:id`, `docker:name`, `docker:cmdline`, `docker:label:<k>`, `docker:image:name`,
 * `docker:image:hash`, `docker:network:mode`, `docker:network:hostname`, `docker:port-binding`,
 * and `docker:env:<K>` only for names allowed by `envAllowed` (the Go agent labelled every
 * variable, secrets included).
 */
export function dockerLabels(c: ContainerInspect, envAllowed: (name: string) => boolean): Labels {
  const b = new LabelBuilder("docker");
  b.add("id", c.Id).add("name", (c.Name ?? "").replace(/^\/+/, ""));
  if (c.Path) b.add("cmdline", [c.Path, ...(c.Args ?? [])].join(" "));
  b.addMap("label", c.Config?.Labels);
  for (const e of c.Config?.Env ?? []) {
    const i = e.indexOf("=");
    if (i > 0 && envAllowed(e.slice(0, i))) {
      b.add(`env:${e.slice(0, i).toUpperCase()}`, e.slice(i + 1));
    }
  }
  b.add("image:name", c.Config?.Image).add("image:hash", c.Image);
  b.add("network:mode", c.HostConfig?.NetworkMode).add("network:hostname", c.Config?.Hostname);
  b.add("port-binding", ...Object.keys(c.HostConfig?.PortBindings ?? {}).sort());
  return b.build();
}
