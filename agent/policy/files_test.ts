import assert from "node:assert/strict";
import { isSourceFileName, readSourceFiles } from "./files.ts";

Deno.test("isSourceFileName skips editor leftovers and dotfiles", () => {
  for (const ok of ["a.yaml", "b.yml", "c.json", "D.YAML", "10-web.yaml"]) {
    assert.ok(isSourceFileName(ok), ok);
  }
  for (
    const bad of [
      ".a.yaml.swp",
      "a.yaml~",
      ".#a.yaml",
      "#a.yaml#",
      ".hidden.yaml",
      "a.txt",
      ".yaml",
      "a.yaml.bak",
    ]
  ) assert.ok(!isSourceFileName(bad), bad);
});

Deno.test("readSourceFiles", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/p/sub`, { recursive: true });
    for (
      const name of [
        "b.yaml",
        "a.yml",
        "c.json",
        "x.yaml~",
        ".x.yaml.swp",
        "notes.txt",
        "sub/d.yaml",
      ]
    ) {
      await Deno.writeTextFile(`${dir}/p/${name}`, `# ${name}\n`);
    }
    await Deno.symlink(`${dir}/p/b.yaml`, `${dir}/p/e.yaml`);
    await Deno.writeFile(
      `${dir}/latin1.yaml`,
      new Uint8Array([0x61, 0x3a, 0x0a, 0x62, 0x3a, 0x20, 0xe9, 0x0a]),
    );

    await t.step(
      "a directory: known extensions, sorted, not recursive, links followed once",
      async () => {
        const r = await readSourceFiles([`${dir}/p/`], { what: "policies", explicit: true });
        assert.deepEqual(r.problems, []);
        // e.yaml is a link to b.yaml, which was already read.
        assert.deepEqual(r.files.map((f) => f.path.slice(dir.length)), [
          "/p/a.yml",
          "/p/b.yaml",
          "/p/c.json",
        ]);
        assert.equal(r.files[0]!.text, "# a.yml\n");
      },
    );
    await t.step("a file path is read whatever its extension", async () => {
      const r = await readSourceFiles([`${dir}/p/notes.txt`], { what: "policies", explicit: true });
      assert.deepEqual(r.files.map((f) => f.text), ["# notes.txt\n"]);
    });
    await t.step(
      "a missing explicit path is a problem, a missing default one a warning",
      async () => {
        const missing = `${dir}/nope`;
        const explicit = await readSourceFiles([missing], { what: "policies", explicit: true });
        assert.deepEqual(explicit.problems, [{
          file: missing,
          message: "policies path does not exist",
        }]);
        const byDefault = await readSourceFiles([missing], { what: "services", explicit: false });
        assert.deepEqual(byDefault.problems, []);
        assert.deepEqual(byDefault.warnings, [{
          file: missing,
          message: "services path does not exist",
        }]);
      },
    );
    await t.step("a file that is not UTF-8 is a problem with its line", async () => {
      const r = await readSourceFiles([`${dir}/latin1.yaml`], { what: "policies", explicit: true });
      assert.deepEqual(r.files, []);
      assert.deepEqual(r.problems, [{
        file: `${dir}/latin1.yaml`,
        line: 2,
        message: "file is not UTF-8 text",
      }]);
    });
    await t.step("a broken link in a directory is a problem", async () => {
      await Deno.symlink(`${dir}/gone.yaml`, `${dir}/p/f.yaml`);
      const r = await readSourceFiles([`${dir}/p`], { what: "policies", explicit: true });
      assert.deepEqual(r.problems.map((p) => p.file), [`${dir}/p/f.yaml`]);
      assert.match(r.problems[0]!.message, /broken link: ".*gone\.yaml" does not exist/);
      await Deno.remove(`${dir}/p/f.yaml`);
    });
    await t.step(
      "a link loop says so; a FIFO is skipped with a warning, never opened",
      async () => {
        await Deno.mkdir(`${dir}/q`);
        await Deno.symlink(`${dir}/q/b.yaml`, `${dir}/q/a.yaml`);
        await Deno.symlink(`${dir}/q/a.yaml`, `${dir}/q/b.yaml`);
        const mk = await new Deno.Command("mkfifo", { args: [`${dir}/q/c.yaml`] }).output();
        assert.equal(mk.code, 0);
        const r = await readSourceFiles([`${dir}/q`], { what: "policies", explicit: true });
        assert.deepEqual(r.problems.map((p) => [p.file, p.message]), [
          [
            `${dir}/q/a.yaml`,
            "cannot read file: symbolic link loop (too many levels of symbolic links)",
          ],
          [
            `${dir}/q/b.yaml`,
            "cannot read file: symbolic link loop (too many levels of symbolic links)",
          ],
        ]);
        assert.deepEqual(r.warnings.map((p) => [p.file, p.message]), [
          [`${dir}/q/c.yaml`, "skipped: is a FIFO, not a regular file"],
        ]);
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
