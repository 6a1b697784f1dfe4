import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { getLogger } from "@logtape/logtape";
import { exposedSecretWarning, readSecretFile } from "./secret_file.ts";

Deno.test("secret files: read trimmed; group or world readable ones are warned about once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "camblet-secret-" });
  const lines: string[] = [];
  await configure({
    reset: true,
    sinks: { mem: (r: LogRecord) => lines.push(`${r.level} ${r.message.join("")}`) },
    loggers: [{ category: ["camblet"], lowestLevel: "debug", sinks: ["mem"] }, {
      category: ["logtape", "meta"],
      lowestLevel: "error",
      sinks: ["mem"],
    }],
  });
  try {
    const log = getLogger(["camblet", "test"]);
    const path = `${dir}/token`;
    await Deno.writeTextFile(path, "s3cret\n", { mode: 0o600 });
    await Deno.chmod(path, 0o600);
    assert.equal(await readSecretFile(path, "the token", log), "s3cret");
    assert.deepEqual(lines, []);
    await Deno.chmod(path, 0o644);
    await readSecretFile(path, "the token", log);
    await readSecretFile(path, "the token", log);
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(
      lines[0]!,
      /^warning token file ".*\/token" is readable by group or others \(mode 0644\)/,
    );
    assert.doesNotMatch(lines[0]!, /s3cret/);
    await Deno.chmod(path, 0o640);
    await readSecretFile(path, "the token", log);
    assert.equal(lines.length, 2);
    assert.equal(exposedSecretWarning(path, 0o600, "token"), undefined);
    await assert.rejects(
      () => readSecretFile(`${dir}/missing`, "the token", log),
      /Cannot read the token from ".*missing"/,
    );
  } finally {
    await reset();
    await Deno.remove(dir, { recursive: true });
  }
});
