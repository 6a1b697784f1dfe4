/**
 * The dispatcher's answers to broken kernel lines, with recording handlers (no pty, no worker):
 * what each recoverable line is answered with, and that nothing is answered on a guess.
 */
import assert from "node:assert/strict";
import { csrAnswerProblem } from "./answers.ts";
import { Dispatcher, type Handlers } from "./dispatcher.ts";
import { FakeCa } from "../tests/fakes/fake_ca.ts";
import { CsrFactory } from "./emulator/csr_factory.ts";
import { syntheticTask } from "./emulator/tasks.ts";
import { sharedNow } from "./transport.ts";

const ID = "6F1C0A52-7B8D-4E3F-9A61-0C2D3E4F5A6B";
const PROTO = ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"];

async function setup() {
  const ca = await FakeCa.create("acme.test");
  const csrs = await CsrFactory.create();
  const spare = await ca.refusal(await csrs.csr("spiffe://acme.test/spare"));
  const written: Record<string, unknown>[] = [];
  const logs: { message: string; props: Record<string, unknown> }[] = [];
  const handlers: Handlers = {
    augment: () => Promise.resolve(["test:attested=yes"]),
    csrSign: () => Promise.reject(new Error("not in these tests")),
    // Like the daemon's: the spare-key refusal for a CSR it cannot read.
    refusal: () => spare,
    log: () => {},
  };
  const d = new Dispatcher({
    handlers,
    write: (line) => written.push(JSON.parse(line)),
    log: (_level, message, props) => logs.push({ message, props }),
  });
  const line = (text: string) =>
    d.handleLine({ text, at: sharedNow(), firstAt: sharedNow(), bytes: text.length + 1 });
  const answer = async (id = ID) => {
    await d.drain();
    return written.find((w) => w["id"] === id);
  };
  return { d, written, logs, line, answer, csrs };
}

function kernelLine(o: Record<string, unknown>): string {
  return JSON.stringify(o).replaceAll("/", "\\/");
}

Deno.test("dispatcher: every broken line with a readable id is answered, never with error for csr_sign", async (t) => {
  const s = await setup();
  const base = { task_context: syntheticTask(1), id: ID, command: "augment", is_message: false };

  await t.step(
    "a prototype key as the command is an unknown command: answered, nothing thrown",
    async () => {
      for (const k of PROTO) {
        s.written.length = 0;
        s.line(kernelLine({ ...base, command: k }));
        const a = await s.answer();
        assert.equal(a?.["error"], "invalid command", k);
      }
      assert.deepEqual(Object.keys(s.d.stats.snapshot().requests), ["other"]);
    },
  );

  await t.step(
    "augment with a partly broken task context: the labels of its readable fields",
    async () => {
      s.written.length = 0;
      s.line(kernelLine({ ...base, task_context: { ...syntheticTask(1), uid: "root" } }));
      const a = await s.answer();
      const labels = Object.keys(JSON.parse(a?.["answer"] as string).labels);
      assert.deepEqual(labels, [
        "process:name=python3",
        "process:gid=1000",
        "process:binary:path=/usr/bin/python3.11",
      ]);
    },
  );

  await t.step("csr_sign without a readable CSR gets the spare-key refusal", async () => {
    for (const data of [undefined, 42, '{"csr":"MIIB"}', "{", '{"csr":' + "[".repeat(100) + "]}"]) {
      s.written.length = 0;
      s.line(kernelLine({ ...base, command: "csr_sign", ...(data === undefined ? {} : { data }) }));
      const a = await s.answer();
      assert.equal(a?.["error"], undefined, String(data));
      assert.equal(csrAnswerProblem(a?.["answer"] as string), undefined);
    }
  });

  await t.step(
    "an unreadable command gets an answer that reads as augment and as csr_sign",
    async () => {
      for (
        const text of [
          kernelLine({ ...base, command: 7 }),
          kernelLine({ task_context: syntheticTask(1), id: ID, is_message: false }),
          kernelLine(base).slice(0, kernelLine(base).indexOf('"command"')),
        ]
      ) {
        s.written.length = 0;
        s.line(text);
        const a = await s.answer();
        const v = JSON.parse(a?.["answer"] as string);
        assert.equal(csrAnswerProblem(a?.["answer"] as string), undefined, text);
        assert.ok(Object.keys(v.labels).includes("process:name=python3"), text);
      }
    },
  );

  await t.step("no id, two ids, or a message: nothing answered, counted by why", async () => {
    s.written.length = 0;
    const other = "ABCDEF11-2222-4333-8444-55555555FACE";
    s.line(kernelLine({ ...base, id: undefined }));
    s.line(`{"id":"${ID}","x":{"id":"${other}"`);
    s.line(kernelLine({ ...base, command: "log", data: "{", is_message: true }));
    await s.d.drain();
    assert.deepEqual(s.written, []);
    const snap = s.d.stats.snapshot();
    assert.equal(snap.malformedDropped["no_id"], 1);
    assert.equal(snap.malformedDropped["ambiguous_id"], 1);
    assert.equal(snap.malformedDropped["message"], 1);
  });

  await t.step("one log line per reason", () => {
    const malformed = s.logs.filter((l) => l.message === "Malformed kernel line");
    const reasons = malformed.map((l) => l.props["reason"]);
    assert.equal(new Set(reasons).size, reasons.length, reasons.join(" "));
  });

  await t.step("the first bytes are logged escaped", async () => {
    const f = await setup();
    f.line("\x1b[2J\x1b]0;pwned\x07 not json");
    const last = f.logs.filter((l) => l.message === "Malformed kernel line").at(-1)!;
    assert.equal(last.props["reason"], "not_json");
    assert.match(String(last.props["head"]), /^\\u001b\[2J\\u001b\]0;pwned\\u0007 not json$/);
  });
});
