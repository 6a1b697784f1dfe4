import assert from "node:assert/strict";
import { gunzip, RefusedContentError, sourcePath } from "./_safety.ts";
import { readTar } from "./_tar.ts";
import { gzip, makeTar, makeTarGz, tarDirectory } from "../../tests/sources/_bundles.ts";

const LIMITS = { maxFiles: 100, maxFileBytes: 1 << 20 };
const text = (d: Uint8Array) => new TextDecoder().decode(d);

async function refused(p: Promise<unknown> | (() => unknown), pattern: RegExp) {
  const run = typeof p === "function" ? Promise.resolve().then(p) : p;
  await assert.rejects(run, (e: unknown) => {
    assert.ok(e instanceof RefusedContentError, String(e));
    assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("tar reader", async (t) => {
  await t.step("reads what GNU tar writes, ./ prefixes and directories included", async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.mkdir(`${dir}/policies/team`, { recursive: true });
      await Deno.writeTextFile(`${dir}/policies/team/web.yaml`, "- a\n");
      await Deno.writeTextFile(`${dir}/.manifest`, "{}");
      const long = "x".repeat(120);
      await Deno.writeTextFile(`${dir}/policies/${long}.yaml`, "[]");
      const entries = readTar(await gunzip(await tarDirectory(dir), 1 << 20), LIMITS);
      const byPath = Object.fromEntries(entries.map((e) => [e.path, text(e.data)]));
      assert.deepEqual(byPath, {
        ".manifest": "{}",
        [`policies/${long}.yaml`]: "[]",
        "policies/team/web.yaml": "- a\n",
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("PAX long names and leading / (OPA bundles are rooted at /)", async () => {
    const name = `/policies/${"y".repeat(200)}.yaml`;
    const entries = readTar(await makeTar([{ name, data: "[]" }]), LIMITS);
    assert.deepEqual(entries.map((e) => e.path), [name.slice(1)]);
  });

  await t.step("path traversal is refused", async () => {
    for (const name of ["../evil.yaml", "policies/../../etc/passwd", "policies//x.yaml"]) {
      await refused(async () => readTar(await makeTar([{ name, data: "x" }]), LIMITS), /path/);
    }
    await refused(
      async () => readTar(await makeTar([{ name: "../../x", data: "x" }]), LIMITS),
      /climbs out of the source/,
    );
  });

  await t.step("links, devices and FIFOs are refused", async () => {
    await refused(
      async () =>
        readTar(
          await makeTar([{ name: "policies/a.yaml", type: "symlink", linkname: "/etc/shadow" }]),
          LIMITS,
        ),
      /"policies\/a.yaml" is a symbolic link/,
    );
    await refused(
      async () =>
        readTar(
          await makeTar([
            { name: "a.yaml", data: "x" },
            { name: "policies/b.yaml", type: "hardlink", linkname: "a.yaml" },
          ]),
          LIMITS,
        ),
      /is a hard link/,
    );
    await refused(
      async () => readTar(await makeTar([{ name: "p", type: "fifo" }]), LIMITS),
      /is a FIFO/,
    );
  });

  await t.step("duplicates, limits, garbage and truncation are refused", async () => {
    await refused(
      async () =>
        readTar(await makeTar([{ name: "a", data: "1" }, { name: "./a", data: "2" }]), LIMITS),
      /has "a" twice/,
    );
    await refused(
      async () =>
        readTar(await makeTar([{ name: "a", data: "x".repeat(2000) }]), {
          ...LIMITS,
          maxFileBytes: 1000,
        }),
      /file is 2.0 KiB, above the limit of 1000 bytes/,
    );
    await refused(
      async () =>
        readTar(await makeTar([{ name: "a", data: "1" }, { name: "b", data: "2" }]), {
          ...LIMITS,
          maxFiles: 1,
        }),
      /more than 1 files/,
    );
    const garbage = crypto.getRandomValues(new Uint8Array(4096));
    await refused(() => readTar(garbage, LIMITS), /^not a tar archive: .* at offset 0$/);
    const whole = await makeTar([{ name: "a", data: "x".repeat(5000) }]);
    await refused(() => readTar(whole.subarray(0, 3000), LIMITS), /truncated/);
    await refused(() => readTar(whole.subarray(0, 512 + 5120), LIMITS), /no end-of-archive/);
  });
});

Deno.test("gunzip refuses bombs, garbage and truncation", async (t) => {
  await t.step("a decompression bomb stops at the limit", async () => {
    const bomb = await gzip(new Uint8Array(32 << 20));
    assert.ok(bomb.length < 100_000, `bomb is ${bomb.length} bytes compressed`);
    await refused(
      gunzip(bomb, 4 << 20),
      /the unpacked archive is larger than the limit of 4 MiB/,
    );
  });
  await t.step("garbage and truncated gzip", async () => {
    await refused(gunzip(new TextEncoder().encode("<html>"), 1000), /not a gzip archive/);
    const good = await makeTarGz([{ name: "a", data: "x".repeat(10_000) }]);
    await refused(gunzip(good.subarray(0, good.length - 10), 1 << 20), /truncated or corrupt/);
  });
  await t.step("paths are normalised or refused", () => {
    assert.equal(sourcePath("./policies/a.yaml"), "policies/a.yaml");
    assert.throws(() => sourcePath("a\\..\\b"), /backslash/);
    assert.throws(() => sourcePath("a/\0"), /NUL/);
  });
});
