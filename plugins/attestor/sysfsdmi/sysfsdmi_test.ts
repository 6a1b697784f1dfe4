import assert from "node:assert/strict";
import { DMI_FILES, dmiLabels } from "./sysfsdmi.ts";

Deno.test("sysfsdmi: every DMI file becomes its label; absent files none", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const [key, file] of Object.entries(DMI_FILES)) {
      if (key !== "product:serial") await Deno.writeTextFile(`${dir}/${file}`, `v-${file}\n`);
    }
    const labels = await dmiLabels(dir);
    assert.equal(Object.keys(labels).length, Object.keys(DMI_FILES).length - 1);
    assert.deepEqual(labels["sysfsdmi:chassis:asset-tag"], ["v-chassis_asset_tag"]);
    assert.deepEqual(labels["sysfsdmi:bios:vendor"], ["v-bios_vendor"]);
    assert.equal(labels["sysfsdmi:product:serial"], undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sysfsdmi: this host (no labels where /sys/class/dmi/id is absent)", async () => {
  const labels = await dmiLabels("/sys/class/dmi/id");
  let present = true;
  try {
    await Deno.stat("/sys/class/dmi/id");
  } catch {
    present = false;
  }
  if (!present) assert.deepEqual(labels, {});
  else assert.ok(Object.keys(labels).every((k) => k.startsWith("sysfsdmi:")));
});
