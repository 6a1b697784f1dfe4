/**
 * `camblet-agent trace` on the proxy data plane: the quick start's two applications, with a
 * trace of each running, in a scratch root of their own (see _readme.ts).
 */
import assert from "node:assert/strict";
import { BUNDLE_PASS, REPO_ROOT } from "./_run.ts";
import { runInScratchRoot } from "./_readme.ts";
import { skip } from "../_skip.ts";

const canRun = Deno.uid() === 0 &&
  new Deno.Command("unshare", { args: ["--mount", "--net", "true"] }).outputSync().success;

const SCRIPT = `
mkdir -p /etc/camblet
cp -r policies/examples/quickstart/policies policies/examples/quickstart/services /etc/camblet/
deno run -A main.ts --trust-domain acme.test &
deno run -A main.ts trace --command-name curl > curl.trace &
deno run -A main.ts trace --command-name python3 > python3.trace &
python3 -m http.server 8000 --bind 127.0.0.1 &
curl -sS -o /dev/null http://127.0.0.1:8000/
for i in $(seq 100); do grep -q outcome curl.trace && grep -q outcome python3.trace && break; sleep 0.1; done
cat curl.trace python3.trace
`;

Deno.test({
  name: "trace on the proxy data plane streams each connection's outcome, per process",
  ignore: skip(
    BUNDLE_PASS ?? (!canRun && "needs root and unshare (the agent runs in its own namespaces)"),
  ),
  async fn() {
    const r = await runInScratchRoot(REPO_ROOT, [{ line: 1, code: SCRIPT }]);
    assert.equal(r.code, 0, `${r.output}\n${r.logs.join("\n---\n")}`);
    const lines = r.output.split("\n").filter((l) => l.includes("data_plane=proxy"));
    const curl = lines.filter((l) => / curl\[\d+\] /.test(l));
    const python = lines.filter((l) => / python3\[\d+\] /.test(l));
    assert.equal(curl.length, 1, r.output);
    assert.match(
      curl[0]!,
      /info "Connection protected \(mTLS\)" data_plane=proxy direction=output outcome=mtls source=127\.0\.0\.1:\d+ destination=127\.0\.0\.1:8000 spiffe_id=spiffe:\/\/acme\.test\/curl peer_spiffe_id=spiffe:\/\/acme\.test\/web policy=\S+$/,
    );
    assert.equal(python.length, 1, r.output);
    assert.match(
      python[0]!,
      /"Connection protected \(mTLS\)" data_plane=proxy direction=input outcome=mtls .* spiffe_id=spiffe:\/\/acme\.test\/web peer_spiffe_id=spiffe:\/\/acme\.test\/curl/,
    );
  },
});
