import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { journalPrefixer, journalPriority, stderrIsJournal } from "./journal.ts";

Deno.test("journalPriority maps levels to syslog priorities", () => {
  assert.deepEqual(
    (["trace", "debug", "info", "warning", "error", "fatal"] as const).map(journalPriority),
    [7, 7, 6, 4, 3, 2],
  );
});

Deno.test("stderrIsJournal needs JOURNAL_STREAM to name this stderr", () => {
  assert.equal(stderrIsJournal(undefined), false);
  assert.equal(stderrIsJournal("garbage"), false);
  assert.equal(stderrIsJournal("1:1"), false);
  const st = Deno.statSync("/proc/self/fd/2");
  assert.equal(stderrIsJournal(`${st.dev}:${st.ino}`), true);
  assert.equal(journalPrefixer(false)("info"), "");
  assert.equal(journalPrefixer(true)("info"), "<6>");
});

// A real process whose JOURNAL_STREAM names its own stderr, logging through the agent's sink.
Deno.test("the log sink prefixes priorities only when stderr is the journal", async () => {
  const log = fileURLToPath(new URL("./log.ts", import.meta.url));
  const script = `
    import { configureLogging, logger } from ${JSON.stringify(log)};
    const st = Deno.statSync("/proc/self/fd/2");
    if (Deno.args[0] === "journal") Deno.env.set("JOURNAL_STREAM", st.dev + ":" + st.ino);
    else Deno.env.set("JOURNAL_STREAM", "1:1");
    await configureLogging("debug");
    logger("t").debug("d"); logger("t").info("i"); logger("t").warn("w"); logger("t").error("e");
  `;
  const run = async (mode: string) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", script, mode],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return new TextDecoder().decode(out.stderr).trim().split("\n");
  };
  const journal = await run("journal");
  assert.deepEqual(journal.map((l) => l.slice(0, 3)), ["<7>", "<6>", "<4>", "<3>"]);
  assert.match(journal[2]!, /^<4>\S+ WARNING camblet\.t "w"$/);
  const plain = await run("plain");
  assert.ok(plain.every((l) => !l.startsWith("<")), plain.join("\n"));
});

// main.ts's last word on a failed run (e.g. a daemon that cannot start) is an error in the journal.
Deno.test("main.ts prints a fatal error at priority 3 when stderr is the journal", async () => {
  const main = fileURLToPath(new URL("../main.ts", import.meta.url));
  const deno = Deno.execPath();
  const run = async (journal: boolean) => {
    const set = journal ? "export JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2); " : "";
    const out = await new Deno.Command("sh", {
      args: ["-c", `${set}exec "$0" run -A "$1" run --config /nonexistent/config.yaml`, deno, main],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 1);
    return new TextDecoder().decode(out.stderr);
  };
  assert.match(await run(true), /^<3>error: Cannot load configuration/);
  assert.match(await run(false), /^error: Cannot load configuration/);
});
