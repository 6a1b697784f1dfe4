import assert from "node:assert/strict";
import { join } from "node:path";
import { FileSource, parseFileSourceConfig } from "./file_source.ts";
import type { SourceCheck } from "../types.ts";
import { policySourceConformance } from "../conformance.ts";

function source(raw: Record<string, unknown>): FileSource {
  const parsed = parseFileSourceConfig(raw);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  return new FileSource(parsed.value);
}

/** Resolves with the next check the watch reports that satisfies `pred`. */
function nextCheck(
  s: FileSource,
  pred: (r: SourceCheck) => boolean,
  timeoutMs = 5000,
): { started: () => void; result: Promise<SourceCheck> } {
  let resolve!: (r: SourceCheck) => void;
  const result = new Promise<SourceCheck>((r) => resolve = r);
  let timer: ReturnType<typeof setTimeout>;
  return {
    started: () => {
      timer = setTimeout(
        () => resolve({ kind: "failure", problems: [{ message: "timeout" }] }),
        timeoutMs,
      );
      s.watch((r) => {
        if (pred(r)) {
          clearTimeout(timer);
          resolve(r);
        }
      });
    },
    result,
  };
}

Deno.test("file source", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "camblet-file-src-" });
  const pol = join(dir, "policies");
  const svc = join(dir, "services.yaml");
  await Deno.mkdir(join(pol, "team"), { recursive: true });
  await Deno.writeTextFile(join(pol, "b.yaml"), "- b\n");
  await Deno.writeTextFile(join(pol, "a.yml"), "- a\n");
  await Deno.writeTextFile(join(pol, "team", "c.json"), "[]");
  for (const junk of [".b.yaml.swp", "b.yaml~", "#b.yaml#", "notes.txt"]) {
    await Deno.writeTextFile(join(pol, junk), "junk");
  }
  await Deno.writeTextFile(svc, "[]\n");
  try {
    await t.step(
      "delivers policy and service files in path order, skipping leftovers",
      async () => {
        const s = source({ policies: pol, services: [svc] });
        const r = await s.check();
        assert.equal(r.kind, "delivery");
        if (r.kind !== "delivery") return;
        assert.deepEqual(r.delivery.files.map((f) => [f.kind, f.path, f.text]), [
          ["policies", `${pol}/a.yml`, "- a\n"],
          ["policies", `${pol}/b.yaml`, "- b\n"],
          ["services", svc, "[]\n"],
        ]);
        assert.match(r.delivery.revision, /^sha256:[0-9a-f]{16}$/);
        const again = await s.check();
        assert.deepEqual(again, { kind: "unchanged", revision: r.delivery.revision });
        await s.dispose();
      },
    );

    await t.step("recursive walks subdirectories", async () => {
      const s = source({ policies: pol, recursive: true });
      const r = await s.check();
      assert.ok(r.kind === "delivery");
      assert.deepEqual(r.delivery.files.map((f) => f.path), [
        `${pol}/a.yml`,
        `${pol}/b.yaml`,
        `${pol}/team/c.json`,
      ]);
      await s.dispose();
    });

    await t.step("non-UTF-8, missing paths and limits fail with reasons", async () => {
      const bad = join(dir, "latin1.yaml");
      await Deno.writeFile(bad, new Uint8Array([0x2d, 0x20, 0x0a, 0x2d, 0x20, 0xe9, 0x0a]));
      const s = source({ policies: [bad, join(dir, "nope")], services: [svc] });
      const r = await s.check();
      assert.deepEqual(r, {
        kind: "failure",
        problems: [
          { file: bad, line: 2, message: "file is not UTF-8 text" },
          { file: join(dir, "nope"), message: "policies path does not exist" },
        ],
      });
      const lenient = source({ policies: [join(dir, "nope")], allowMissing: [join(dir, "nope")] });
      const ok = await lenient.check();
      assert.ok(ok.kind === "delivery");
      assert.deepEqual(ok.delivery.warnings, [
        { file: join(dir, "nope"), message: "policies path does not exist" },
      ]);
      const small = source({ policies: pol, limits: { maxFileBytes: 3 } });
      const big = await small.check();
      assert.ok(big.kind === "failure");
      assert.match(big.problems[0]!.message, /above the limit of 3 bytes/);
      await Deno.remove(bad);
      for (const x of [s, lenient, small]) await x.dispose();
    });

    await t.step("a rename-replace edit is picked up after the debounce", async () => {
      const s = source({ policies: pol, debounce: "50ms" });
      const first = await s.check();
      assert.ok(first.kind === "delivery");
      const next = nextCheck(s, (r) => r.kind === "delivery");
      next.started();
      await Deno.writeTextFile(join(pol, ".b.yaml.tmp"), "- b2\n");
      await Deno.rename(join(pol, ".b.yaml.tmp"), join(pol, "b.yaml"));
      const r = await next.result;
      assert.ok(r.kind === "delivery", JSON.stringify(r));
      assert.equal(r.delivery.files.find((f) => f.path.endsWith("b.yaml"))?.text, "- b2\n");
      assert.notEqual(r.delivery.revision, first.delivery.revision);
      await s.dispose();
    });

    await t.step("a directory that appears later is watched", async () => {
      const later = join(dir, "later", "policies");
      const s = source({ policies: later, allowMissing: [later], debounce: "50ms" });
      const first = await s.check();
      assert.ok(first.kind === "delivery" && first.delivery.files.length === 0);
      const next = nextCheck(s, (r) => r.kind === "delivery" && r.delivery.files.length === 1);
      next.started();
      await Deno.mkdir(later, { recursive: true });
      await new Promise((r) => setTimeout(r, 200));
      await Deno.writeTextFile(join(later, "x.yaml"), "[]\n");
      const r = await next.result;
      assert.ok(r.kind === "delivery", JSON.stringify(r));
      assert.deepEqual(r.delivery.files.map((f) => f.path), [`${later}/x.yaml`]);
      await s.dispose();
    });

    await t.step("a local wasm module and its data are delivered", async () => {
      await Deno.writeFile(join(dir, "policy.wasm"), new Uint8Array([0, 0x61, 0x73, 0x6d]));
      await Deno.writeTextFile(join(dir, "data.json"), '{"max_ttl_seconds": 60}');
      const s = source({ wasm: join(dir, "policy.wasm"), data: join(dir, "data.json") });
      const r = await s.check();
      assert.ok(r.kind === "delivery");
      assert.deepEqual(r.delivery.opa?.data, { max_ttl_seconds: 60 });
      assert.equal(r.delivery.opa?.wasm.length, 4);
      await s.dispose();
    });

    await t.step("config problems are reported at once", () => {
      const r = parseFileSourceConfig({ recursive: "yes", extra: 1, policies: 3 });
      assert.ok(!r.ok);
      assert.deepEqual(r.problems.map((p) => p.field).sort(), ["extra", "policies", "recursive"]);
      const d = parseFileSourceConfig({ data: "x.json" });
      assert.ok(!d.ok);
      assert.deepEqual(d.problems, [
        { field: "", message: "give policies, services, wasm or audit" },
        { field: "data", message: "data needs wasm" },
      ]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("file source conformance", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "camblet-file-conf-" });
  await policySourceConformance(t, async (initial) => {
    const publish = async (content: Record<string, string | Uint8Array>) => {
      for (const sub of ["policies", "services"]) {
        await Deno.remove(join(dir, sub), { recursive: true }).catch(() => {});
        await Deno.mkdir(join(dir, sub));
      }
      for (const [path, data] of Object.entries(content)) {
        await Deno.writeFile(
          join(dir, path),
          typeof data === "string" ? new TextEncoder().encode(data) : data,
        );
      }
    };
    await publish(initial);
    return {
      source: source({
        policies: join(dir, "policies"),
        services: join(dir, "services"),
        debounce: "20ms",
      }),
      publish,
      cleanup: () => Deno.remove(dir, { recursive: true }),
    };
  });
});

/** Opens `fifo` for writing now and then, so a reader blocked on it (the bug) ends; stop() ends it. */
function unblockFifo(fifo: string, afterMs: number): { stop: () => void } {
  const timer = setInterval(async () => {
    const { open, constants } = await import("node:fs/promises");
    const w = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).catch(() => undefined);
    await w?.close();
  }, afterMs);
  return { stop: () => clearInterval(timer) };
}

async function within<T>(ms: number, p: Promise<T>): Promise<T | "late"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), ms));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("file source: special files never block reads", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "camblet-file-fifo-" });
  const pol = join(dir, "policies");
  await Deno.mkdir(pol);
  await Deno.writeTextFile(join(pol, "a.yaml"), "- a\n");
  const mkfifo = async (p: string) =>
    assert.equal((await new Deno.Command("mkfifo", { args: [p] }).output()).code, 0);
  const fifo = join(pol, "x.yaml");
  await mkfifo(fifo);
  const rescue = unblockFifo(fifo, 3000);
  try {
    await t.step("a FIFO named *.yaml is skipped, and a later change is applied", async () => {
      const s = source({ policies: pol, debounce: "50ms" });
      const first = await within(2000, s.check());
      assert.notEqual(first, "late", "the check blocked on the FIFO");
      assert.ok(first !== "late" && first.kind === "delivery", JSON.stringify(first));
      assert.deepEqual(first.delivery.files.map((f) => f.path), [`${pol}/a.yaml`]);
      assert.match(first.delivery.warnings[0]?.message ?? "", /is a FIFO, not a regular file/);
      const next = nextCheck(s, (r) => r.kind === "delivery");
      next.started();
      await Deno.writeTextFile(join(pol, "a.yaml"), "- a2\n");
      const r = await next.result;
      assert.ok(r.kind === "delivery", JSON.stringify(r));
      assert.equal(r.delivery.files[0]?.text, "- a2\n");
      await s.dispose();
    });

    await t.step("a FIFO given as the wasm module fails the check at once", async () => {
      const wasm = join(dir, "policy.wasm");
      await mkfifo(wasm);
      const rescueWasm = unblockFifo(wasm, 3000);
      try {
        const s = source({ wasm });
        const r = await within(2000, s.check());
        assert.notEqual(r, "late", "the check blocked on the FIFO");
        assert.ok(r !== "late" && r.kind === "failure", JSON.stringify(r));
        assert.equal(r.problems[0]?.file, wasm);
        assert.match(r.problems[0]!.message, /is a FIFO, not a regular file/);
        await s.dispose();
      } finally {
        rescueWasm.stop();
      }
    });

    await t.step("a link loop and a broken link say which they are", async () => {
      const d = join(dir, "links");
      await Deno.mkdir(d);
      await Deno.symlink(join(d, "loop2.yaml"), join(d, "loop1.yaml"));
      await Deno.symlink(join(d, "loop1.yaml"), join(d, "loop2.yaml"));
      await Deno.symlink(join(d, "gone"), join(d, "broken.yaml"));
      const s = source({ policies: d });
      const r = await s.check();
      assert.ok(r.kind === "failure", JSON.stringify(r));
      const by = new Map(r.problems.map((p) => [p.file, p.message]));
      assert.match(by.get(join(d, "loop1.yaml")) ?? "", /symbolic link loop/);
      assert.doesNotMatch(by.get(join(d, "loop1.yaml")) ?? "", /broken/);
      assert.match(by.get(join(d, "broken.yaml")) ?? "", /broken link: ".*gone" does not exist/);
      await s.dispose();
    });
  } finally {
    rescue.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
