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

const ID = "6F1C0A52-7B8D-4E3F-9A61-0C2D3E4F5A6B";
const PROTO = ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"];

Deno.test("parseKernelLine never throws and names a reason for every broken line", async (t) => {
  const kernelLine = (o: Record<string, unknown>) => JSON.stringify(o).replaceAll("/", "\\/");
  const request = (over: Record<string, unknown> = {}) => ({
    task_context: validTask(),
    id: ID,
    command: "augment",
    is_message: false,
    ...over,
  });
  await t.step("prototype keys as the command are unknown commands, with the id kept", () => {
    for (const k of PROTO) {
      const r = parseKernelLine(kernelLine(request({ command: k })));
      assert.ok(!r.ok && r.reason === "unknown_command", k);
      assert.equal(r.recovered.id, ID);
      assert.equal(r.recovered.command, k);
    }
  });
  await t.step("prototype keys as field names and values read nothing inherited", () => {
    for (const k of PROTO) {
      const r = parseKernelLine(`{"${k}":{"uid":0},` + kernelLine(request()).slice(1));
      assert.ok(r.ok && r.message.command === "augment", k);
      const task = { ...validTask(), command_name: k, command_path: k };
      const v = parseKernelLine(kernelLine(request({ task_context: task })));
      assert.ok(v.ok && v.message.command === "augment" && v.message.task.command_name === k);
      // A task context without its own fields does not borrow Object.prototype's.
      const bare = parseKernelLine(kernelLine(request({ task_context: { [k]: 1 } })));
      assert.ok(!bare.ok && bare.reason === "bad_task");
      assert.deepEqual(bare.recovered.labels, []);
      const log = parseKernelLine(kernelLine({
        task_context: validTask(),
        command: "log",
        data: JSON.stringify({ message: "m", [k]: "v" }),
        is_message: true,
      }));
      assert.ok(log.ok && log.message.command === "log");
      assert.equal(Object.getPrototypeOf(log.message.data), null);
      assert.equal(log.message.data[k], "v");
      const id = parseKernelLine(kernelLine(request({ id: k })));
      assert.ok(!id.ok && id.reason === "bad_id" && id.recovered.id === undefined);
    }
  });
  await t.step("truncated JSON keeps the id, the task labels and the command it got to", () => {
    const full = kernelLine(request({ command: "csr_sign", data: '{"csr":"x"}' }));
    const r = parseKernelLine(full.slice(0, full.indexOf('"command"') + 14));
    assert.ok(!r.ok && r.reason === "not_json");
    assert.equal(r.recovered.id, ID);
    assert.equal(r.recovered.command, undefined, "the command was cut");
    assert.deepEqual(r.recovered.labels, [
      "process:name=x",
      "process:uid=0",
      "process:gid=0",
      "process:binary:path=/x",
    ]);
  });
  await t.step("a partly broken task context gives the labels of its readable fields", () => {
    const r = parseKernelLine(kernelLine(request({ task_context: { ...validTask(), uid: "0" } })));
    assert.ok(!r.ok && r.reason === "bad_task");
    assert.deepEqual(r.recovered.labels, [
      "process:name=x",
      "process:gid=0",
      "process:binary:path=/x",
    ]);
  });
  await t.step("wrong types name the reason", () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ command: 7 }, "bad_command"],
      [{ command: undefined }, "missing_command"],
      [{ is_message: "false" }, "bad_is_message"],
      [{ task_context: "x" }, "bad_task"],
      [{ command: "csr_sign", data: 42 }, "bad_data"],
      [{ command: "csr_sign", data: '{"csr":"MIIB"}' }, "bad_csr"],
      [
        { command: "csr_sign", data: '{"csr":"-----BEGIN CERTIFICATE REQUEST-----","ttl":3600}' },
        "bad_data",
      ],
      [{ command: "log", data: "{" }, "bad_log"],
    ];
    for (const [over, reason] of cases) {
      const r = parseKernelLine(kernelLine(request(over)));
      assert.ok(!r.ok, JSON.stringify(over));
      assert.equal(r.reason, reason, `${JSON.stringify(over)}: ${r.error}`);
      assert.equal(r.recovered.id, ID);
    }
  });
  await t.step("data as an object still names the CSR (it is refused, not signed)", () => {
    const csr = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n";
    const r = parseKernelLine(kernelLine(request({ command: "csr_sign", data: { csr } })));
    assert.ok(!r.ok && r.reason === "bad_data");
    assert.equal(r.recovered.data?.csr, csr);
  });
  await t.step("a PEM CSR is found in a broken line", () => {
    const csr = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n";
    const line = kernelLine(request({ command: "csr_sign", data: JSON.stringify({ csr }) }));
    const broken = line.replace('"command_name":"x"', '"command_name":"\x1b[2J"');
    const r = parseKernelLine(broken);
    assert.ok(!r.ok && r.reason === "not_json");
    assert.equal(r.recovered.command, "csr_sign");
    assert.equal(r.recovered.data?.csr, csr);
  });
  await t.step("deep nesting is named too_deep and its id still read", () => {
    const deep = "[".repeat(100_000) + "]".repeat(100_000);
    const r = parseKernelLine(`{"task_context":${deep},"id":"${ID}","command":"augment"}`);
    assert.ok(!r.ok && r.reason === "too_deep");
    assert.equal(r.recovered.id, ID);
    assert.equal(r.recovered.command, "augment");
    const top = parseKernelLine(deep);
    assert.ok(!top.ok && top.reason === "too_deep" && top.recovered.id === undefined);
  });
  await t.step(
    "two different ids in a broken line are ambiguous; one id in any spelling is not",
    () => {
      const other = "ABCDEF11-2222-4333-8444-55555555FACE";
      const two = parseKernelLine(`{"id":"${ID}","x":{"id":"${other}"`);
      assert.ok(!two.ok && two.recovered.id === undefined && two.recovered.ambiguousId === true);
      const bare = parseKernelLine(`{"i d":"${ID}","command":"augment"`);
      assert.ok(!bare.ok && bare.recovered.id === ID);
      // An id inside an escaped string (a nested JSON document) is not the request's.
      const nested = parseKernelLine(
        `{"data":"{\\"id\\":\\"${other.toLowerCase()}\\"}","command":"augment"`,
      );
      assert.ok(!nested.ok && nested.recovered.id === undefined);
    },
  );
  await t.step("a top-level array around a request: the one id is recovered", () => {
    const r = parseKernelLine(`[${kernelLine(request())}]`);
    assert.ok(!r.ok && r.reason === "not_object");
    assert.equal(r.recovered.id, ID);
    assert.equal(r.recovered.command, "augment");
  });
});
