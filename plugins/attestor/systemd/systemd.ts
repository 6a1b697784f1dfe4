/**
 * The `systemd` attestor: unit and slice from the task's cgroup v2 path (no D-Bus round trip).
 *
 * Labels: `systemd:unit` (the innermost `.service`/`.scope`/… segment), `systemd:slice` (the
 * innermost `.slice` above it), and for units under a user manager
 * (`user@<uid>.service/…`) `systemd:user-unit` = that inner unit while `systemd:unit` is the
 * manager (`user@1000.service`).
 *
 * @module
 */
import { z } from "zod";
import {
  type Attestor,
  definePlugin,
  type Labels,
  type PluginContext,
  type TaskContext,
} from "../../types.ts";
import { cgroupPathOf } from "../_lib/cgroup.ts";
import { parseWith } from "../../sdk/config.ts";
import { LabelBuilder } from "../_lib/labels.ts";

const UNIT = /\.(service|scope|socket|timer|mount|swap|path|target|device|automount)$/;

const configSchema = z.object({ enabled: z.boolean().default(true) }).strict();
/** Parsed `systemd` config. */
export type SystemdConfig = z.infer<typeof configSchema>;

/** Unit labels for a cgroup path; pure. */
export function systemdLabels(cgroupPath: string): Labels {
  const b = new LabelBuilder("systemd");
  const segs = cgroupPath.split("/").filter(Boolean);
  const manager = segs.findIndex((s) => /^user@\d+\.service$/.test(s));
  const unitsIn = (from: number, to: number) => {
    let unit: string | undefined;
    let slice: string | undefined;
    for (let i = from; i < to; i++) {
      const s = segs[i]!;
      if (s.endsWith(".slice")) {
        if (!unit) slice = s;
      } else if (UNIT.test(s) && !unit) unit = s;
    }
    return { unit, slice };
  };
  if (manager >= 0) {
    const outer = unitsIn(0, manager);
    const inner = unitsIn(manager + 1, segs.length);
    b.add("unit", segs[manager]).add("slice", outer.slice).add("user-unit", inner.unit)
      .add("user-slice", inner.slice);
  } else {
    const { unit, slice } = unitsIn(0, segs.length);
    b.add("unit", unit).add("slice", slice);
  }
  return b.build();
}

/** The plugin. */
export const systemdAttestor = definePlugin({
  kind: "attestor",
  name: "systemd",
  description: "systemd unit and slice from the cgroup path",
  parseConfig(raw: unknown) {
    return parseWith(configSchema, raw);
  },
  create(_config: SystemdConfig, _ctx: PluginContext): Attestor {
    return {
      name: "systemd",
      async collect(task: TaskContext): Promise<Labels> {
        const path = await cgroupPathOf(task);
        return path ? systemdLabels(path) : {};
      },
      dispose() {},
    };
  },
});
