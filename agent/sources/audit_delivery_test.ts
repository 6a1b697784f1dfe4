// Syscall audit rules delivered by policy sources (here `file` sources watching audit
// directories, compiled with the real opa): loaded into the snapshot, refused revisions keep the
// last good rules, one source may deliver them, and without a loader they are not loaded.
import assert from "node:assert/strict";
import { join } from "node:path";
import { PolicySources } from "./policy_sources.ts";
import { loadRuleFiles } from "../audit/delivered_rules.ts";
import { specsFor } from "../../tests/sources/_specs.ts";
import { until } from "../../tests/fakes/until.ts";
import { skip } from "../../tests/_skip.ts";
import { peerMissing, peerPath } from "../../tests/peers/ensure_peer.ts";

const RULE = (name: string) =>
  `package camblet.audit
filter contains {"rule": "${name}", "syscalls": ["openat"], "prefixes": ["/etc/"]}
violations contains {"rule": "${name}", "severity": "notice", "output": "x"} if input.path == "/etc/x"
`;

async function write(path: string, text: string): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(`${path}.tmp`, text);
  await Deno.rename(`${path}.tmp`, path);
}

Deno.test({
  name:
    "audit rules from file sources: loaded, a bad revision refused with source and reason (last good kept), one source only",
  ignore: skip(peerMissing("opa")),
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "camblet-audit-sources-" });
    const a = join(dir, "a"), b = join(dir, "b");
    await write(join(a, "rules.rego"), RULE("A"));
    await write(join(a, "lib/README.md"), "ignored\n");
    const specs = specsFor([{ type: "file", name: "a", audit: a, debounce: "20ms" }]);
    const opa = peerPath("opa");
    const sources = await PolicySources.start({
      specs,
      trustDomain: "acme.test",
      debounceMs: 10,
      loadAudit: (d, where) => loadRuleFiles(d.files, where, opa),
    });
    try {
      await t.step("the first snapshot carries the rules and where they came from", () => {
        const s = sources.current.audit!;
        assert.equal(s.source, "file(a)");
        assert.equal(s.kind, "rego");
        assert.equal(s.files, 1);
        assert.deepEqual(s.rules.filter.prefixes, ["/etc/"]);
        const st = sources.status();
        assert.deepEqual(st.audit, {
          source: "file(a)",
          revision: s.revision,
          id: s.id,
          kind: "rego",
        });
        assert.equal(st.sources[0]!.items.auditRules, true);
      });
      const good = sources.current.audit!.id;

      await t.step("Rego that does not compile: refused, the last good rules stay", async () => {
        await write(join(a, "rules.rego"), RULE("A").replace("if input", "if {"));
        await until(() => sources.status().sources[0]!.state === "rejected", "the refusal");
        const problems = sources.status().sources[0]!.lastError!.problems.join("\n");
        assert.match(problems, /^file\(a\): audit\/: Cannot compile the audit rules of file\(a\)/);
        assert.match(problems, /rules\.rego:\d+: rego_parse_error/);
        assert.equal(sources.current.audit!.id, good);
      });

      await t.step("a good edit is taken", async () => {
        await write(join(a, "rules.rego"), RULE("B"));
        await until(() => sources.current.audit?.id !== good, "the new rules");
        assert.equal(sources.status().sources[0]!.state, "ok");
      });
    } finally {
      await sources.dispose();
    }

    await t.step(
      "a second source with audit rules is refused; without a loader none load",
      async () => {
        await write(join(b, "rules.rego"), RULE("C"));
        const two = await PolicySources.start({
          specs: specsFor([
            { type: "file", name: "a", audit: a },
            { type: "file", name: "b", audit: b },
          ]),
          trustDomain: "acme.test",
          strict: false,
          loadAudit: (d, where) => loadRuleFiles(d.files, where, opa),
        });
        try {
          const st = two.status();
          assert.equal(two.current.audit!.source, "file(a)");
          assert.equal(st.sources[1]!.state, "rejected");
          assert.match(
            st.sources[1]!.lastError!.problems.join("\n"),
            /file\(b\): audit\/: file\(a\) already delivers the audit rules; one source may/,
          );
        } finally {
          await two.dispose();
        }
        const off = await PolicySources.start({
          specs: specsFor([{ type: "file", name: "a", audit: a }]),
          trustDomain: "acme.test",
        });
        try {
          assert.equal(off.current.audit, undefined);
          assert.equal(off.status().sources[0]!.state, "ok", "not an error: the audit is off");
        } finally {
          await off.dispose();
        }
      },
    );
    await Deno.remove(dir, { recursive: true });
  },
});
