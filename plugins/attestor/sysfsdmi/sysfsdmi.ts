/**
 * The `sysfsdmi` host attestor: firmware facts from `/sys/class/dmi/id` —
 * `sysfsdmi:bios:{date,release,vendor,version}`,
 * `sysfsdmi:chassis:{asset-tag,serial,type,vendor,version}`,
 * `sysfsdmi:product:{family,name,serial,sku,version}`. No labels where DMI is absent (many VMs,
 * containers, arm boards). Read once.
 *
 * @module
 */
import { z } from "zod";
import { type Attestor, definePlugin, type Labels, type PluginContext } from "../../types.ts";
import { parseWith } from "../../sdk/config.ts";
import { LabelBuilder } from "../_lib/labels.ts";

const configSchema = z.object({
  enabled: z.boolean().default(true),
  /** Directory to read (tests point it elsewhere). */
  path: z.string().default("/sys/class/dmi/id"),
}).strict();
/** Parsed `sysfsdmi` config. */
export type SysfsDmiConfig = z.infer<typeof configSchema>;

/** Label key → file in the DMI directory. */
export const DMI_FILES: Record<string, string> = {
  "bios:date": "bios_date",
  "bios:release": "bios_release",
  "bios:vendor": "bios_vendor",
  "bios:version": "bios_version",
  "chassis:asset-tag": "chassis_asset_tag",
  "chassis:serial": "chassis_serial",
  "chassis:type": "chassis_type",
  "chassis:vendor": "chassis_vendor",
  "chassis:version": "chassis_version",
  "product:family": "product_family",
  "product:name": "product_name",
  "product:serial": "product_serial",
  "product:sku": "product_sku",
  "product:version": "product_version",
};

/** DMI labels from `dir`. */
export async function dmiLabels(dir: string): Promise<Labels> {
  const b = new LabelBuilder("sysfsdmi");
  await Promise.all(
    Object.entries(DMI_FILES).map(async ([key, file]) => {
      try {
        b.add(key, (await Deno.readTextFile(`${dir}/${file}`)).replace(/\n+$/, ""));
      } catch {
        // Absent or root-only (serials): no label.
      }
    }),
  );
  return b.build();
}

/** The plugin. */
export const sysfsDmiAttestor = definePlugin({
  kind: "attestor",
  name: "sysfsdmi",
  description: "BIOS, chassis and product facts from /sys/class/dmi/id",
  parseConfig(raw: unknown) {
    return parseWith(configSchema, raw);
  },
  create(config: SysfsDmiConfig, _ctx: PluginContext): Attestor {
    let labels: Promise<Labels> | undefined;
    return { name: "sysfsdmi", collect: () => labels ??= dmiLabels(config.path), dispose() {} };
  },
});
