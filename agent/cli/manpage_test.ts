import assert from "node:assert/strict";
import { buildProgram } from "./program.ts";
import { renderManPage } from "./manpage.ts";
import { commandTree } from "./command_tree.ts";

const DATE = new Date("2026-12-03T00:00:00Z");

async function run(cmd: string, args: string[], input: string) {
  const child = new Deno.Command(cmd, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { MANWIDTH: "100", LC_ALL: "C.UTF-8" },
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(input));
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("the man page renders without groff warnings and carries every command", async () => {
  const program = buildProgram();
  const page = renderManPage(program, { date: DATE });
  assert.match(page, /^\.TH CAMBLET\\-AGENT 8 "2026-12-03" "camblet\\-agent \d+\.\d+\.\d+"/);
  const lint = await run("groff", ["-man", "-ww", "-z"], page);
  assert.equal(lint.code, 0, lint.stderr);
  assert.equal(lint.stderr, "", "groff warnings");
  const text = (await run("groff", ["-man", "-Tutf8", "-P-cbou"], page)).stdout;
  for (const section of ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "FILES"]) {
    assert.match(text, new RegExp(`^${section}$`, "m"), section);
  }
  assert.match(text, /^EXIT STATUS$/m);
  const tree = commandTree(program);
  for (const c of tree.commands) {
    assert.ok(text.includes(c.usage), `usage of ${c.name} missing`);
    for (const o of c.options) assert.ok(text.includes(o.term), `${c.name} ${o.term}`);
  }
  assert.ok(text.includes("camblet-agent ca create-root"), "nested commands");
  assert.ok(text.includes("/etc/camblet/config.yaml"));
});

Deno.test("the man page is reproducible with SOURCE_DATE_EPOCH", () => {
  Deno.env.set("SOURCE_DATE_EPOCH", String(DATE.getTime() / 1000));
  try {
    const a = renderManPage(buildProgram());
    assert.equal(a, renderManPage(buildProgram(), { date: DATE }));
  } finally {
    Deno.env.delete("SOURCE_DATE_EPOCH");
  }
});
