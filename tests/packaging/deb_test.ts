/**
 * The deb as a user gets it: built by packaging/build.ts, installed with dpkg into a fresh Debian
 * root (debootstrap, tests/packaging/debian_root.ts) that has no Deno, npm or source tree, then
 * run, upgraded, verified by systemd-analyze against that root, and purged. Also the rpm's
 * metadata and file list. Needs root, debootstrap, unshare and systemd-analyze; outside CI a
 * machine without them skips (CI=true makes a missing tool a failure).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildPackages } from "../../packaging/build.ts";
import type { Arch } from "../../packaging/deno_runtime.ts";
import { VERSION } from "../../agent/version.ts";
import { freshRoot } from "./debian_root.ts";
import { inRoot, listTree, spawnInRoot } from "./chroot.ts";

const ARCH: Arch = Deno.build.arch === "aarch64" ? "aarch64" : "x86_64";
const NEEDS = ["debootstrap", "unshare", "chroot", "systemd-analyze", "rpm", "ip", "python3"];

async function missingTools(): Promise<string[]> {
  const missing: string[] = [];
  for (const t of NEEDS) {
    const r = await new Deno.Command("sh", { args: ["-c", `command -v ${t}`], stdout: "null" })
      .output();
    if (!r.success) missing.push(t);
  }
  return missing;
}

const missing = await missingTools();
const isRoot = Deno.uid() === 0;
const skip = (!isRoot || missing.length > 0) && Deno.env.get("CI") !== "true";
if (skip) {
  console.error(
    `deb_test: skipped: ${isRoot ? "" : "not root; "}${
      missing.length ? `missing ${missing.join(", ")}` : ""
    }`,
  );
}

function ok(r: { code: number; stdout: string; stderr: string }, what: string) {
  assert.equal(r.code, 0, `${what} exited with ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

async function sh(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  assert.equal(out.code, 0, `${cmd} ${args.join(" ")}: ${dec.decode(out.stderr)}`);
  return dec.decode(out.stdout);
}

// The cgroup v2 mount (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host).
async function cgroup2Mount(): Promise<string> {
  for (const line of (await Deno.readTextFile("/proc/self/mountinfo")).split("\n")) {
    const f = line.split(" ");
    const sep = f.indexOf("-");
    if (sep > 0 && f[sep + 1] === "cgroup2") return f[4]!;
  }
  throw new Error("Cannot find a cgroup2 mount in /proc/self/mountinfo");
}

// A real receiver for the agent's sd_notify datagram, as systemd would be for Type=notify.
function notifyReceiver(path: string): { ready: Promise<string>; child: Deno.ChildProcess } {
  const child = new Deno.Command("python3", {
    args: [
      "-c",
      `import socket,sys
s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM); s.bind(sys.argv[1]); print("bound",flush=True)
s.settimeout(60); print(s.recv(4096).decode(),flush=True)`,
      path,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const ready = (async () => {
    let out = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) out += chunk;
    return out;
  })();
  return { ready, child };
}

async function waitFor(path: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      await Deno.stat(path);
      return;
    } catch {
      if (Date.now() > end) throw new Error(`Cannot find ${path} after ${ms} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

// Paths a package manager or the kernel owns, not the package: left out of the purge comparison.
const NOT_OURS =
  /^\/(proc|sys|dev|tmp|run)(\/|$)|^\/var\/(lib\/dpkg|log|cache\/debconf|cache\/ldconfig)(\/|$)/;

Deno.test({
  name: "deb: install into a fresh Debian root, run, upgrade, verify the unit, purge",
  ignore: skip,
  sanitizeResources: false, // child stdout streams of killed processes
  fn: async (t) => {
    const work = await Deno.makeTempDir({ prefix: "camblet-deb-test-" });
    const root = await freshRoot();
    const cgroup = join(await cgroup2Mount(), `camblet-pkgtest-${Deno.pid}`);
    try {
      const log = (l: string) => console.error(l);
      const built = await buildPackages({
        arches: [ARCH],
        formats: ["deb", "rpm", "tar"],
        outDir: join(work, "out"),
        stageDir: join(work, "stage"),
        log,
      });
      const upgrade = await buildPackages({
        arches: [ARCH],
        formats: ["deb"],
        release: "2",
        outDir: join(work, "out2"),
        stageDir: join(work, "stage2"),
        log,
      });
      const deb = built.find((a) => a.format === "deb")!;
      const rpm = built.find((a) => a.format === "rpm")!;
      const tarball = built.find((a) => a.format === "tar")!;
      for (const a of [...built, ...upgrade]) {
        console.error(`deb_test: ${a.path.split("/").at(-1)}: ${a.bytes} bytes`);
      }
      await Deno.copyFile(deb.path, join(root, "tmp/camblet-agent-1.deb"));
      await Deno.copyFile(upgrade[0]!.path, join(root, "tmp/camblet-agent-2.deb"));
      const before = await listTree(root, NOT_OURS);

      let installedAt = 0;
      let installMs = 0;
      await t.step("dpkg -i installs, creates the directories and enables the unit", async () => {
        installedAt = performance.now();
        const r = ok(await inRoot(root, ["dpkg", "-i", "/tmp/camblet-agent-1.deb"]), "dpkg -i");
        installMs = performance.now() - installedAt;
        assert.match(r, /enabled, not started/);
        const wants = join(
          root,
          "etc/systemd/system/multi-user.target.wants/camblet-agent.service",
        );
        assert.match(await Deno.readLink(wants), /\/camblet-agent\.service$/);
        const mode = async (p: string) => ((await Deno.stat(join(root, p))).mode! & 0o7777);
        assert.equal(await mode("etc/camblet"), 0o755);
        assert.equal(await mode("var/cache/camblet"), 0o700);
        assert.equal(await mode("usr/bin/camblet-agent"), 0o755);
        const conffiles = ok(
          await inRoot(root, ["dpkg-query", "-W", "-f=${Conffiles}", "camblet-agent"]),
          "dpkg-query",
        );
        for (const f of ["config.yaml", "policies/README", "services/README"]) {
          assert.ok(conffiles.includes(`/etc/camblet/${f}`), `${f} is not a conffile`);
        }
      });

      await t.step("no Deno, npm or node on the root's PATH, and no source tree", async () => {
        const r = await inRoot(root, [
          "sh",
          "-c",
          "command -v deno || command -v npm || command -v node",
        ]);
        assert.notEqual(r.code, 0, `found ${r.stdout}`);
        const found = await inRoot(root, ["sh", "-c", "ls / /root; test ! -e /work"]);
        assert.equal(found.code, 0, found.stdout);
      });

      await t.step(
        "version, --help, man page, completion and validate run from the package",
        async () => {
          const v = ok(await inRoot(root, ["camblet-agent", "version"]), "version");
          assert.match(
            v,
            new RegExp(`^camblet-agent ${VERSION.replaceAll(".", "\\.")} \\(deno 2\\.9\\.6`),
          );
          assert.match(v, /^commit: {3}[0-9a-f]{12}(\+dirty)?$/m);
          assert.match(v, /^built: {4}\d{4}-\d\d-\d\dT/m);
          assert.match(
            v,
            /^form: {5}bundle on the Deno runtime from npm @deno\/linux-(x64|arm64)-glibc@2\.9\.6$/m,
          );
          assert.match(v, new RegExp(`^target: {3}${Deno.build.target}$`, "m"));
          const help = ok(await inRoot(root, ["camblet-agent", "--help"]), "--help");
          assert.match(help, /^Usage: camblet-agent \[options\] \[command\]/);
          assert.match(help, /validate/);
          // The shipped runtime is the one recorded; the bundle matches its checksum.
          ok(
            await inRoot(root, [
              "sh",
              "-c",
              "cd /usr/lib/camblet-agent && sha256sum -c SHA256SUMS",
            ]),
            "sha256sum -c",
          );
          const page = ok(
            await inRoot(root, ["sh", "-c", "zcat /usr/share/man/man8/camblet-agent.8.gz"]),
            "man page",
          );
          assert.match(page, /^\.TH CAMBLET\\-AGENT 8/);
          const bash = await inRoot(root, [
            "bash",
            "-c",
            '. /usr/share/bash-completion/completions/camblet-agent; COMP_WORDS=(camblet-agent vali); COMP_CWORD=1; _camblet_agent; echo "${COMPREPLY[*]}"',
          ]);
          assert.equal(ok(bash, "bash completion").trim(), "validate");
          ok(
            await inRoot(root, ["camblet-agent", "validate"]),
            "validate of the shipped /etc/camblet",
          );
          for (
            const [set, domain] of [["quickstart", "acme.test"], ["realistic", "camblet"], [
              "camblet",
              "camblet",
            ]]
          ) {
            const dir = `/usr/share/doc/camblet-agent/examples/${set}`;
            const r = ok(
              await inRoot(root, [
                "camblet-agent",
                "validate",
                "--trust-domain",
                domain!,
                "--policies-path",
                `${dir}/policies`,
                "--services-path",
                `${dir}/services`,
              ]),
              `validate ${set}`,
            );
            assert.match(r, /^valid: [1-9]\d* policies/, `${set}: ${r}`);
          }
        },
      );

      await t.step("the installed unit passes systemd-analyze verify and security", async () => {
        const unit = join(root, "usr/lib/systemd/system/camblet-agent.service");
        const verify = await new Deno.Command("systemd-analyze", {
          args: ["verify", "--man=no", `--root=${root}`, unit],
          stdout: "piped",
          stderr: "piped",
        }).output();
        const dec = new TextDecoder();
        assert.equal(verify.code, 0, dec.decode(verify.stderr));
        assert.equal(dec.decode(verify.stderr).trim(), "", "systemd-analyze verify warnings");
        const sec = await sh("systemd-analyze", [
          "security",
          "--offline=yes",
          `--root=${root}`,
          "--no-pager",
          "camblet-agent.service",
        ]);
        const score = Number(
          /Overall exposure level for camblet-agent\.service: ([\d.]+)/.exec(sec)?.[1],
        );
        console.error(`deb_test: systemd-analyze security exposure ${score}`);
        assert.ok(score <= 3.0, `exposure ${score} > 3.0:\n${sec}`);
      });

      await t.step("the agent starts from the package and tells systemd READY=1", async () => {
        await Deno.mkdir(cgroup);
        await Deno.writeTextFile(
          join(root, "tmp/proxy.yaml"),
          `agent:\n  driver: proxy\n  proxy:\n    cgroupPath: ${cgroup}\n`,
        );
        const sock = join(root, "run/camblet-test-notify");
        const receiver = notifyReceiver(sock);
        await waitFor(sock, 10_000);
        const started = performance.now();
        const agent = spawnInRoot(root, ["camblet-agent", "run", "--config", "/tmp/proxy.yaml"], {
          netns: true,
          env: { NOTIFY_SOCKET: "/run/camblet-test-notify" },
        });
        const agentOut = agent.output();
        const got = await receiver.ready;
        const readyMs = performance.now() - started;
        await receiver.child.status;
        // unshare blocks SIGTERM; its death sends SIGTERM to the agent (--kill-child), as systemd's
        // stop would.
        agent.kill("SIGKILL");
        const out = await agentOut;
        const stderr = new TextDecoder().decode(out.stderr);
        assert.match(got, /READY=1\nSTATUS=Agent ready \(proxy data plane\)/, stderr);
        assert.match(stderr, /"Agent ready"/);
        assert.match(stderr, /"Stopping" reason=SIGTERM/);
        assert.match(stderr, /"Proxy data plane stopped"/);
        console.error(
          `deb_test: dpkg -i ${installMs.toFixed(0)} ms; agent READY=1 ${
            readyMs.toFixed(0)
          } ms after start; ` +
            `dpkg -i to ready (with the checks between) ${
              (performance.now() - installedAt).toFixed(0)
            } ms, ` +
            `install + start ${(installMs + readyMs).toFixed(0)} ms`,
        );
        await Deno.stat(join(root, "etc/camblet/ca.pem")); // the agent's first start made its CA
      });

      await t.step("an upgrade keeps an edited /etc/camblet/config.yaml", async () => {
        const config = join(root, "etc/camblet/config.yaml");
        const edited = (await Deno.readTextFile(config)).replace(
          "trustDomain: camblet",
          "trustDomain: acme.corp",
        );
        assert.ok(edited.includes("trustDomain: acme.corp"));
        await Deno.writeTextFile(config, edited);
        ok(await inRoot(root, ["dpkg", "-i", "/tmp/camblet-agent-2.deb"]), "dpkg -i (upgrade)");
        const v = ok(
          await inRoot(root, ["dpkg-query", "-W", "-f=${Version}", "camblet-agent"]),
          "dpkg-query",
        );
        assert.equal(v, `${VERSION}-2`);
        assert.equal(await Deno.readTextFile(config), edited);
        const r = ok(await inRoot(root, ["camblet-agent", "validate"]), "validate after upgrade");
        assert.match(r, /trust domain "acme\.corp"/);
      });

      await t.step("purge removes everything but what the user created", async () => {
        const mine = join(root, "etc/camblet/policies/mine.yaml");
        await Deno.writeTextFile(mine, "[]\n");
        ok(await inRoot(root, ["dpkg", "--purge", "camblet-agent"]), "dpkg --purge");
        const after = await listTree(root, NOT_OURS);
        const added = after.filter((p) => !before.includes(p));
        const removed = before.filter((p) => !after.includes(p));
        assert.deepEqual(added, [
          "/etc/camblet",
          "/etc/camblet/policies",
          "/etc/camblet/policies/mine.yaml",
        ]);
        assert.deepEqual(removed, []);
        const status = await inRoot(root, ["dpkg-query", "-W", "-f=${Status}", "camblet-agent"]);
        assert.ok(status.code !== 0 || !status.stdout.includes("installed"), status.stdout);
      });

      await t.step("the tarball installs with the README's commands and runs", async () => {
        await Deno.copyFile(tarball.path, join(root, "tmp/camblet-agent.tar.gz"));
        const config = join(root, "etc/camblet/config.yaml");
        await Deno.writeTextFile(config, "agent:\n  trustDomain: tar.example\n"); // the user's
        ok(
          await inRoot(root, [
            "sh",
            "-c",
            "tar -C / -xzf /tmp/camblet-agent.tar.gz --exclude=./etc && " +
            "tar -C / -xzf /tmp/camblet-agent.tar.gz --skip-old-files ./etc",
          ]),
          "tar -x",
        );
        assert.equal(await Deno.readTextFile(config), "agent:\n  trustDomain: tar.example\n");
        const v = ok(await inRoot(root, ["camblet-agent", "version"]), "version (tarball)");
        assert.match(v, /^form: {5}bundle on the Deno runtime/m);
        const r = ok(await inRoot(root, ["camblet-agent", "validate"]), "validate (tarball)");
        assert.match(r, /trust domain "tar\.example"/);
        assert.ok((await Deno.stat(join(root, "etc/camblet/policies/README"))).isFile);
        assert.ok(
          (await Deno.stat(join(root, "usr/lib/systemd/system/camblet-agent.service"))).isFile,
        );
      });

      await t.step(
        "the rpm carries the same files, conffiles, dependencies and scripts",
        async () => {
          const files = (await sh("rpm", ["-qlp", rpm.path])).trim().split("\n");
          for (
            const f of [
              "/usr/bin/camblet-agent",
              "/usr/lib/camblet-agent/camblet-agent.js",
              "/usr/lib/camblet-agent/deno",
              "/usr/lib/camblet-agent/BUILD.json",
              "/usr/lib/systemd/system/camblet-agent.service",
              "/usr/share/man/man8/camblet-agent.8.gz",
              "/usr/share/bash-completion/completions/camblet-agent",
              "/usr/share/zsh/site-functions/_camblet-agent",
              "/usr/share/fish/vendor_completions.d/camblet-agent.fish",
              "/usr/share/doc/camblet-agent/examples/quickstart/policies/web-curl.yaml",
              "/etc/camblet/config.yaml",
            ]
          ) assert.ok(files.includes(f), `rpm lacks ${f}`);
          assert.deepEqual(
            (await sh("rpm", ["-qp", "--configfiles", rpm.path])).trim().split("\n").sort(),
            [
              "/etc/camblet/config.yaml",
              "/etc/camblet/policies/README",
              "/etc/camblet/services/README",
            ],
          );
          const requires = await sh("rpm", ["-qp", "--requires", rpm.path]);
          assert.match(requires, /^libbpf$/m);
          assert.match(requires, /^procps-ng$/m);
          const scripts = await sh("rpm", ["-qp", "--scripts", rpm.path]);
          assert.match(scripts, /postinstall scriptlet/);
          assert.match(scripts, /systemctl enable camblet-agent\.service/);
          const info = await sh("rpm", [
            "-qp",
            "--queryformat",
            "%{NAME} %{VERSION} %{RELEASE} %{ARCH}",
            rpm.path,
          ]);
          assert.equal(info, `camblet-agent ${VERSION} 1 ${ARCH}`);
          // Same program in both: the rpm's bundle and runtime hash as the deb's did.
          const dump = await sh("rpm", ["-qp", "--dump", rpm.path]);
          const sums = new Map(
            dump.trim().split("\n").map((l) => l.split(" ")).map((f) => [f[0]!, f[3]!]),
          );
          assert.equal(sums.get("/usr/lib/camblet-agent/deno")?.length, 64);
        },
      );
    } finally {
      await Deno.remove(cgroup).catch(() => {});
      await Deno.remove(root, { recursive: true }).catch(() => {});
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});
