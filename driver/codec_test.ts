import assert from "node:assert/strict";
import {
  decodeBase64Strict,
  encodeAnswer,
  encodeErrorAnswer,
  encodeLoadConfig,
  encodeTraceRequest,
  parseKernelLine,
} from "./codec.ts";
import { readTranscript } from "./emulator/replay.ts";

const DIR = new URL("../tests/testdata/camblet-driver/transcripts/", import.meta.url);

Deno.test("parseKernelLine reads every message the real module sent", async () => {
  let n = 0;
  for (const e of Deno.readDirSync(DIR)) {
    for (const t of await readTranscript(new URL(e.name, DIR))) {
      if (t.dir !== "kernel->agent") continue;
      const r = parseKernelLine(t.raw);
      assert.ok(r.ok, `${e.name} #${t.seq}: ${!r.ok && r.error}`);
      n++;
      if (r.message.command === "csr_sign") {
        assert.match(r.message.data.csr, /^-----BEGIN CERTIFICATE REQUEST-----\nMII/);
        assert.equal(r.message.data.ttl, "3600s");
      }
      if (r.message.command === "augment") {
        assert.match(r.message.task.command_path, /^\/usr\/bin\//);
      }
    }
  }
  assert.ok(n > 100, `${n} kernel messages`);
});

Deno.test("parseKernelLine locates what is wrong and recovers what it can", async (t) => {
  await t.step("not JSON: the id and command are recovered by pattern", () => {
    const r = parseKernelLine(
      '{"id":"6F1C0A52-7B8D-4E3F-9A61-0C2D3E4F5A6B","command":"augment","is_message":false,',
    );
    assert.ok(!r.ok);
    assert.match(r.error, /^Cannot parse kernel message: not JSON/);
    assert.equal(r.recovered.id, "6F1C0A52-7B8D-4E3F-9A61-0C2D3E4F5A6B");
    assert.equal(r.recovered.command, "augment");
    assert.equal(r.recovered.isMessage, false);
  });
  await t.step("a field of the wrong type is named", () => {
    const r = parseKernelLine(JSON.stringify({
      task_context: { uid: "0" },
      id: "6F1C0A52-7B8D-4E3F-9A61-0C2D3E4F5A6B",
      command: "augment",
      is_message: false,
    }));
    assert.ok(!r.ok);
    assert.match(
      r.error,
      /task_context\.namespace_ids: missing|task_context\.uid: expected a non-negative integer/,
    );
  });
  await t.step("missing id, bad UUID, missing is_message, non-object", () => {
    const miss = parseKernelLine('{"command":"augment","is_message":false}');
    assert.ok(!miss.ok && /id: missing/.test(miss.error));
    const uuid = parseKernelLine('{"id":"x","command":"augment","is_message":false}');
    assert.ok(!uuid.ok && /id: expected a UUID, got string "x"/.test(uuid.error));
    const im = parseKernelLine('{"id":"6F1C0A52-7B8D-4E3F-9A61-0C2D3E4F5A6B","command":"augment"}');
    assert.ok(!im.ok && /is_message: missing/.test(im.error));
    const arr = parseKernelLine("[1,2]");
    assert.ok(!arr.ok && /expected a JSON object, got an array/.test(arr.error));
  });
  await t.step("csr_sign data must hold a PEM CSR", () => {
    const r = parseKernelLine(JSON.stringify({
      task_context: validTask(),
      id: "6F1C0A52-7B8D-4E3F-9A61-0C2D3E4F5A6B",
      command: "csr_sign",
      data: JSON.stringify({ csr: "nope" }),
      is_message: false,
    }));
    assert.ok(!r.ok && /data\.csr: not a PEM certificate request/.test(r.error));
  });
  await t.step("unknown commands parse as other (they are answered by the dispatcher)", () => {
    const r = parseKernelLine(
      '{"id":"6F1C0A52-7B8D-4E3F-9A61-0C2D3E4F5A6B","command":"accept","data":"{\\"port\\":8000}","is_message":false}',
    );
    assert.ok(r.ok && r.message.command === "other" && r.message.name === "accept");
  });
});

function validTask() {
  return {
    uid: 0,
    gid: 0,
    pid: 1,
    command_path: "/x",
    command_name: "x",
    cgroup_path: "/",
    namespace_ids: { uts: 1, ipc: 1, mnt: 1, pid: 1, net: 1, time: 1, cgroup: 1 },
  };
}

Deno.test("encoders write one line each, in the shapes the module reads", () => {
  assert.equal(
    encodeLoadConfig({ trust_domain: "acme.test" }),
    '{"command":"load_config","code":"eyJ0cnVzdF9kb21haW4iOiJhY21lLnRlc3QifQ=="}\n',
  );
  assert.equal(
    encodeTraceRequest({ action: "add", command_name: "curl" }),
    '{"command":"manage_trace_requests","data":"{\\"action\\":\\"add\\",\\"command_name\\":\\"curl\\"}"}\n',
  );
  assert.equal(
    encodeTraceRequest({ action: "clear" }),
    '{"command":"manage_trace_requests","data":"{\\"action\\":\\"clear\\"}"}\n',
  );
  const a = encodeAnswer("ID", '{"labels":{"a\\nb=c":true}}');
  assert.equal(a.indexOf("\n"), a.length - 1, "control characters stay escaped");
  assert.equal(
    encodeErrorAnswer("ID", "invalid command"),
    '{"command":"answer","id":"ID","error":"invalid command"}\n',
  );
});

Deno.test("decodeBase64Strict accepts only standard padded base64", () => {
  assert.deepEqual(decodeBase64Strict("YWJj"), new TextEncoder().encode("abc"));
  assert.deepEqual(decodeBase64Strict("YWI="), new TextEncoder().encode("ab"));
  for (const bad of ["YWI", "YW I=", "YWI-", "!!!notbase64!!!", "YWJj\n"]) {
    assert.equal(decodeBase64Strict(bad), undefined, bad);
  }
});
