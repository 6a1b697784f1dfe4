/**
 * How fast a change reaches a new compiled payload, and what idle polling costs.
 *
 * - "commit → payload": a commit is made in a clone of a real local git remote (not timed), then
 *   the time from `git push` until the policy sources emit the compiled snapshot holding it (the
 *   push, ~50 ms of git CLI work, is included): once driven by `refresh()`
 *   (fetch + read + parse + compile, what SIGHUP costs) and once by the source's own polling every
 *   100 ms (adds on average half an interval).
 * - "bundle → payload": the same with a new signed bundle on a loopback HTTP server.
 * - idle polling: process CPU time (and the CPU of git's child processes) over 10 s with nothing
 *   changing, git and http polled every 100 ms; printed, not benchmarked.
 *
 * Run: deno bench -A tests/sources/sources_bench.ts
 */
import { join } from "node:path";
import { type PolicySnapshot, PolicySources } from "../../agent/sources/policy_sources.ts";
import { makeBundle, signingKey } from "./_bundles.ts";
import { BundleServer } from "./_bundle_server.ts";
import { GitRemote } from "./_git_repo.ts";
import { specsFor } from "./_specs.ts";

const policy = (name: string) =>
  `- selectors: [{process:name: ${name}}]\n  certificate: {workloadID: ${name}}\n`;
/** A realistic set: 50 policy files of 4 policies each. */
function policyFiles(prefix: string, round: number): Record<string, string> {
  const files: Record<string, string> = {};
  for (let f = 0; f < 50; f++) {
    files[`${prefix}policies/team${f}.yaml`] = [0, 1, 2, 3].map((i) =>
      policy(`w${f}-${i}-r${round}`)
    )
      .join("");
  }
  return files;
}

function nextSnapshot(sources: PolicySources): Promise<PolicySnapshot> {
  return new Promise((resolve) => {
    const off = sources.subscribe((s) => (off(), resolve(s)));
  });
}

const remote = await GitRemote.create();
await remote.commit(policyFiles("deploy/", 0), "initial");
const server = BundleServer.start();
const key = await signingKey();
let bundleRound = 0;
const bundle = async () =>
  await makeBundle({
    revision: `r${++bundleRound}`,
    files: policyFiles("", bundleRound),
    sign: { privateKey: key.privateKey },
  });
server.serve = { kind: "bundle", body: await bundle() };
globalThis.addEventListener("unload", () => Deno.removeSync(remote.root, { recursive: true }));

let running: { key: string; sources: PolicySources[] } | undefined;

async function start(polled: boolean, only: "git" | "http"): Promise<PolicySources> {
  const poll = polled ? { pollInterval: "100ms", jitter: 0 } : { pollInterval: "1h" };
  const specs = specsFor([
    only === "git"
      ? {
        type: "git",
        url: remote.url,
        ref: "main",
        dir: "deploy",
        cacheDir: join(remote.root, `cache-${polled}`),
        ...poll,
      }
      : { type: "http", url: server.url(), verification: { key: key.publicPem }, ...poll },
  ]);
  return await PolicySources.start({ specs, trustDomain: "acme.test", debounceMs: 0 });
}

/** The sources of bench `key`, started on its first iteration; other benches' are stopped. */
async function sourcesFor(key: string, make: () => Promise<PolicySources[]>) {
  if (running?.key !== key) {
    for (const s of running?.sources ?? []) await s.dispose();
    running = { key, sources: await make() };
  }
  return running.sources;
}

let round = 0;
for (const polled of [false, true]) {
  const how = polled ? "polling every 100 ms" : "refresh()";
  Deno.bench({
    name: `git commit → compiled payload (${how})`,
    group: "git",
    n: 15,
    warmup: 2,
    async fn(b) {
      const [git] = await sourcesFor(`git ${polled}`, async () => [await start(polled, "git")]);
      await remote.commit(policyFiles("deploy/", ++round), `round ${round}`, { push: false });
      const next = nextSnapshot(git!);
      b.start();
      await remote.git("push", "-q", "origin", "HEAD:main");
      if (!polled) await git!.refresh();
      await next;
      b.end();
    },
  });
  Deno.bench({
    name: `new HTTP bundle → compiled payload (${how})`,
    group: "http",
    n: 15,
    warmup: 2,
    async fn(b) {
      const [http] = await sourcesFor(`http ${polled}`, async () => [await start(polled, "http")]);
      const body = await bundle();
      const next = nextSnapshot(http!);
      b.start();
      server.serve = { kind: "bundle", body };
      if (!polled) await http!.refresh();
      await next;
      b.end();
    },
  });
}

/** utime+stime of this process and of its reaped children, in ms (from /proc/self/stat). */
function cpuMs(): { self: number; children: number } {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  const tick = 10; // USER_HZ = 100 on Linux
  return { self: (f[11]! + f[12]!) * tick, children: (f[13]! + f[14]!) * tick };
}

Deno.bench({
  name: "idle polling for 10 s (git and http every 100 ms): CPU time printed",
  n: 1,
  warmup: 0,
  async fn() {
    const [git, http] = await sourcesFor(
      "idle",
      async () => [await start(true, "git"), await start(true, "http")],
    );
    const before = cpuMs();
    const seen = server.seen.length;
    const checks = () => git!.status().sources[0]!.checks["unchanged"] ?? 0;
    const checked = checks();
    await new Promise((r) => setTimeout(r, 10_000));
    const after = cpuMs();
    console.log(
      `idle 10 s: agent CPU ${after.self - before.self} ms, git child processes ${
        after.children - before.children
      } ms; ${checks() - checked} git checks, ${server.seen.length - seen} HTTP requests (304) ` +
        `(http checks: ${http!.status().sources[0]!.checks["unchanged"] ?? 0} so far)`,
    );
  },
});
