import assert from "node:assert/strict";
import { skip } from "../../tests/_skip.ts";
import { buildProgram } from "./program.ts";
import { completionScript } from "./completion.ts";

// Runs the generated bash completion in a real bash for the words typed so far.
async function bashComplete(script: string, line: string[]): Promise<string[]> {
  const words = line.map((w) => `'${w}'`).join(" ");
  const cmd = `${script}
COMP_WORDS=(${words}); COMP_CWORD=${line.length - 1}
_camblet_agent
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const out = await new Deno.Command("bash", { args: ["--norc", "-c", cmd], stderr: "piped" })
    .output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l !== "");
}

Deno.test("bash completion offers commands, options and choices from the CLI", async () => {
  const script = completionScript(buildProgram(), "bash");
  const top = await bashComplete(script, ["camblet-agent", "va"]);
  assert.deepEqual(top, ["validate"]);
  const all = await bashComplete(script, ["camblet-agent", ""]);
  for (const c of ["run", "status", "validate", "ca", "version", "completion", "manpage"]) {
    assert.ok(all.includes(c), `${c} missing from ${all.join(" ")}`);
  }
  const opts = await bashComplete(script, ["camblet-agent", "validate", "--trust"]);
  assert.deepEqual(opts, ["--trust-domain"]);
  const choices = await bashComplete(script, ["camblet-agent", "--driver", ""]);
  assert.deepEqual(choices.sort(), ["auto", "kernel", "proxy"]);
  const nested = await bashComplete(script, ["camblet-agent", "ca", "create-"]);
  assert.deepEqual(nested.sort(), ["create-intermediate", "create-root"]);
  const alias = await bashComplete(script, ["camblet-agent", "gp", "--"]);
  assert.ok(alias.includes("--help"), alias.join(" "));
});

Deno.test("zsh and fish completions name every command and option", () => {
  const program = buildProgram();
  const zsh = completionScript(program, "zsh");
  assert.match(zsh, /^#compdef camblet-agent\n/);
  assert.match(zsh, /'validate:check config/);
  assert.match(zsh, /'--driver\[[^\]]*\]:value:\(auto kernel proxy\)'/);
  assert.match(zsh, /_camblet_agent_ca_create_root\(\) \{/);
  const fish = completionScript(program, "fish");
  assert.match(fish, /complete -c camblet-agent -n .* -a validate -d 'check config/);
  assert.match(fish, /-n '__fish_seen_subcommand_from validate' -l trust-domain -r -F/);
  assert.match(fish, /-l driver -x -a 'auto kernel proxy'/);
  // Quotes balance in every generated line (a stray quote breaks the whole file).
  for (const line of fish.split("\n")) {
    assert.equal(line.replaceAll("\\'", "").split("'").length % 2, 1, line);
  }
});

Deno.test("zsh and fish accept their scripts when installed", async (t) => {
  for (const shell of ["zsh", "fish"] as const) {
    const has = await new Deno.Command("sh", { args: ["-c", `command -v ${shell}`] }).output();
    await t.step({
      name: `${shell} -n`,
      ignore: skip(!has.success && `${shell} is not installed`), // the structure is checked above
      fn: async () => {
        const file = await Deno.makeTempFile();
        try {
          await Deno.writeTextFile(file, completionScript(buildProgram(), shell));
          const out = await new Deno.Command(shell, { args: ["-n", file], stderr: "piped" })
            .output();
          assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
          if (shell === "fish") {
            // fish completes from the script for real: command, option and choice.
            const complete = (line: string) =>
              new Deno.Command("fish", {
                args: ["--no-config", "-c", `source ${file}; complete -C '${line}'`],
                stdout: "piped",
              }).output().then((o) =>
                new TextDecoder().decode(o.stdout).split("\n").map((l) => l.split("\t")[0])
              );
            assert.deepEqual(await complete("camblet-agent vali"), ["validate", ""]);
            assert.ok(
              (await complete("camblet-agent validate --trust")).includes("--trust-domain"),
            );
            const choices = (await complete("camblet-agent --driver ")).filter((l) => l !== "");
            assert.deepEqual(choices.sort(), ["auto", "kernel", "proxy"]);
          }
        } finally {
          await Deno.remove(file);
        }
      },
    });
  }
});
