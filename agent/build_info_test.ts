import assert from "node:assert/strict";
import { BUILD_GLOBAL, buildInfo, versionReport } from "./build_info.ts";
import { VERSION } from "./version.ts";

Deno.test("buildInfo reads the packaging stamp", () => {
  const scope = {
    [BUILD_GLOBAL]: { commit: "abc1234", date: "2026-12-03T12:00:00Z", form: "bundle" },
  };
  assert.deepEqual(buildInfo(scope), {
    commit: "abc1234",
    date: "2026-12-03T12:00:00Z",
    form: "bundle",
  });
  const report = versionReport(scope).split("\n");
  assert.match(report[0]!, new RegExp(`^camblet-agent ${VERSION} \\(deno `));
  assert.deepEqual(report.slice(1), [
    `version:  ${VERSION}`,
    "commit:   abc1234",
    "built:    2026-12-03T12:00:00Z",
    "form:     bundle",
    `deno:     ${Deno.version.deno}`,
    `target:   ${Deno.build.target}`,
  ]);
});

Deno.test("buildInfo says source without a stamp and flags a malformed one", () => {
  assert.equal(buildInfo({}).commit, "unknown");
  assert.match(buildInfo({}).form, /^source/);
  const bad = buildInfo({ [BUILD_GLOBAL]: { commit: 7, date: "" } });
  assert.equal(bad.commit, `invalid (${BUILD_GLOBAL}.commit)`);
  assert.equal(bad.date, `invalid (${BUILD_GLOBAL}.date)`);
  assert.equal(bad.form, `invalid (${BUILD_GLOBAL}.form)`);
});
