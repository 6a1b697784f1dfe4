/**
 * Golden tests: policy and service files in, compiled kernel JSON out. Each case is a directory
 * under testdata/golden/ with case.json (trust domain, resolver table), policies/, services/ and
 * the committed expected.json. Regenerate after an intended change with:
 *
 *   UPDATE_GOLDEN=1 deno test -A agent/policy/golden_test.ts
 *
 * @module
 */
import assert from "node:assert/strict";
import { loadPolicySet, type PolicySet } from "./load.ts";
import { systemResolver } from "./resolve.ts";

const GOLDEN = new URL("./testdata/golden/", import.meta.url).pathname;
const UPDATE = Deno.env.get("UPDATE_GOLDEN") === "1";
const CAPTURE = new URL(
  "../../tests/testdata/camblet-driver/transcripts/baseline.jsonl",
  import.meta.url,
).pathname;
const EXAMPLES = new URL("../../policies/examples/", import.meta.url).pathname;

interface CaseConfig {
  trustDomain: string;
  hosts?: Record<string, string[]>;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function load(dir: string, config: CaseConfig): Promise<PolicySet> {
  const hosts = config.hosts ?? {};
  return await loadPolicySet({
    policiesPaths: (await exists(`${dir}policies`)) ? [`${dir}policies`] : [],
    servicesPaths: (await exists(`${dir}services`)) ? [`${dir}services`] : [],
    trustDomain: config.trustDomain,
    resolver: (name) => Promise.resolve(hosts[name] ?? []),
  });
}

/** The golden view: payloads plus provenance with paths relative to the case directory. */
function view(set: PolicySet, dir: string): string {
  const provenance = Object.fromEntries(
    Object.entries(set.provenance).map(([id, p]) => [id, { ...p, file: p.file.slice(dir.length) }]),
  );
  return JSON.stringify({ payloads: set.payloads, provenance }, null, 2) + "\n";
}

Deno.test("golden: files in, kernel payloads out", async (t) => {
  const names: string[] = [];
  for await (const e of Deno.readDir(GOLDEN)) if (e.isDirectory) names.push(e.name);
  names.sort();
  assert.ok(names.length >= 5, `golden cases: ${names}`);
  for (const name of names) {
    await t.step(name, async () => {
      const dir = `${GOLDEN}${name}/`;
      const config = JSON.parse(await Deno.readTextFile(`${dir}case.json`)) as CaseConfig;
      const actual = view(await load(dir, config), dir);
      if (UPDATE) await Deno.writeTextFile(`${dir}expected.json`, actual);
      assert.equal(
        actual,
        await Deno.readTextFile(`${dir}expected.json`),
        `golden ${name} differs`,
      );
    });
  }
});

Deno.test("ids stay the same when unrelated files change", async () => {
  const src = `${GOLDEN}ordering/policies/`;
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/policies`);
    for (const f of ["a.yaml", "b.yaml", "c.yaml"]) {
      await Deno.copyFile(src + f, `${dir}/policies/${f}`);
    }
    const config = { trustDomain: "acme.corp" };
    const ids = (set: PolicySet) =>
      new Map(set.payloads.load_policies.policies.map((p) => [p.certificate.workloadID, p.id]));
    const before = ids(await load(`${dir}/`, config));

    // Change c.yaml and add a new file that sorts first: the policies of a.yaml and b.yaml,
    // whose positions move, keep their ids.
    await Deno.writeTextFile(
      `${dir}/policies/c.yaml`,
      "- selectors: [{ process:name: curl, destination:port: 9000 }]\n  certificate: { workloadID: c0 }\n",
    );
    await Deno.writeTextFile(
      `${dir}/policies/0-new.yaml`,
      "- selectors: [{ process:name: nginx, direction: input, x: y }]\n  certificate: { workloadID: new }\n",
    );
    const afterSet = await load(`${dir}/`, config);
    const after = ids(afterSet);
    for (const w of ["a0", "a1-match-all", "a2", "b0", "b1"]) {
      assert.equal(after.get(w), before.get(w), w);
    }
    assert.notEqual(after.get("c0"), before.get("c0"));
    const positions = afterSet.payloads.load_policies.policies.map((p) => p.certificate.workloadID);
    assert.equal(positions[0], "new"); // it contains a2's selector set
    assert.equal(positions[positions.length - 1], "a1-match-all");

    // Moving a policy to another file does not change its id either.
    await Deno.rename(`${dir}/policies/b.yaml`, `${dir}/policies/zz-renamed.yaml`);
    const moved = ids(await load(`${dir}/`, config));
    assert.equal(moved.get("b0"), before.get("b0"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the quickstart example compiles to what the captured session sent, apart from ids", async () => {
  const sent = new Map<string, unknown>();
  for (const line of (await Deno.readTextFile(CAPTURE)).split("\n")) {
    if (!line) continue;
    const record = JSON.parse(line) as { dir: string; raw: string };
    if (record.dir !== "agent->kernel") continue;
    const msg = JSON.parse(record.raw) as { command: string; code?: string };
    if (msg.code) sent.set(msg.command, JSON.parse(atob(msg.code)));
  }
  const set = await loadPolicySet({
    policiesPaths: [`${EXAMPLES}quickstart/policies`],
    servicesPaths: [`${EXAMPLES}quickstart/services`],
    trustDomain: "acme.test",
    resolver: () => Promise.resolve([]),
  });
  const withoutIds = (v: unknown) =>
    JSON.parse(JSON.stringify(v, (k, x) => (k === "id" ? undefined : x)));
  assert.deepEqual(set.payloads.load_config, sent.get("load_config"));
  assert.deepEqual(set.payloads.load_sd_info, sent.get("load_sd_info"));
  assert.deepEqual(withoutIds(set.payloads.load_policies), withoutIds(sent.get("load_policies")));
  // Same bytes too (key order included), ids aside.
  assert.equal(
    JSON.stringify(withoutIds(set.payloads.load_policies)),
    JSON.stringify(withoutIds(sent.get("load_policies"))),
  );
});

Deno.test("every example set validates", async (t) => {
  for await (const e of Deno.readDir(EXAMPLES)) {
    if (!e.isDirectory) continue;
    await t.step(e.name, async () => {
      const set = await loadPolicySet({
        policiesPaths: [`${EXAMPLES}${e.name}/policies`],
        servicesPaths: [`${EXAMPLES}${e.name}/services`],
        trustDomain: "acme.corp",
        // Examples name only IP literals and localhost: no hosts file, no DNS.
        resolver: systemResolver({
          hostsFile: "/nonexistent/hosts",
          resolveDns: () => Promise.reject(new Error("examples must not need DNS")),
        }),
      });
      assert.ok(set.payloads.load_policies.policies.length > 0);
      assert.deepEqual(set.warnings, []);
    });
  }
});
