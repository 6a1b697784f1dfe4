/**
 * The `linuxos` host attestor: `linuxos:name` (os-release `ID`, as gopsutil's platform),
 * `linuxos:version` (lsb-release `DISTRIB_DESCRIPTION`, else os-release `PRETTY_NAME`),
 * `linuxos:kernel:release` (`linux-<uname -r>`), `linuxos:kernel:version` (`uname -v`).
 * Read once at start: the host does not change under a running agent.
 *
 * @module
 */
import { z } from "zod";
import { type Attestor, definePlugin, type Labels, type PluginContext } from "../../types.ts";
import { parseWith } from "../../sdk/config.ts";
import { LabelBuilder } from "../_lib/labels.ts";

const configSchema = z.object({
  enabled: z.boolean().default(true),
  /** Root of the host's `/etc` and `/proc` (a container sees the host at e.g. `/host`). */
  hostRoot: z.string().default(""),
}).strict();
/** Parsed `linuxos` config. */
export type LinuxOsConfig = z.infer<typeof configSchema>;

/** Parses `KEY=value` / `KEY="value"` lines (os-release, lsb-release). */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!.replace(/^(["'])(.*)\1$/, "$2");
  }
  return out;
}

async function read(path: string): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch {
    return "";
  }
}

/** Host OS labels under `root` ("" = this host). */
export async function linuxOsLabels(root = ""): Promise<Labels> {
  const osRelease = parseEnvFile(
    await read(`${root}/etc/os-release`) || await read(`${root}/usr/lib/os-release`),
  );
  const lsb = parseEnvFile(await read(`${root}/etc/lsb-release`));
  const release = await read(`${root}/proc/sys/kernel/osrelease`);
  return new LabelBuilder("linuxos")
    .add("name", osRelease["ID"])
    .add("version", lsb["DISTRIB_DESCRIPTION"] ?? osRelease["PRETTY_NAME"])
    .add("kernel:release", release ? `linux-${release}` : "")
    .add("kernel:version", await read(`${root}/proc/sys/kernel/version`))
    .build();
}

/** The plugin. */
export const linuxOsAttestor = definePlugin({
  kind: "attestor",
  name: "linuxos",
  description: "host OS name and version, kernel release and version",
  parseConfig(raw: unknown) {
    return parseWith(configSchema, raw);
  },
  create(config: LinuxOsConfig, _ctx: PluginContext): Attestor {
    let labels: Promise<Labels> | undefined;
    return {
      name: "linuxos",
      collect: () => labels ??= linuxOsLabels(config.hostRoot),
      dispose() {},
    };
  },
});
