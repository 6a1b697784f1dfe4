import assert from "node:assert/strict";
import { linuxOsLabels, parseEnvFile } from "./linuxos.ts";

Deno.test("linuxos: this host's os-release and kernel", async () => {
  const os = parseEnvFile(await Deno.readTextFile("/etc/os-release"));
  const labels = await linuxOsLabels();
  assert.deepEqual(labels["linuxos:name"], [os["ID"]]);
  assert.deepEqual(labels["linuxos:version"], [os["PRETTY_NAME"]]);
  const release = (await Deno.readTextFile("/proc/sys/kernel/osrelease")).trim();
  assert.deepEqual(labels["linuxos:kernel:release"], [`linux-${release}`]);
  assert.deepEqual(labels["linuxos:kernel:version"], [
    (await Deno.readTextFile("/proc/sys/kernel/version")).trim(),
  ]);
});

Deno.test("linuxos: a host root with lsb-release prefers DISTRIB_DESCRIPTION", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/etc`);
    await Deno.mkdir(`${root}/proc/sys/kernel`, { recursive: true });
    await Deno.writeTextFile(
      `${root}/etc/os-release`,
      'ID=ubuntu\nPRETTY_NAME="Ubuntu 24.04 LTS"\n',
    );
    await Deno.writeTextFile(
      `${root}/etc/lsb-release`,
      'DISTRIB_DESCRIPTION="Ubuntu 24.04.1 LTS"\n',
    );
    await Deno.writeTextFile(`${root}/proc/sys/kernel/osrelease`, "6.8.0-45-generic\n");
    assert.deepEqual(await linuxOsLabels(root), {
      "linuxos:name": ["ubuntu"],
      "linuxos:version": ["Ubuntu 24.04.1 LTS"],
      "linuxos:kernel:release": ["linux-6.8.0-45-generic"],
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
