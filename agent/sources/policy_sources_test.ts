import assert from "node:assert/strict";
import { join } from "node:path";
import { type PolicySnapshot, PolicySources } from "./policy_sources.ts";
import { ValidationError } from "../errors.ts";
import { loadPolicySet } from "../policy/load.ts";
import { specsFor, tableResolver } from "../../tests/sources/_specs.ts";

const web = (name: string) =>
  `- selectors: [{process:name: ${name}}]\n  certificate: {workloadID: ${name}}\n`;
const DB = "- addresses: [{address: 10.0.0.5, port: 5432}]\n  labels: {app:label: db}\n";

function workloads(s: PolicySnapshot): string[] {
  return s.payloads.load_policies.policies.map((p) => p.certificate.workloadID).sort();
}

async function write(path: string, text: string): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  // Rename-replace, as editors do: never a half-written file.
  await Deno.writeTextFile(`${path}.tmp`, text);
  await Deno.rename(`${path}.tmp`, path);
}

Deno.test("policy sources merge, keep the last good set and report where problems are", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "camblet-sources-" });
  const a = join(dir, "a"), b = join(dir, "b");
  await write(join(a, "policies/web.yaml"), web("web"));
  await write(join(a, "services/db.yaml"), DB);
  await write(join(b, "policies/api.yaml"), web("api"));
  const specs = specsFor([
    { type: "file", name: "a", policies: join(a, "policies"), services: join(a, "services") },
    { type: "file", name: "b", policies: join(b, "policies"), debounce: "20ms" },
  ]);
  const sources = await PolicySources.start({ specs, trustDomain: "acme.test", debounceMs: 10 });
  try {
    await t.step("the first snapshot merges every source, with provenance", () => {
      const s = sources.current;
      assert.equal(s.revision, 1);
      assert.deepEqual(workloads(s), ["api", "web"]);
      assert.deepEqual(Object.keys(s.payloads.load_sd_info), ["10.0.0.5:5432"]);
      const prov = Object.values(s.provenance).map((p) => `${p.source} ${p.file} ${p.item}`).sort();
      assert.deepEqual(prov, [
        `file(a) ${join(a, "policies/web.yaml")} 0`,
        `file(b) ${join(b, "policies/api.yaml")} 0`,
      ]);
      assert.deepEqual(s.files.policies, [
        `file(a):${join(a, "policies/web.yaml")}`,
        `file(b):${join(b, "policies/api.yaml")}`,
      ]);
      const st = sources.status();
      assert.deepEqual(st.sources.map((x) => [x.id, x.state, x.items.policies]), [
        ["file(a)", "ok", 1],
        ["file(b)", "ok", 1],
      ]);
    });

    await t.step(
      "an invalid edit is rejected with source, file, line, item and field",
      async () => {
        await write(
          join(b, "policies/api.yaml"),
          web("api") + "- selectors: []\n  certificat: {}\n",
        );
        const s = await sources.refresh();
        assert.equal(s.revision, 1, "nothing new is in force");
        assert.deepEqual(workloads(s), ["api", "web"]);
        const st = sources.status().sources[1]!;
        assert.equal(st.state, "rejected");
        assert.equal(st.consecutiveFailures, 1);
        const file = join(b, "policies/api.yaml");
        assert.ok(
          st.lastError!.problems.includes(
            `file(b): ${file}:4: item 1: certificat: unknown field "certificat"`,
          ),
          st.lastError!.problems.join("\n"),
        );
        assert.ok(st.lastError!.problems.some((p) => p.startsWith(`file(b): ${file}:3: item 1: `)));
      },
    );

    await t.step("other sources still move on while one is rejected", async () => {
      await write(join(a, "policies/web.yaml"), web("web") + web("web2"));
      const s = await sources.refresh();
      assert.equal(s.revision, 2);
      assert.deepEqual(workloads(s), ["api", "web", "web2"]);
      assert.equal(sources.status().sources[1]!.state, "rejected");
    });

    await t.step("a YAML alias bomb is refused with its reason", async () => {
      const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
      for (let i = 1; i < 9; i++) {
        bomb.push(
          `${"abcdefghi"[i]}: &${"abcdefghi"[i]} [${
            Array(9).fill(`*${"abcdefghi"[i - 1]}`).join(",")
          }]`,
        );
      }
      await write(join(b, "policies/api.yaml"), bomb.join("\n") + "\n");
      await sources.refresh();
      const st = sources.status().sources[1]!;
      assert.match(
        st.lastError!.problems.join("\n"),
        /YAML: cannot expand aliases: .*at most 100 alias uses/,
      );
      assert.equal(sources.current.revision, 2);
    });

    await t.step("fixing the file through the watch applies it", async () => {
      const next = new Promise<PolicySnapshot>((resolve) => {
        const off = sources.subscribe((s) => (off(), resolve(s)));
      });
      await write(join(b, "policies/api.yaml"), web("api") + web("api2"));
      const s = await next;
      assert.equal(s.revision, 3);
      assert.deepEqual(workloads(s), ["api", "api2", "web", "web2"]);
      assert.equal(sources.status().sources[1]!.state, "ok");
    });

    await t.step("an address described by two sources is a warning", async () => {
      await write(join(b, "policies/../services.yaml"), DB.replace("db", "db2"));
      const c = specsFor([
        { type: "file", name: "a", services: join(a, "services") },
        { type: "file", name: "b", services: join(b, "services.yaml") },
      ]);
      const two = await PolicySources.start({ specs: c, trustDomain: "acme.test" });
      try {
        assert.deepEqual(two.current.payloads.load_sd_info["10.0.0.5:5432"], {
          labels: ["app:label=db", "app:label=db2"],
        });
        assert.deepEqual(two.status().warnings, [
          "file(a), file(b): service address 10.0.0.5:5432 is described by 2 sources; their labels are merged",
        ]);
      } finally {
        await two.dispose();
      }
    });
  } finally {
    await sources.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("policy sources at startup", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "camblet-sources-start-" });
  try {
    await t.step("a required source that is invalid fails the start, naming it", async () => {
      await write(
        join(dir, "bad.yaml"),
        "- certificate: {workloadID: x}\n  selectors: [{a: b}]\n  ttl: 1\n",
      );
      const specs = specsFor([{ type: "file", name: "bad", policies: join(dir, "bad.yaml") }]);
      await assert.rejects(
        PolicySources.start({ specs, trustDomain: "acme.test" }),
        (e: unknown) => {
          assert.ok(e instanceof ValidationError);
          assert.match(
            e.message,
            /Cannot load policy sources: 1 problem\n {2}file\(bad\): .*bad.yaml:3: item 0: ttl: unknown field "ttl"/,
          );
          return true;
        },
      );
    });
    await t.step("an optional source that fails does not; it is reported", async () => {
      await write(join(dir, "good.yaml"), web("good"));
      const specs = specsFor([
        { type: "file", name: "good", policies: join(dir, "good.yaml") },
        { type: "file", name: "gone", optional: true, policies: join(dir, "missing.yaml") },
      ]);
      const sources = await PolicySources.start({ specs, trustDomain: "acme.test" });
      try {
        assert.deepEqual(workloads(sources.current), ["good"]);
        const gone = sources.status().sources[1]!;
        assert.equal(gone.state, "failing");
        assert.equal(gone.revision, undefined);
        assert.deepEqual(gone.lastError?.problems, [
          `file(gone): ${join(dir, "missing.yaml")}: policies path does not exist`,
        ]);
      } finally {
        await sources.dispose();
      }
    });
    await t.step("bad plugin config is refused before anything starts", async () => {
      const specs = specsFor([{ type: "git", url: "nope" }, { type: "ftp" }]);
      await assert.rejects(
        PolicySources.start({ specs, trustDomain: "acme.test" }),
        /plugins.policySource\[0\].url: must be .*\n.*plugins.policySource\[1\]: unknown policySource plugin "ftp" \(available: file, git, http\)/,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--policies-path/--services-path give exactly the payloads they always did", async () => {
  const golden = new URL("../policy/testdata/golden/services/", import.meta.url).pathname;
  const hosts = { "db.internal": ["10.0.0.5", "fd00::5"], "localhost": ["127.0.0.1", "::1"] };
  const policies = [join(golden, "policies")];
  const services = [join(golden, "services")];
  const specs = specsFor([], { policiesPath: policies, servicesPath: services }, {
    "agent.policiesPath": "flag --policies-path",
    "agent.servicesPath": "flag --services-path",
  });
  assert.deepEqual(specs.map((s) => s.id), ["file(paths)"]);
  const sources = await PolicySources.start({
    specs,
    trustDomain: "acme.corp",
    resolver: tableResolver(hosts),
  });
  try {
    const before = await loadPolicySet({
      policiesPaths: policies,
      servicesPaths: services,
      trustDomain: "acme.corp",
      resolver: tableResolver(hosts),
    });
    assert.deepEqual(sources.current.payloads, before.payloads);
    assert.deepEqual(sources.current.provenance, before.provenance);
    assert.deepEqual(sources.current.files, before.files);
  } finally {
    await sources.dispose();
  }
});

Deno.test("hostnames: resolved once, re-resolved on demand, failures keep the set", async () => {
  const dir = await Deno.makeTempDir({ prefix: "camblet-sources-dns-" });
  const hosts: Record<string, string[]> = { "db.internal": ["10.0.0.5"] };
  await write(
    join(dir, "a/services.yaml"),
    "- addresses: [{address: db.internal, port: 5432}]\n  labels: {app:label: db}\n",
  );
  await write(join(dir, "b/web.yaml"), web("web"));
  const specs = specsFor([
    { type: "file", name: "a", services: join(dir, "a/services.yaml") },
    { type: "file", name: "b", policies: join(dir, "b/web.yaml") },
  ]);
  const sources = await PolicySources.start({
    specs,
    trustDomain: "acme.test",
    resolver: (name) =>
      hosts[name] ? Promise.resolve(hosts[name]!) : Promise.reject(new Error("NXDOMAIN")),
  });
  try {
    assert.deepEqual(Object.keys(sources.current.payloads.load_sd_info), ["10.0.0.5:5432"]);
    delete hosts["db.internal"];
    await write(join(dir, "b/web.yaml"), web("web") + web("api"));
    const s = await sources.refresh();
    assert.equal(s.revision, 2, "another source's change is not blocked by DNS");
    assert.deepEqual(Object.keys(s.payloads.load_sd_info), ["10.0.0.5:5432"]);
    const problems = await sources.reresolve();
    assert.match(
      problems.map((p) => `${p.source}: ${p.message}`).join(),
      /file\(a\): cannot resolve hostname "db.internal": NXDOMAIN/,
    );
    assert.equal(sources.current.revision, 2);
    hosts["db.internal"] = ["10.0.0.6"];
    assert.deepEqual(await sources.reresolve(), []);
    assert.equal(sources.current.revision, 3);
    assert.deepEqual(Object.keys(sources.current.payloads.load_sd_info), ["10.0.0.6:5432"]);
  } finally {
    await sources.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a set past the kernel's limits is refused before parsing or compiling", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "camblet-sources-big-" });
  const pol = join(dir, "policies");
  await write(join(pol, "a.yaml"), web("web"));
  const specs = specsFor([{ type: "file", name: "big", policies: pol }]);
  const sources = await PolicySources.start({ specs, trustDomain: "acme.test", debounceMs: 10 });
  try {
    await t.step("counted from the text: refused before parsing, naming the file", async () => {
      const items = Array.from({ length: 12_000 }, (_, i) => web(`w${i}`));
      await write(join(pol, "big.yaml"), items.join(""));
      const s = await sources.refresh();
      assert.deepEqual(workloads(s), ["web"], "the last good set stays");
      const st = sources.status().sources[0]!;
      assert.equal(st.state, "rejected");
      assert.deepEqual(st.lastError!.problems, [
        `file(big): ${join(pol, "big.yaml")}: refused before parsing: holds about 12000 policy ` +
        "and egress entries (counted from its text); the set's 12001 policy and egress entries " +
        "would take at least 1280166 bytes compiled, above the 1048576 bytes of one kernel " +
        "write (at most 9829 fit)",
      ]);
      await Deno.remove(join(pol, "big.yaml"));
    });

    await t.step("entries the text hides behind aliases: refused before compiling", async () => {
      // 100 files of 100 items sharing one aliased certificate: 100 keys in the text, 10,000 entries.
      for (let f = 0; f < 100; f++) {
        const lines = [`- selectors: [{a: f${f}i0}]\n  certificate: &c {workloadID: x}\n`];
        for (let i = 1; i < 100; i++) {
          lines.push(`- selectors: [{a: f${f}i${i}}]\n  certificate: *c\n`);
        }
        await write(join(pol, `f${String(f).padStart(3, "0")}.yaml`), lines.join(""));
      }
      const s = await sources.refresh();
      assert.deepEqual(workloads(s), ["web"], "the last good set stays");
      const st = sources.status().sources[0]!;
      assert.equal(st.state, "rejected");
      assert.match(
        st.lastError!.problems.join("\n"),
        /^file\(big\): refused before compiling: (the merged set's )?10001 policy and egress entries would take at least \d+ bytes compiled, above the 1048576 bytes of one kernel write/,
      );
    });
  } finally {
    await sources.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
